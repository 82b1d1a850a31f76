"""The chunk points of one collection: write, count, check, delete and re-weight them.

Every write to the chunks goes through :class:`ChunkPoints`, which counts it
(:func:`store.writes.note_write`) in the embedded store so that the in-process index knows its
copy is stale.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from representations.augmented import KEYWORD_MEAN_VECTOR, KEYWORD_VECTOR, augmented
from representations.dense import DENSE_VECTOR
from store.payload import (
    CHUNK_INDEX,
    FILE_SHA256,
    PENDING_KEY,
    SOURCE,
    committed_filter,
    field_is,
    id_batches,
    metadata_of,
    metadata_path,
    source_filter,
)
from store.writes import note_write

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models


class ChunkPoints:
    """The chunk points of a collection (one point per chunk, see :mod:`store.payload`).

    Args:
        client: an open client.
        collection: the chunk collection.
        local: ``True`` for the embedded / in-memory store, whose writes are counted.
    """

    def __init__(self, client: QdrantClient, collection: str, *, local: bool) -> None:
        self.client = client
        self.collection = collection
        self.local = local

    def changed(self) -> None:
        """Chunk points changed: the in-process index of the embedded store is stale."""
        if self.local:
            note_write(self.client, self.collection)

    # -- reading ----------------------------------------------------------------------------------

    def count(self, *, pending: bool = False) -> int:
        """Chunk points of committed files (with ``pending``: of every file); the collection exists."""
        flt = None if pending else committed_filter()
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def count_source(self, source: str, *, sha256: str | None = None) -> int:
        """Chunk points of one source (optionally of one content hash), pending ones included."""
        from qdrant_client import models  # lazy: qdrant_client takes about a second to import

        conditions: list[Any] = [field_is(SOURCE, source)]
        if sha256 is not None:
            conditions.append(field_is(FILE_SHA256, sha256))
        flt = models.Filter(must=conditions)
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def all_committed(self, ids: list[str], source: str) -> bool:
        """Whether every point ``ids`` names is stored, committed and of ``source`` (by id, no scan)."""
        for part in id_batches(ids):
            records = self.client.retrieve(
                self.collection, ids=part, with_payload=[metadata_path(SOURCE), PENDING_KEY]
            )
            if len(records) != len(part):
                return False
            for record in records:
                payload = record.payload or {}
                if payload.get(PENDING_KEY) or metadata_of(payload).get(SOURCE) != source:
                    return False
        return True

    def pending_ids(self) -> list[Any]:
        """Ids of the chunk points flagged pending (one filtered scroll per :data:`LOCAL_ID_PAGE`)."""
        from qdrant_client import models  # lazy: qdrant_client takes about a second to import

        flagged = models.Filter(
            must=[models.FieldCondition(key=PENDING_KEY, match=models.MatchValue(value=True))]
        )
        ids: list[Any] = []
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                self.collection,
                scroll_filter=flagged,
                limit=LOCAL_ID_PAGE,
                offset=offset,
                with_payload=False,
                with_vectors=False,
            )
            ids += [record.id for record in records]
            if offset is None:
                return ids

    def scroll(self, *, payload: bool | list[str]) -> Iterator[Any]:
        """Every chunk point, with ``payload`` (see :func:`scroll_pages`)."""
        for page in scroll_pages(self.client, self.collection, payload=payload, local=self.local):
            yield from page

    # -- writing ----------------------------------------------------------------------------------

    def upsert(self, points: Sequence[models.PointStruct], *, pending: bool = True) -> None:
        """Write chunk points (ids are deterministic, so rewriting is idempotent).

        Args:
            points: the points (their payloads are not modified).
            pending: flag them as pending (:data:`~store.payload.PENDING_KEY`): no search or
                count sees them until their file is committed. ``False`` only for points that
                are never committed through a manifest's chunk ids (e.g. a benchmark's filler).
        """
        if not points:
            return
        written = list(points)
        if pending:
            written = [
                point.model_copy(update={"payload": {**(point.payload or {}), PENDING_KEY: True}})
                for point in written
            ]
        self.client.upsert(self.collection, points=written, wait=True)
        self.changed()

    def clear_pending(self, ids: Sequence[Any]) -> None:
        """Remove the pending flag from these (existing) chunk points."""
        for part in id_batches(list(ids)):
            self.client.delete_payload(self.collection, keys=[PENDING_KEY], points=part, wait=True)
        if ids:
            self.changed()

    def delete_ids(self, ids: list[Any]) -> None:
        """Delete these chunk points (missing ids are ignored)."""
        from qdrant_client import models  # lazy: qdrant_client takes about a second to import

        for part in id_batches(ids):
            self.client.delete(self.collection, points_selector=models.PointIdsList(points=part), wait=True)
        if ids:
            self.changed()

    def delete_source(self, source: str, *, not_sha256: str | None = None) -> None:
        """Delete the chunks of ``source`` (all, or those whose content hash is not ``not_sha256``)."""
        from qdrant_client import models  # lazy: qdrant_client takes about a second to import

        self.client.delete(
            self.collection,
            points_selector=models.FilterSelector(filter=source_filter(source, not_sha256=not_sha256)),
            wait=True,
        )

    def delete_beyond(self, source: str, sha256: str, chunks: int) -> None:
        """Delete the chunks of ``source`` with content ``sha256`` whose index is ``chunks`` or more."""
        from qdrant_client import models  # lazy: qdrant_client takes about a second to import

        flt = models.Filter(
            must=[
                field_is(SOURCE, source),
                field_is(FILE_SHA256, sha256),
                models.FieldCondition(key=metadata_path(CHUNK_INDEX), range=models.Range(gte=chunks)),
            ]
        )
        self.client.delete(self.collection, points_selector=models.FilterSelector(filter=flt), wait=True)

    def reweight_keywords(self, chunk_weight: float, keyword_weight: float) -> None:
        """Rebuild every keyword-augmented vector from the stored dense and mean key-phrase vectors.

        ``keywords = normalize(chunk_weight * dense + keyword_weight * keywords_mean)``; nothing
        is embedded.
        """
        import numpy as np
        from qdrant_client import models  # lazy: qdrant_client takes about a second to import

        for records in scroll_pages(
            self.client, self.collection, vectors=[DENSE_VECTOR, KEYWORD_MEAN_VECTOR], local=self.local
        ):
            named: list[dict[str, Any]] = [dict(r.vector or {}) for r in records]
            dense = np.array([v[DENSE_VECTOR] for v in named], dtype=np.float32)
            means = np.array([v[KEYWORD_MEAN_VECTOR] for v in named], dtype=np.float32)
            mixed = augmented(dense, means, chunk_weight, keyword_weight)
            self.client.update_vectors(
                self.collection,
                points=[
                    models.PointVectors(id=r.id, vector={KEYWORD_VECTOR: row.tolist()})
                    for r, row in zip(records, mixed, strict=True)
                ],
                wait=True,
            )
            self.changed()


#: Point ids per ``scroll`` call when a local collection is read through :func:`scroll_pages`.
#: Each call sorts every id, so one page holds a large collection whole: at 200,000 chunks one
#: page of ids takes 2.1 CPU s and 83 MB while it lives, four pages of 65,536 took 3.4 s.
LOCAL_ID_PAGE = 262_144


def scroll_pages(
    client: QdrantClient,
    collection: str,
    *,
    payload: bool | list[str] = False,
    vectors: bool | list[str] = False,
    limit: int = 256,
    local: bool = False,
) -> Iterator[list[Any]]:
    """Every point of a collection, one page at a time (public API; server or local).

    In qdrant-client's local mode every ``scroll`` call sorts all the collection's ids and skips
    to its offset, so reading a collection page by page costs ``points**2 / limit`` (measured:
    the in-process index of 50,000 chunks took 5.8 s to read, of 200,000 94 s; see
    :mod:`evaluation.scale`). With ``local``, the ids are scrolled in pages of
    :data:`LOCAL_ID_PAGE` (a few sorts in all) and each page of ``limit`` points is read by id
    (``retrieve``: constant time per point), which is linear in the collection's size.

    Args:
        client: the client.
        collection: the collection.
        payload: ``with_payload`` of each call (``True``, ``False`` or the payload keys).
        vectors: ``with_vectors`` of each call (``True``, ``False`` or the vector names).
        limit: points per page.
        local: the client is the embedded or in-memory store (read ids first, then by id).

    Yields:
        The non-empty pages of records, in Qdrant's id order. A point deleted while the
        collection is read may be left out; one written meanwhile may be missed.
    """
    if local:
        yield from _pages_by_id(client, collection, payload=payload, vectors=vectors, limit=limit)
        return
    offset: Any = None
    while True:
        records, offset = client.scroll(
            collection, limit=limit, offset=offset, with_payload=payload, with_vectors=vectors
        )
        if records:
            yield records
        if offset is None:
            return


def _pages_by_id(
    client: QdrantClient,
    collection: str,
    *,
    payload: bool | list[str],
    vectors: bool | list[str],
    limit: int,
) -> Iterator[list[Any]]:
    """:func:`scroll_pages` of a local collection: ids in large pages, the points by id."""
    offset: Any = None
    while True:
        ids, offset = client.scroll(
            collection, limit=LOCAL_ID_PAGE, offset=offset, with_payload=False, with_vectors=False
        )
        for start in range(0, len(ids), max(1, limit)):
            part = [record.id for record in ids[start : start + limit]]
            records = client.retrieve(collection, ids=part, with_payload=payload, with_vectors=vectors)
            if records:
                yield records
        if offset is None:
            return
