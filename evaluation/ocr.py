"""OCR measurements: engine accuracy against a ground truth, a BEIR subset for the end-to-end run.

* :func:`measure_engine` OCRs a scanned page with one engine (no page cache) and scores its text
  against a ground-truth transcription with jiwer: character and word error rates, both on
  whitespace-normalised text, and the seconds per page.
* :func:`measure_speed` gives pages per second over several pages.

The end-to-end run ingests a BEIR subset (:func:`evaluation.subsets.write_subset`) as text PDFs
and as image-only PDFs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import IngestError
from ingest.ocr.base import OcrOptions
from ingest.ocr.pages import ocr_page
from ingest.ocr.registry import get_engine

_WHITESPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Text as it is scored: every run of whitespace (line breaks too) becomes one space."""
    return _WHITESPACE.sub(" ", text).strip()


@dataclass(frozen=True)
class EngineScore:
    """One engine on one page.

    Attributes:
        engine: the engine's registry name.
        file: the PDF's file name.
        cer: character error rate (jiwer), whitespace-normalised, case kept.
        wer: word error rate (jiwer), whitespace-normalised, case kept.
        cer_caseless: character error rate with both texts lower-cased.
        seconds: rendering and OCR of the page (the engine already loaded).
        load_seconds: creating the engine (models loaded).
        chars: characters the engine read.
        error: why the engine could not run (the scores are then ``None``).
    """

    engine: str
    file: str
    cer: float | None
    wer: float | None
    cer_caseless: float | None
    seconds: float | None
    load_seconds: float | None
    chars: int
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "engine": self.engine,
            "file": self.file,
            "cer": _round(self.cer),
            "wer": _round(self.wer),
            "cer_caseless": _round(self.cer_caseless),
            "seconds": _round(self.seconds, 2),
            "load_seconds": _round(self.load_seconds, 2),
            "chars": self.chars,
            "error": self.error,
        }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def measure_engine(
    pdf: Path, truth: Path, *, engine: str, dpi: int = 200, language: str = "en"
) -> EngineScore:
    """OCR page 1 of ``pdf`` with ``engine`` (no cache) and score it against ``truth``.

    Args:
        pdf: a scanned PDF.
        truth: its ground-truth transcription (UTF-8 text).
        engine: an OCR engine of ``ingest.ocr``'s registry.
        dpi: rendering resolution.
        language: the engine's language setting.

    Returns:
        The scores, or the reason the engine could not run.
    """
    import jiwer

    options = OcrOptions(mode="always", engine=engine, language=language, dpi=dpi)
    try:
        started = time.perf_counter()
        get_engine(options)
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        page = ocr_page(pdf.read_bytes(), 1, file_name=pdf.name, password=None, options=options, cache=None)
        seconds = time.perf_counter() - started
    except IngestError as exc:
        return EngineScore(engine, pdf.name, None, None, None, None, None, 0, error=str(exc))
    reference = normalise(truth.read_text(encoding="utf-8"))
    hypothesis = normalise(page.text)
    return EngineScore(
        engine=engine,
        file=pdf.name,
        cer=float(jiwer.cer(reference, hypothesis)),
        wer=float(jiwer.wer(reference, hypothesis)),
        cer_caseless=float(jiwer.cer(reference.lower(), hypothesis.lower())),
        seconds=seconds,
        load_seconds=load_seconds,
        chars=len(hypothesis),
    )


def measure_speed(pdfs: list[Path], *, engine: str, dpi: int = 200) -> dict[str, Any]:
    """Pages per second of one engine over page 1 of each PDF (no cache, engine loaded first)."""
    options = OcrOptions(mode="always", engine=engine, dpi=dpi)
    get_engine(options)
    started = time.perf_counter()
    chars = 0
    for pdf in pdfs:
        page = ocr_page(pdf.read_bytes(), 1, file_name=pdf.name, password=None, options=options, cache=None)
        chars += len(page.text)
    seconds = time.perf_counter() - started
    return {
        "engine": engine,
        "pages": len(pdfs),
        "seconds": round(seconds, 2),
        "pages_per_second": round(len(pdfs) / seconds, 3) if seconds else None,
        "chars": chars,
    }
