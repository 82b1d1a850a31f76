"""Tiny inputs for the training-data builders, made by the tests: a BEIR folder with CRLF train
qrels, an STS-benchmark file, and documents with headings, as a user's collection holds them."""

from __future__ import annotations

import json
from pathlib import Path

#: Corpus of the tiny BEIR folder: id -> (title, text).
BEIR_DOCS: dict[str, tuple[str, str]] = {
    "d1": ("Aspirin and fever", "aspirin reduces fever and headache pain in adults"),
    "d2": ("Aspirin in children", "aspirin is not given to children with fever because of Reye syndrome"),
    "d3": ("Paracetamol", "paracetamol lowers fever and eases headache pain without irritating the stomach"),
    "d4": ("Ibuprofen", "ibuprofen treats fever, headache and inflammation"),
    "d5": ("Statins", "statins lower blood cholesterol levels and heart attack risk"),
    "d6": ("Diet and cholesterol", "a diet rich in fibre lowers blood cholesterol"),
    "d7": ("Felines", "cats sleep most of the day in warm sunlight"),
    "d8": ("Kittens", "kittens sleep even more than adult cats do"),
    "d9": ("Volcanoes", "lava erupts from volcanoes under high pressure"),
    "d10": ("Fever in the elderly", "fever in elderly adults can be mild; aspirin and paracetamol help"),
    "d11": ("Headache types", "tension headache and migraine respond to pain relief such as aspirin"),
    "d12": ("Copy of aspirin and fever", "aspirin reduces fever and headache pain in adults"),
}
BEIR_QUERIES = {
    "q1": "aspirin fever headache",
    "q2": "cholesterol statins diet",
    "q3": "cats sleep",
    "q9": "test query that is not in the train split",
}
#: Train judgements: q1 has three positives (relevance 2, 1, 1) and one judged non-relevant.
BEIR_TRAIN = [
    ("q1", "d1", 2),
    ("q1", "d4", 1),
    ("q1", "d11", 1),
    ("q1", "d2", 0),
    ("q2", "d5", 1),
    ("q2", "d6", 1),
    ("q3", "d7", 1),
]


def make_beir(root: Path, name: str = "scifact") -> Path:
    """A BEIR folder named ``name`` with CRLF ``qrels/train.tsv`` and ``qrels/test.tsv``."""
    folder = root / name
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in BEIR_DOCS.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in BEIR_QUERIES.items())
    )
    rows = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t{s}" for q, d, s in BEIR_TRAIN)]
    (folder / "qrels" / "train.tsv").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    (folder / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\nq9\td9\t1\r\n")
    return folder


#: STS rows: (score, sentence1, sentence2). "A man plays a guitar." has a positive and a low pair.
STS_ROWS = [
    (5.0, "A man plays a guitar.", "A man is playing a guitar."),
    (0.5, "A man plays a guitar.", "A woman slices an onion."),
    (4.6, "A woman slices an onion.", "A woman is cutting an onion."),
    (1.0, "A woman is cutting an onion.", "A man is playing a guitar."),
    (4.2, "A dog runs in the park.", "A dog is running through a park."),
    (3.0, "A cat sits on a mat.", "A cat is lying on a rug."),
    (4.8, "Kids play football.", "Kids play football."),
]


def make_sts(path: Path) -> Path:
    """An STS-benchmark file (tab-separated: genre, file, year, id, score, sentence1, sentence2)."""
    lines = [
        f"main-captions\tMSRvid\t2012test\t{n:04d}\t{s:.3f}\t{a}\t{b}" for n, (s, a, b) in enumerate(STS_ROWS)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


#: Documents of a user's collection, as extracted text (line breaks kept), with real headings.
DOCUMENTS: dict[str, str] = {
    "glaciers.md": (
        "# Glacier dynamics and valley erosion\n\n"
        "Glaciers are rivers of ice that move slowly downhill under their own weight. As they flow they "
        "carve U-shaped valleys, deposit moraines and leave polished bedrock behind. Meltwater feeds "
        "rivers in summer and raises the sea level over long periods of time.\n\n"
        "## Moraines left by retreating ice\n\n"
        "When a glacier retreats it leaves ridges of rock debris called moraines. Terminal moraines mark "
        "the furthest advance of the ice. Lateral moraines form along the valley sides where rock falls "
        "onto the glacier from the slopes above."
    ),
    "volcanoes.txt": (
        "2.1 Magma chambers beneath the crust\n"
        "A volcano forms where molten rock from a magma chamber reaches the surface of the crust. "
        "Explosive eruptions throw ash and pumice high into the atmosphere, while basaltic lava flows "
        "spread slowly across the ground. Many volcanoes sit along tectonic plate boundaries.\n\n"
        "ERUPTION WARNING SIGNS\n"
        "Swarms of small earthquakes, swelling ground and rising gas emissions often precede an eruption. "
        "Observatories watch these signals closely so that villages on the slopes can be evacuated in time "
        "before the ash and lava arrive."
    ),
    "bread.txt": (
        "Baking bread starts with flour, water, salt and yeast. Kneading develops gluten, which traps "
        "the carbon dioxide released by fermenting yeast so that the dough rises. A hot oven sets the "
        "crumb and browns the crust through the Maillard reaction. Sourdough relies on wild yeast and "
        "lactic acid bacteria instead of baker's yeast, which gives the loaf its sour taste and open crumb."
    ),
}
