"""ingest.quality: the garbage test flags letter-shifted, run-together and unmapped text, and no real text."""

from __future__ import annotations

import json

import pytest
from ocrgen import shift_letters
from pdfgen import TOPICS

from ingest.ocr import OcrOptions
from ingest.quality import MAX_MEAN_TOKEN, MIN_LETTER_SIMILARITY, assess_text

FRENCH = (
    "La photosynthèse est le processus par lequel les plantes vertes utilisent la lumière du soleil pour "
    "transformer l'eau et le dioxyde de carbone en glucose et en oxygène. La chlorophylle absorbe la lumière."
)
GERMAN = (
    "Die Photosynthese ist der Vorgang, bei dem grüne Pflanzen mit Hilfe des Sonnenlichts aus Wasser und "
    "Kohlendioxid Traubenzucker und Sauerstoff bilden. Das Chlorophyll in den Chloroplasten nimmt Licht auf."
)
LOREM = (
    "Lorem ipsum dolor sit amet, consectetuer adipiscing elit. Ut purus elit, vestibulum ut, placerat ac, "
    "adipiscing vitae, felis. Curabitur dictum gravida mauris. Nam arcu libero, nonummy eget, consectetuer id."
)
RUSSIAN = "Фотосинтез — процесс образования органических веществ из углекислого газа и воды на свету."
ARABIC = "التمثيل الضوئي هو عملية تحويل الطاقة الضوئية إلى طاقة كيميائية في النباتات الخضراء."


@pytest.mark.parametrize("text", [*TOPICS.values(), FRENCH, GERMAN, LOREM, RUSSIAN, ARABIC])
def test_real_text_passes(text: str) -> None:
    quality = assess_text(text)
    assert not quality.garbled, quality


@pytest.mark.parametrize("by", [-1, 1, 2])
@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_letter_shifted_text_fails(topic: str, by: int) -> None:
    quality = assess_text(shift_letters(TOPICS[topic], by))
    assert quality.garbled and quality.reason is not None
    assert quality.letter_similarity is not None and quality.letter_similarity < MIN_LETTER_SIMILARITY
    assert "letter frequencies" in quality.reason


def test_run_together_words_fail() -> None:
    quality = assess_text(TOPICS["volcano"].replace(" ", ""))
    assert quality.garbled and quality.mean_token is not None and quality.mean_token > MAX_MEAN_TOKEN
    assert "run together" in str(quality.reason)


def test_unmapped_characters_fail_in_any_script() -> None:
    cids = " ".join(f"(cid:{n})" for n in range(40, 90))
    assert assess_text(cids).garbled
    assert "no Unicode mapping" in str(assess_text("\ufffd\ufffd \ue000\ue001 " * 10 + RUSSIAN).reason)


def test_short_text_is_judged_by_its_characters_only() -> None:
    quality = assess_text("Bgqhrsnogdq")  # "Christopher" shifted, but too short to tell
    assert not quality.garbled and quality.letter_similarity is None
    assert quality.to_json()["letters"] == 11


# -- measured on ../shared (the table in ingest/quality.py's docstring) -------------------------


def _layer_pages(name: str) -> list[str]:
    from testdata import shared_path

    from ingest.extract import extract_pdf

    data = shared_path("data", "pdfs", name).read_bytes()
    extracted = extract_pdf(data, file_name=name, page_cache=None, ocr=OcrOptions(mode="never"))
    return [page.text for page in extracted.pages]


@pytest.mark.shared_data
def test_shared_garbled_layer_fails_and_no_other_shared_pdf_page_does() -> None:
    from testdata import shared_path

    from ingest.errors import DocumentError

    (garbled,) = _layer_pages("garbled-text-layer_ranknet-lambdarank.pdf")
    assert "Bgqhrsnogdq" in garbled
    quality = assess_text(garbled)
    assert quality.garbled and quality.letter_similarity is not None and quality.letter_similarity < 0.7
    others = 0
    for path in sorted(shared_path("data", "pdfs").glob("*.pdf")):
        if path.name.startswith("garbled"):
            continue
        try:
            texts = _layer_pages(path.name)
        except DocumentError:  # encrypted, malformed, no text layer
            continue
        for number, text in enumerate(texts, start=1):
            result = assess_text(text)
            assert not result.garbled, (path.name, number, result)
            assert result.letter_similarity is None or result.letter_similarity > 0.9
            others += 1
    assert others >= 100


@pytest.mark.shared_data
@pytest.mark.parametrize("dataset", ["scifact", "nfcorpus"])
def test_no_beir_abstract_fails(dataset: str) -> None:
    from testdata import shared_path

    count = 0
    with shared_path("data", "beir", dataset, "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            text = f"{doc.get('title', '')}\n{doc.get('text', '')}".strip()
            result = assess_text(text)
            assert not result.garbled, (doc["_id"], result)
            count += 1
    assert count > 3000
