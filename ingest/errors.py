"""Errors of the ingest package (one base class)."""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error raised by :mod:`ingest`."""


class DocumentError(IngestError):
    """One file could not be read or turned into text (the run goes on with the others)."""


class MalformedPdfError(DocumentError):
    """pypdf cannot open a PDF or read its page tree (extraction then tries PDFium, which repairs more)."""


class PasswordError(DocumentError):
    """An encrypted PDF needs a password that was not given, or the one given does not open it.

    Attributes:
        wrong: a password was given, and it does not open the file.
    """

    def __init__(self, message: str, *, wrong: bool) -> None:
        super().__init__(message)
        self.wrong = wrong


class LimitExceededError(DocumentError):
    """A file yields more text or chunks than the ``ingest`` settings allow; it is not ingested."""


class IngestCancelledError(IngestError):
    """The run's cancel event was set; raised inside extraction and chunking to stop them early.

    :func:`ingest.pipeline.ingest_files` handles it: it never escapes an ingest run.
    """


class OcrError(IngestError):
    """OCR of a page failed: the engine is unknown or not installed, or it failed on the page.

    Extraction records it as the reason a page was skipped; the other pages go on.
    """
