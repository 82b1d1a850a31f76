"""The document manifest of a collection, the write mark, and the repair after an interrupted write.

Beside a chunk collection ``NAME``, ``NAME__documents`` (no vectors) holds one manifest point per
source file (:class:`DocumentManifest`), written only after all of that file's chunks are stored.
A file counts as stored only when its manifest says so; chunks without a matching manifest are
leftovers of an interrupted run and are removed by :func:`repair`. This makes a file's chunks
"all or none" even though the embedded store writes point by point.

A writer sets the write mark (:meth:`Manifests.begin_write`) before it writes and clears it when
the collection is consistent again; a mark left behind by a process that died makes the next
repair scan the collection. Without it the collection is known to be consistent.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from config.names import MANIFEST_SUFFIX
from store.errors import DocumentNotFoundError
from store.journal import use_wal
from store.payload import (
    CHUNK_INDEX,
    FILE_SHA256,
    PENDING_KEY,
    SOURCE,
    UPLOAD_PREFIX,
    WRITE_MARKER_ID,
    chunk_point_id,
    chunk_point_ids,
    manifest_point_id,
    metadata_of,
    metadata_path,
)
from store.points import ChunkPoints, scroll_pages

if TYPE_CHECKING:
    from collections.abc import Sequence

    from qdrant_client import QdrantClient

logger = logging.getLogger(__name__)


class DocumentManifest(BaseModel):
    """One stored source file (a manifest point of ``NAME__documents``).

    ``chunk_size``, ``chunk_overlap`` and ``chunk_strategy`` record the effective chunking, so
    that a file is re-chunked when the chunking settings change.
    """

    model_config = ConfigDict(extra="allow")

    source: str
    file_name: str
    file_sha256: str
    chunks: int
    pages: int | None = None
    domain: str = ""
    ingested_at: str
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    chunk_strategy: str | None = None

    def chunk_ids(self) -> list[str]:
        """The point ids of the chunks this manifest vouches for."""
        return chunk_point_ids(self.file_sha256, self.chunks)

    def stale_chunk_ids(self, keep_sha256: str, keep_chunks: int | None) -> list[str]:
        """The ids of its chunks that the content ``keep_sha256`` in ``keep_chunks`` chunks does not reuse."""
        return [
            chunk_point_id(self.file_sha256, index)
            for index in range(self.chunks)
            if self.file_sha256 != keep_sha256 or (keep_chunks is not None and index >= keep_chunks)
        ]


class ManifestSnapshot(Mapping[str, DocumentManifest]):
    """The manifests of a collection at one moment, by source; each is validated when looked up.

    An ingest run looks up the few sources it is given and the content hash of every stored file
    (to find duplicates): validating every manifest up front was most of the cost of a small
    ingest into a large collection (0.72 s of 0.8 s for 6,830 files, :mod:`evaluation.scale`).

    Args:
        payloads: each manifest's stored payload, by source.
    """

    def __init__(self, payloads: Mapping[str, Mapping[str, Any]]) -> None:
        self._payloads = dict(payloads)
        self._validated: dict[str, DocumentManifest] = {}

    def __getitem__(self, source: str) -> DocumentManifest:
        manifest = self._validated.get(source)
        if manifest is None:
            manifest = self._validated[source] = DocumentManifest.model_validate(self._payloads[source])
        return manifest

    def __iter__(self) -> Iterator[str]:
        return iter(self._payloads)

    def __len__(self) -> int:
        return len(self._payloads)

    def hashes(self) -> dict[str, str]:
        """``file_sha256 -> source`` of every stored file, without validating the manifests."""
        return {
            sha: source
            for source, payload in self._payloads.items()
            if isinstance(sha := payload.get(FILE_SHA256), str)
        }


class Manifests:
    """The manifest collection ``NAME__documents`` of the chunk collection ``NAME``.

    Args:
        client: an open client.
        collection: the chunk collection's name.
        local: ``True`` for the embedded / in-memory store (read through
            :func:`store.points.scroll_pages`' linear path there).
    """

    def __init__(self, client: QdrantClient, collection: str, *, local: bool = False) -> None:
        self.client = client
        self.name = collection + MANIFEST_SUFFIX
        self.local = local

    def exists(self) -> bool:
        """Whether the manifest collection exists."""
        return bool(self.client.collection_exists(self.name))

    def ensure(self) -> None:
        """Create the manifest collection if it does not exist."""
        if not self.exists():
            self.client.create_collection(self.name, vectors_config={})
            if self.local:
                use_wal(self.client)  # the new collection's storage file (see store.journal)

    def drop(self) -> None:
        """Delete the manifest collection (if it exists)."""
        if self.exists():
            self.client.delete_collection(self.name)

    def get(self, source: str) -> DocumentManifest | None:
        """The manifest of a stored source, or ``None``."""
        if not self.exists():
            return None
        records = self.client.retrieve(self.name, ids=[manifest_point_id(source)], with_payload=True)
        if not records:
            return None
        return DocumentManifest.model_validate(records[0].payload)

    def snapshot(self) -> ManifestSnapshot:
        """Every manifest as it is now, each validated only when it is looked up (an ingest run's view)."""
        if not self.exists():
            return ManifestSnapshot({})
        return ManifestSnapshot(
            {
                r.payload["source"]: r.payload
                for page in scroll_pages(self.client, self.name, payload=True, local=self.local)
                for r in page
                if r.payload and isinstance(r.payload.get("source"), str)
            }
        )

    def all(self) -> list[DocumentManifest]:
        """Every manifest, sorted by source."""
        if not self.exists():
            return []
        return sorted(
            (
                DocumentManifest.model_validate(r.payload)
                for page in scroll_pages(self.client, self.name, payload=True, local=self.local)
                for r in page
                if r.payload and "source" in r.payload
            ),
            key=lambda m: m.source,
        )

    def committed_hashes(self, sources: set[str]) -> dict[str, str]:
        """``source -> file_sha256`` of the completely stored files among ``sources`` (by id, no scan)."""
        if not sources or not self.exists():
            return {}
        records = self.client.retrieve(
            self.name,
            ids=[manifest_point_id(source) for source in sorted(sources)],
            with_payload=["source", "file_sha256"],
        )
        found: dict[str, str] = {}
        for record in records:
            payload = record.payload or {}
            source, sha = payload.get("source"), payload.get("file_sha256")
            if isinstance(source, str) and isinstance(sha, str):
                found[source] = sha
        return found

    def put(self, manifest: DocumentManifest) -> None:
        """Write a manifest (the collection exists)."""
        from qdrant_client import models  # lazy: qdrant_client takes about a second to import

        point = models.PointStruct(
            id=manifest_point_id(manifest.source), vector={}, payload=manifest.model_dump()
        )
        self.client.upsert(self.name, points=[point], wait=True)

    def delete(self, source: str) -> None:
        """Delete a source's manifest (the collection exists)."""
        self._delete_point(manifest_point_id(source))

    def _delete_point(self, point_id: str) -> None:
        from qdrant_client import models  # lazy: qdrant_client takes about a second to import

        self.client.delete(self.name, points_selector=models.PointIdsList(points=[point_id]), wait=True)

    # -- the write mark ---------------------------------------------------------------------------

    def begin_write(self) -> None:
        """Set the write mark (creating the manifest collection if needed)."""
        from qdrant_client import models  # lazy: qdrant_client takes about a second to import

        self.ensure()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        marker = models.PointStruct(
            id=WRITE_MARKER_ID, vector={}, payload={"kind": "write-in-progress", "started_at": started}
        )
        self.client.upsert(self.name, points=[marker], wait=True)

    def end_write(self) -> None:
        """Clear the write mark (if the manifest collection exists)."""
        if self.exists():
            self._delete_point(WRITE_MARKER_ID)

    def write_interrupted(self) -> bool:
        """Whether the write mark is set."""
        if not self.exists():
            return False
        return bool(self.client.retrieve(self.name, ids=[WRITE_MARKER_ID]))


def find_document(documents: Sequence[DocumentManifest], ref: str, collection: str) -> DocumentManifest:
    """The stored document that ``ref`` names.

    Args:
        documents: the collection's manifests.
        ref: the stored source, a path to the file (resolved), or a file name that only one
            stored document has.
        collection: the collection's name (for the message).

    Returns:
        Its manifest.

    Raises:
        DocumentNotFoundError: nothing matches, or a file name matches several documents.
    """
    by_source = {doc.source: doc for doc in documents}
    candidates = [ref, UPLOAD_PREFIX + ref]
    with contextlib.suppress(OSError, RuntimeError):  # an odd string is simply not a path
        candidates.append(str(Path(ref).expanduser().resolve()))
    for candidate in candidates:
        if candidate in by_source:
            return by_source[candidate]
    named = [doc for doc in documents if ref in (doc.file_name, Path(doc.source).name)]
    if len(named) == 1:
        return named[0]
    if named:
        listing = ", ".join(repr(doc.source) for doc in named)
        raise DocumentNotFoundError(
            f"{ref!r} matches {len(named)} documents ({listing}); give the full source instead"
        )
    raise DocumentNotFoundError(
        f"no document {ref!r} in collection {collection!r}; "
        "see the stored sources with: instructor-search documents list"
    )


def pending_chunk_ids(client: QdrantClient, collection: str, *, local: bool) -> set[Any]:
    """Ids of the chunks of ``collection`` flagged pending (files not committed yet).

    The write mark is set before any chunk is written pending and cleared only once none is
    left (every file committed, or the leftovers repaired), so without it nothing is looked
    for: a filtered scroll evaluates the filter for every point in qdrant-client's local mode.
    Read the ids to be checked *before* calling this: a chunk pending among them means the
    mark was set then, and if it has been cleared since, that chunk is committed now.

    Args:
        client: the client.
        collection: the chunk collection.
        local: the client is the embedded or in-memory store.
    """
    if not Manifests(client, collection, local=local).write_interrupted():
        return set()
    return set(ChunkPoints(client, collection, local=local).pending_ids())


def repair(points: ChunkPoints, manifests: Manifests) -> int:
    """Remove the chunks no manifest vouches for, commit the vouched ones still pending, clear the mark.

    A chunk is vouched for when the manifest of its source has its content hash and more
    chunks than its index. Unvouched chunks (an interrupted file, an old version left by a
    replacement) are deleted; vouched chunks still flagged pending (a run killed between
    writing a manifest and clearing its chunks' flag) are committed.

    Args:
        points: the collection's chunk points (the collection exists).
        manifests: its manifests.

    Returns:
        The number of chunk points removed.
    """
    orphans, vouched_pending = _unvouched_and_pending(points, manifests.all())
    points.delete_ids(orphans)
    if orphans:
        logger.warning("removed %d chunks of interrupted ingests from %s", len(orphans), points.collection)
    if vouched_pending:
        points.clear_pending(vouched_pending)
        logger.warning(
            "committed %d stored chunks of an interrupted commit in %s",
            len(vouched_pending),
            points.collection,
        )
    manifests.end_write()
    return len(orphans)


def _unvouched_and_pending(
    points: ChunkPoints, documents: Sequence[DocumentManifest]
) -> tuple[list[Any], list[Any]]:
    """Ids of the chunks no manifest vouches for, and of the vouched ones still pending."""
    committed = {m.source: (m.file_sha256, m.chunks) for m in documents}
    orphans: list[Any] = []
    pending: list[Any] = []
    keys = [metadata_path(SOURCE), metadata_path(FILE_SHA256), metadata_path(CHUNK_INDEX), PENDING_KEY]
    for record in points.scroll(payload=keys):
        payload = record.payload or {}
        meta = metadata_of(payload)
        source = meta.get(SOURCE)
        vouched = committed.get(source) if isinstance(source, str) else None
        index = meta.get(CHUNK_INDEX)
        if (
            vouched is None
            or vouched[0] != meta.get(FILE_SHA256)
            or not isinstance(index, int)
            or index >= vouched[1]
        ):
            orphans.append(record.id)
        elif payload.get(PENDING_KEY):
            pending.append(record.id)
    return orphans, pending
