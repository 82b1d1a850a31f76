"""The layout of a chunk point: payload keys, point ids and the filter that leaves pending chunks out.

Every key is spelled here once. A chunk's payload is the one ``langchain_qdrant`` reads::

    {CONTENT_KEY: text, METADATA_KEY: {SOURCE: ..., FILE_NAME: ..., FILE_SHA256: ..., ...},
     PENDING_KEY: True}   # the flag only until the file is committed

Filters and payload selectors name a metadata field by its path, :func:`metadata_path`
(``"metadata.source"``). Point ids are deterministic (uuid5 in :data:`POINT_NAMESPACE`), so a
rewrite replaces, and a file's chunk ids follow from its content hash and chunk count alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qdrant_client import models

#: Payload key of a chunk's text (``langchain_qdrant``'s ``CONTENT_KEY``).
CONTENT_KEY = "page_content"
#: Payload key of a chunk's metadata (``langchain_qdrant``'s ``METADATA_KEY``).
METADATA_KEY = "metadata"
#: Top-level payload key of a chunk whose file is not committed yet (value ``True``); absent on
#: committed chunks and on every chunk of a collection written before the flag existed.
PENDING_KEY = "pending"

# Fields of a chunk's metadata (under METADATA_KEY), in the order ingest writes them.
#: The stored source: a resolved path, or ``UPLOAD_PREFIX + name`` for an upload.
SOURCE = "source"
#: The file's display name.
FILE_NAME = "file_name"
#: Hex sha256 of the file's bytes (the content id of its chunks).
FILE_SHA256 = "file_sha256"
#: 1-based page of the chunk's start (``None`` for a text file).
PAGE = "page"
#: 0-based index of the chunk in its file.
CHUNK_INDEX = "chunk_index"
#: Chunks of the file.
CHUNK_COUNT = "chunk_count"
#: Character offsets of the chunk in the file's extracted text.
CHAR_START = "char_start"
CHAR_END = "char_end"
#: The domain of the collection's instructions when the chunk was written.
DOMAIN = "domain"
#: ISO time the file was ingested.
INGESTED_AT = "ingested_at"
#: ``True`` when the text of the chunk's page came from OCR (absent on text-layer pages and on
#: chunks written before OCR existed).
OCR = "ocr"

#: Prefix of the source of an uploaded file (``upload:<sanitised name>``): a display name, not a path.
UPLOAD_PREFIX = "upload:"

#: Namespace of the deterministic point ids (uuid5 of file hash and chunk index).
POINT_NAMESPACE = uuid.UUID("6f1c8a52-3d0e-5b7a-9c4e-2a1b0d9e8f70")
#: Id of the manifest-collection point that marks a write in progress.
WRITE_MARKER_ID = str(uuid.uuid5(POINT_NAMESPACE, "write-in-progress"))
#: Point ids per delete / payload request.
ID_BATCH = 1024


def metadata_path(field: str) -> str:
    """The payload path of a metadata field, for filters and payload selectors (``"metadata.source"``)."""
    return f"{METADATA_KEY}.{field}"


def metadata_of(payload: dict[str, Any] | None) -> dict[str, Any]:
    """The metadata of a chunk payload (``{}`` when there is none)."""
    return (payload or {}).get(METADATA_KEY) or {}


def chunk_point_id(file_sha256: str, chunk_index: int) -> str:
    """Deterministic id of a chunk: uuid5 of the file's content hash and the chunk index."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{file_sha256}:{chunk_index}"))


def chunk_point_ids(file_sha256: str, chunks: int) -> list[str]:
    """The ids of a file's chunks ``0 .. chunks - 1``."""
    return [chunk_point_id(file_sha256, index) for index in range(chunks)]


def manifest_point_id(source: str) -> str:
    """Deterministic id of a source file's manifest point."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"source:{source}"))


def id_batches(ids: list[Any]) -> Iterator[list[Any]]:
    """``ids`` in slices of at most :data:`ID_BATCH` (one delete / payload request each)."""
    for start in range(0, len(ids), ID_BATCH):
        yield ids[start : start + ID_BATCH]


def committed_filter(extra: models.Filter | None = None) -> models.Filter:
    """A filter that leaves out pending chunks (see :data:`PENDING_KEY`), and ANDs ``extra``.

    Chunks without the key (committed ones, and those of collections written before the flag)
    match, so no migration is needed.

    Args:
        extra: a further restriction (documents, domain), or ``None``.

    Returns:
        The filter, for ``query_points``, each of its prefetches, ``count`` and ``scroll``.
    """
    from qdrant_client import models  # lazy: qdrant_client takes about a second to import

    pending = models.FieldCondition(key=PENDING_KEY, match=models.MatchValue(value=True))
    return models.Filter(must=[extra] if extra is not None else None, must_not=[pending])


def field_is(field: str, value: Any) -> models.FieldCondition:
    """The condition "metadata field ``field`` equals ``value``"."""
    from qdrant_client import models  # lazy: qdrant_client takes about a second to import

    return models.FieldCondition(key=metadata_path(field), match=models.MatchValue(value=value))


def source_filter(source: str, *, sha256: str | None = None, not_sha256: str | None = None) -> models.Filter:
    """The chunks of ``source`` (only those of content ``sha256``, or all but those of ``not_sha256``)."""
    from qdrant_client import models  # lazy: qdrant_client takes about a second to import

    must: list[Any] = [field_is(SOURCE, source)]
    if sha256 is not None:
        must.append(field_is(FILE_SHA256, sha256))
    must_not: list[Any] = [field_is(FILE_SHA256, not_sha256)] if not_sha256 is not None else []
    return models.Filter(must=must, must_not=must_not or None)
