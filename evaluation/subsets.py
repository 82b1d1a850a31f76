"""A reproducible subset of a BEIR dataset, written in the BEIR layout.

The end-to-end OCR run ingests the same documents as text PDFs and as image-only PDFs
(``eval beir-pdf`` and ``eval beir-pdf-image``); OCR reads about one page every few seconds on
this machine, so it runs on a few hundred documents, not the whole corpus.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from evaluation.beir import iter_corpus, load_beir
from evaluation.errors import EvaluationError


def write_subset(
    folder: Path, out: Path, *, docs: int, split: str = "test", seed: int = 13
) -> dict[str, Any]:
    """Write a BEIR subset of ``docs`` documents judged relevant for some query of ``split``.

    Documents are drawn at random (seeded) from those judged relevant; the subset keeps every
    query with at least one judged document left, and the judgements of the kept documents.
    The same ``folder``, ``docs`` and ``seed`` always give the same subset.

    Args:
        folder: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/).
        out: the subset's folder (written in the same layout).
        docs: documents to keep.
        split: the qrels split.
        seed: the sampling seed.

    Returns:
        What was written: documents, queries, judgements.
    """
    dataset = load_beir(folder, split)
    judged = sorted({doc_id for rels in dataset.qrels.values() for doc_id, rel in rels.items() if rel > 0})
    if len(judged) < docs:
        raise EvaluationError(f"{folder} has only {len(judged)} judged documents; ask for at most that many")
    kept = set(random.Random(seed).sample(judged, docs))
    qrels = {
        qid: {doc_id: rel for doc_id, rel in rels.items() if doc_id in kept}
        for qid, rels in dataset.qrels.items()
        if any(doc_id in kept and rel > 0 for doc_id, rel in rels.items())
    }
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc in iter_corpus(folder / "corpus.jsonl"):
            if doc.doc_id in kept:
                handle.write(json.dumps({"_id": doc.doc_id, "title": doc.title, "text": doc.text}) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for qid in qrels:
            handle.write(json.dumps({"_id": qid, "text": dataset.queries[qid]}) + "\n")
    with (out / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for qid, rels in qrels.items():
            for doc_id, rel in sorted(rels.items()):
                handle.write(f"{qid}\t{doc_id}\t{rel}\n")
    return {
        "documents": len(kept),
        "queries": len(qrels),
        "judgements": sum(len(rels) for rels in qrels.values()),
        "seed": seed,
        "source": str(folder),
    }
