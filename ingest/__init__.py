"""Ingestion: PDFs and text files into Qdrant, chunked in model tokens, all-or-none per file.

The service API (used by the CLI and the Streamlit app):

* :func:`discover` / :func:`upload_source` build :class:`SourceFile` objects;
* :func:`ingest_files` ingests them and returns an :class:`IngestReport` of :class:`FileResult`;
* :class:`VectorStore` / :func:`open_client` give access to the collection.
"""

from __future__ import annotations

from ingest.errors import (
    CollectionMismatchError,
    CollectionNotFoundError,
    DocumentError,
    IngestError,
    StoreConnectionError,
    StoreLockedError,
)
from ingest.pipeline import IngestReport, ProgressEvent, ProgressStage, ingest_files
from ingest.sources import (
    SUPPORTED_SUFFIXES,
    FileResult,
    FileStatus,
    SourceFile,
    discover,
    sanitise_upload_name,
    upload_source,
)
from ingest.store import (
    CollectionRecord,
    DocumentManifest,
    VectorStore,
    chunk_point_id,
    expected_record,
    list_collections,
    open_client,
)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "CollectionRecord",
    "DocumentError",
    "DocumentManifest",
    "FileResult",
    "FileStatus",
    "IngestError",
    "IngestReport",
    "ProgressEvent",
    "ProgressStage",
    "SourceFile",
    "StoreConnectionError",
    "StoreLockedError",
    "VectorStore",
    "chunk_point_id",
    "discover",
    "expected_record",
    "ingest_files",
    "list_collections",
    "open_client",
    "sanitise_upload_name",
    "upload_source",
]
