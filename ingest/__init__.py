"""Ingestion: PDFs and text files into Qdrant, chunked in model tokens, all-or-none per file.

The service API (used by the CLI and the Streamlit app):

* :func:`discover` / :func:`upload_source` build :class:`SourceFile` objects;
* :func:`ingest_files` ingests them into a :class:`store.core.VectorStore` and returns an
  :class:`IngestReport` of :class:`FileResult`.

The modules: ``sources`` (what to ingest), ``extract``, ``cleaning`` and ``chunking`` (text and
chunks), ``ocr`` (OCR of PDF pages without a usable text layer: engines, the per-page decision),
``quality`` (the garbage test of a text layer), ``pagecache`` (text layers and OCR output by page
fingerprint, persistent under ``data_dir``), ``rendering`` (pages as images, pypdfium2),
``pipeline`` (the run), ``reading``, ``batching`` and ``writing`` (its reader, embedding queue
and writer), ``report`` (progress events, results and the report), ``reembed`` (a stored
collection re-embedded under another model into a new collection).
"""

from __future__ import annotations

from ingest.errors import DocumentError, IngestError
from ingest.pipeline import ingest_files
from ingest.report import IngestReport, ProgressEvent, ProgressStage
from ingest.sources import (
    SUPPORTED_SUFFIXES,
    FileResult,
    FileStatus,
    SourceFile,
    discover,
    sanitise_upload_name,
    upload_source,
)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "DocumentError",
    "FileResult",
    "FileStatus",
    "IngestError",
    "IngestReport",
    "ProgressEvent",
    "ProgressStage",
    "SourceFile",
    "discover",
    "ingest_files",
    "sanitise_upload_name",
    "upload_source",
]
