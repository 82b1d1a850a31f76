"""The garbage test (:func:`ingest.quality.assess_text`) measured on every text layer of the shared data.

One row per PDF of ``../shared/data/pdfs`` with a text layer (pypdf's cleaned text of each page,
as ingest reads it), and one per BEIR corpus (title and abstract of each document): pages (or
documents) judged, how many fail the test, the lowest letter-frequency similarity and the
reason of the first failure. The garbled file should fail; nothing else should.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from evaluation.beir import iter_corpus
from evaluation.pdf_outcomes import PASSWORDS
from ingest.cleaning import clean_text
from ingest.quality import TextQuality, assess_text


def _pdf_pages(pdf: Path) -> list[str] | None:
    """The cleaned text (pypdf) of each page with text, or ``None`` when pypdf cannot read the file."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(pdf.read_bytes()), strict=False)
        if reader.is_encrypted and not reader.decrypt(PASSWORDS.get(pdf.name, "")):
            return None
        texts = [clean_text(page.extract_text() or "") for page in reader.pages]
    except Exception:  # noqa: BLE001 - a malformed file is simply not part of this table
        return None
    return [text for text in texts if text]


def _row(name: str, assessed: list[TextQuality]) -> dict[str, Any]:
    flagged = [quality for quality in assessed if quality.garbled]
    similarities = [q.letter_similarity for q in assessed if q.letter_similarity is not None]
    return {
        "file": name,
        "pages": len(assessed),
        "flagged": len(flagged),
        "score": round(min(similarities), 3) if similarities else None,
        "reason": flagged[0].reason if flagged else "",
    }


def garbage_rows(pdfs: Path, beir: Path) -> list[dict[str, Any]]:
    """The table of the garbage test: one row per readable PDF with text, one per BEIR corpus.

    Args:
        pdfs: ``../shared/data/pdfs``.
        beir: ``../shared/data/beir`` (its ``scifact`` and ``nfcorpus`` corpora).

    Returns:
        Rows of ``file``, ``pages`` (documents, for a corpus), ``flagged``, ``score`` (the lowest
        letter similarity) and ``reason``.
    """
    rows = []
    for pdf in sorted(pdfs.glob("*.pdf")):
        pages = _pdf_pages(pdf)
        if pages:
            rows.append(_row(pdf.name, [assess_text(text) for text in pages]))
    for name in ("scifact", "nfcorpus"):
        corpus = beir / name / "corpus.jsonl"
        if corpus.is_file():
            assessed = [assess_text(f"{doc.title}\n{doc.text}") for doc in iter_corpus(corpus)]
            rows.append(_row(f"{name} corpus (title + abstract per document)", assessed))
    return rows
