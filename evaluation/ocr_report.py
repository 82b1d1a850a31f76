"""The OCR section of ``docs/benchmarks.md``, from the results ``eval ocr --record`` saves (kind ``ocr``).

Keys: ``accuracy`` (engines against the ground truth), ``speed`` (pages per second),
``garbage`` (the garbage test's scores per file), ``e2e`` (the BEIR subset as text PDFs and as
image-only PDFs) and ``files`` (every awkward PDF of the shared folder).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evaluation.markdown import provenance, table
from evaluation.pdf_outcomes import outcome_rows


def _accuracy(data: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            score["engine"],
            score["file"],
            score["cer"] if score["cer"] is not None else "",
            score["wer"] if score["wer"] is not None else "",
            score["cer_caseless"] if score["cer_caseless"] is not None else "",
            score["seconds"] if score["seconds"] is not None else "",
            score["load_seconds"] if score["load_seconds"] is not None else "",
            score["error"] or "",
        ]
        for score in data["scores"]
    ]
    lines = ["### OCR accuracy against the ground truth (jiwer)", ""]
    lines += table(["engine", "file", "CER", "WER", "CER (caseless)", "s/page", "load s", "error"], rows)
    return lines


def _speed(data: Mapping[str, Any]) -> list[str]:
    rows = [
        [run["engine"], run["pages"], run["seconds"], run["pages_per_second"], run["chars"]]
        for run in data["runs"]
    ]
    lines = ["### OCR speed (render + OCR, no cache, engine loaded)", ""]
    lines += table(["engine", "pages", "seconds", "pages/s", "characters read"], rows)
    if data.get("pages_from"):
        lines += ["", f"Pages: {data['pages_from']}."]
    return lines


def _garbage(data: Mapping[str, Any]) -> list[str]:
    rows = [
        [row["file"], row["pages"], row["flagged"], row.get("score", ""), row.get("reason", "")]
        for row in data["rows"]
    ]
    lines = ["### The garbage test on every text layer", ""]
    lines += table(["file", "pages with text", "pages flagged", "score (lowest page)", "reason"], rows)
    return lines


def _e2e(data: Mapping[str, Any]) -> list[str]:
    rows = []
    for name in ("text", "image"):
        run = data[name]
        rows.append(
            [
                "text PDFs" if name == "text" else "image-only PDFs (OCR)",
                run["ndcg_at_10"],
                run["recall_at_100"],
                run["pages"],
                run["ocr_pages"],
                run["failed_files"],
                run["ingest_seconds"],
            ]
        )
    subset = data["subset"]
    lines = [
        "### End to end: the same documents as text PDFs and as image-only PDFs",
        "",
        f"{subset['documents']} NFCorpus documents judged relevant for some test query "
        f"(seed {subset['seed']}), {subset['queries']} test queries that keep a relevant document, "
        f"{subset['judgements']} judgements; dense search, default instructions.",
        "",
    ]
    lines += table(
        ["corpus", "nDCG@10", "Recall@100", "pages", "pages OCR'd", "failed files", "ingest s"], rows
    )
    gap = round(float(data["text"]["ndcg_at_10"]) - float(data["image"]["ndcg_at_10"]), 4)
    lines += ["", f"Gap (text - OCR): {gap} nDCG@10 (target: within 0.03)."]
    return lines


def _files(data: Mapping[str, Any]) -> list[str]:
    lines = ["### Every awkward PDF of `../shared/data/pdfs`", ""]
    lines += table(
        [
            "file",
            "status",
            "pages",
            "OCR'd",
            "no text",
            "chunks",
            "own sentence: rank",
            "sentence from",
            "s",
            "message",
        ],
        outcome_rows(data),
    )
    return lines


_PARTS = {"accuracy": _accuracy, "speed": _speed, "garbage": _garbage, "e2e": _e2e, "files": _files}


def ocr_section(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The markdown of the OCR section."""
    by_key = {str(entry["key"]): entry for entry in entries}
    lines = ["## OCR", ""]
    for key, render in _PARTS.items():
        entry = by_key.get(key)
        if entry is None:
            continue
        lines += render(entry["data"])
        lines += ["", f"Command: `{entry['command']}`", ""]
    lines += provenance(entries)
    return lines
