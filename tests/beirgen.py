"""A tiny BEIR folder (corpus, queries, CRLF qrels as the official files have) that tests make themselves."""

from __future__ import annotations

import json
from pathlib import Path


def make_folder(root: Path) -> Path:
    folder = root / "tiny"
    (folder / "qrels").mkdir(parents=True)
    docs = {
        "d1": ("Aspirin", "aspirin reduces fever and headache pain"),
        "d2": ("Statins", "statins lower blood cholesterol levels"),
        "d3": ("Felines", "cats sleep most of the day in warm sunlight"),
        "d4": ("Volcanoes", "lava erupts from volcanoes under high pressure"),
    }
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in docs.items())
    )
    queries = {"q1": "fever headache aspirin", "q2": "cholesterol statins", "q3": "cats sleep sunlight"}
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    )
    rows = ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q2\td2\t1", "q3\td3\t1"]
    (folder / "qrels" / "test.tsv").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    return folder
