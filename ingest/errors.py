"""Errors of the ingest package (one base class)."""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error raised by :mod:`ingest`."""


class StoreLockedError(IngestError):
    """The embedded Qdrant folder is already open in another process."""


class StoreConnectionError(IngestError):
    """The Qdrant server cannot be reached or refused the request."""


class CollectionNotFoundError(IngestError):
    """The collection does not exist yet."""


class CollectionMismatchError(IngestError):
    """The collection was built with another model, instructions or dimension."""


class DocumentError(IngestError):
    """One file could not be read or turned into text (the run goes on with the others)."""


class DocumentNotFoundError(IngestError):
    """No stored document matches the given source, path or file name (or several do)."""


class LimitExceededError(DocumentError):
    """A file yields more text or chunks than the ``ingest`` settings allow; it is not ingested."""


class IngestCancelledError(IngestError):
    """The run's cancel event was set; raised inside extraction and chunking to stop them early.

    :func:`ingest.pipeline.ingest_files` handles it: it never escapes an ingest run.
    """
