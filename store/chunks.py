"""Reading a collection's committed chunks back, as stored (for the training-data builders)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from store.payload import (
    CHUNK_INDEX,
    CONTENT_KEY,
    FILE_NAME,
    FILE_SHA256,
    METADATA_KEY,
    PAGE,
    SOURCE,
    committed_filter,
    metadata_of,
)

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from store.manifest import Manifests


@dataclass(frozen=True)
class StoredChunk:
    """One committed chunk as stored (see :meth:`VectorStore.iter_chunks`).

    Attributes:
        source: the stored source (a path, or ``upload:NAME``).
        file_name: the file's display name.
        page: 1-based page of the chunk's start (``None`` for a text file).
        chunk_index: 0-based index of the chunk in its file.
        text: the chunk's text.
    """

    source: str
    file_name: str
    page: int | None
    chunk_index: int
    text: str


def iter_stored_chunks(
    client: QdrantClient, collection: str, manifests: Manifests, *, batch: int = 256
) -> Iterator[StoredChunk]:
    """Every chunk of the completely stored files of a collection, one scroll page at a time.

    Pending chunks are left out inside Qdrant's query (:func:`store.payload.committed_filter`),
    and so is a chunk whose file's manifest names another content hash, or none (a file being
    replaced or removed), as search leaves them out.

    Args:
        client: the Qdrant client.
        collection: the collection.
        manifests: the collection's document manifests.
        batch: chunk points per scroll request.

    Yields:
        The chunks, in Qdrant's point-id order.
    """
    offset: Any = None
    while True:
        records, offset = client.scroll(
            collection,
            scroll_filter=committed_filter(),
            limit=max(1, batch),
            offset=offset,
            with_payload=[CONTENT_KEY, METADATA_KEY],
            with_vectors=False,
        )
        metadata = [metadata_of(record.payload) for record in records]
        committed = manifests.committed_hashes({str(meta.get(SOURCE)) for meta in metadata})
        for record, meta in zip(records, metadata, strict=True):
            source = str(meta.get(SOURCE))
            if committed.get(source) != meta.get(FILE_SHA256):
                continue  # a file being replaced or removed
            yield StoredChunk(
                source=source,
                file_name=str(meta.get(FILE_NAME) or source),
                page=meta.get(PAGE),
                chunk_index=int(meta.get(CHUNK_INDEX) or 0),
                text=str((record.payload or {}).get(CONTENT_KEY) or ""),
            )
        if offset is None:
            return
