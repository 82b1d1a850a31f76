"""A collection and its document manifest, behind one object: :class:`VectorStore`.

A collection ``NAME`` holds one point per chunk: a dense vector and the payload
``{"page_content": ..., "metadata": {...}}`` that ``langchain_qdrant`` reads (the keys are in
:mod:`store.payload`). Its collection metadata holds a :class:`~store.record.CollectionRecord`
(model, instructions, dimension, chunking), which every later ingest and search checks. Beside
it, ``NAME__documents`` holds one manifest per stored file (:mod:`store.manifest`): a file counts
as stored only when its manifest says so, and :meth:`VectorStore.repair` removes chunks no
manifest vouches for, so a file's chunks are "all or none".

Every chunk is written with the top-level payload flag ``pending: true``
(:data:`store.payload.PENDING_KEY`), which :meth:`VectorStore.commit_document` clears once the
file's manifest is written. Every search and count excludes flagged chunks inside Qdrant's own
query (:func:`store.payload.committed_filter`), so the chunks of a file still being written, or
left by a killed run, can never take the place of stored ones, however many there are. A
collection written before the flag existed has no flag anywhere and needs no migration.

Names: a :class:`VectorStore` is never opened on an internal (``NAME__documents``) name, and a
new collection gets a name that :func:`config.names.validate_collection_name` accepts; an
existing collection whose name only breaks the newer character rules stays usable (listed,
searched, written and dropped) under the name it has.

The parts: :mod:`store.client` opens Qdrant, :mod:`store.record` and :mod:`store.schema` say
what a collection is built with and how, :mod:`store.points` writes and reads the chunk points,
:mod:`store.manifest` the manifests, the write mark and the repair.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from config.names import InvalidNameError, is_internal_collection, validate_collection_name
from store.capacity import outgrown_note
from store.chunks import StoredChunk, iter_stored_chunks
from store.client import wrap_server_errors
from store.errors import CollectionNotFoundError
from store.manifest import DocumentManifest, Manifests, ManifestSnapshot, find_document, repair
from store.points import ChunkPoints
from store.record import (
    CollectionRecord,
    check_compatible,
    record_from_metadata,
    record_metadata,
    with_keyword_weights,
)
from store.schema import create_collection, ensure_pending_index

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models

    from config import Settings

logger = logging.getLogger(__name__)


def check_user_collection(name: str) -> None:
    """Refuse an internal collection name (a manifest collection) as a user collection.

    Args:
        name: the collection name.

    Raises:
        InvalidNameError: ``name`` is empty or (without outer spaces) ends in a reserved suffix;
            the message is :func:`config.names.validate_collection_name`'s.
    """
    if not isinstance(name, str) or not name.strip() or is_internal_collection(name.strip()):
        validate_collection_name(name)  # raises its "is empty" or "is reserved" message
        raise InvalidNameError(f"collection name {name!r} is not allowed; choose another name")


class VectorStore:
    """A collection and its document manifest.

    Args:
        client: an open client (see :func:`store.client.open_client`).
        collection: collection name.
        local: ``True`` for the embedded / in-memory store (payload indexes are skipped there).

    Raises:
        InvalidNameError: ``collection`` is an internal (manifest) collection's name.
    """

    #: The chunks an embedded store serves well (``qdrant.local_max_points``, set by :func:`store_for`;
    #: ``None``: no limit, e.g. a server); see :func:`outgrown`.
    local_max_points: int | None = None

    def __init__(self, client: QdrantClient, collection: str, *, local: bool = True) -> None:
        check_user_collection(collection)
        self.client = client
        self.collection = collection
        self.local = local
        self.points = ChunkPoints(client, collection, local=local)
        self.manifests = Manifests(client, collection, local=local)

    # -- collection and record -------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the collection exists."""
        try:
            return bool(self.client.collection_exists(self.collection))
        except Exception as exc:  # qdrant_client raises several transport types; all mean "server problem"
            raise wrap_server_errors(exc, f"checking collection {self.collection!r}") from exc

    def read_record(self) -> CollectionRecord | None:
        """The collection's build record; ``None`` if the collection does not exist.

        Raises:
            CollectionMismatchError: the collection exists but was not built by instructor-search.
        """
        if not self.exists():
            return None
        return record_from_metadata(
            self.collection, self.client.get_collection(self.collection).config.metadata
        )

    def require_record(self) -> CollectionRecord:
        """The record, or a clear error when the collection does not exist.

        Raises:
            CollectionNotFoundError: no such collection; the message says how to create it.
        """
        record = self.read_record()
        if record is None:
            raise CollectionNotFoundError(
                f"collection {self.collection!r} does not exist yet. Create it by ingesting documents: "
                f"instructor-search ingest PATH --collection {self.collection}"
            )
        return record

    def check(
        self, found: CollectionRecord, expected: CollectionRecord, *, check_instructions: bool = True
    ) -> None:
        """Refuse to use a collection built differently from ``expected``.

        Raises:
            CollectionMismatchError: with found/expected/fix.
        """
        check_compatible(self.collection, found, expected, check_instructions=check_instructions)

    def ensure(self, expected: CollectionRecord) -> CollectionRecord:
        """Create the collection with ``expected`` as its record, or check the existing one.

        The new collection's vectors and payload indexes are :func:`store.schema.create_collection`'s.

        Returns:
            The collection's record (the existing one if it was compatible).

        Raises:
            InvalidNameError: the collection does not exist and its name is not one that
                :func:`config.names.validate_collection_name` accepts as it is.
            CollectionMismatchError: the existing collection was built differently.
        """
        found = self.read_record()
        if found is not None:
            self.check(found, expected)
            self.manifests.ensure()
            ensure_pending_index(self.client, self.collection, local=self.local)
            missing = set(expected.representations.available()) - set(found.representations.available())
            if missing:
                logger.warning(
                    "collection %s has no %s representation(s); its chunks are built with what it has "
                    "(%s). To add them, ingest into a new collection (--collection NEW_NAME).",
                    self.collection,
                    ", ".join(sorted(missing)),
                    ", ".join(found.representations.available()),
                )
            return found
        cleaned = validate_collection_name(self.collection)  # a new name must pass the rules as it is
        if cleaned != self.collection:
            raise InvalidNameError(
                f"collection name {self.collection!r} has leading or trailing white space; use {cleaned!r}"
            )
        create_collection(self.client, self.collection, expected, local=self.local)
        self.manifests.ensure()
        self.points.changed()
        return expected

    def write_record(self, record: CollectionRecord) -> None:
        """Replace the collection's record (e.g. after estimating the BM25 average length)."""
        self.client.update_collection(self.collection, metadata=record_metadata(record))

    def reweight_keywords(self, chunk_weight: float, keyword_weight: float) -> CollectionRecord:
        """Rebuild the keyword-augmented vectors with new weights, without embedding anything.

        ``keywords = normalize(chunk_weight * dense + keyword_weight * keywords_mean)`` for every
        point, from the stored dense and mean key-phrase vectors; the record is updated.

        Args:
            chunk_weight: weight of the chunk vector.
            keyword_weight: weight of the mean key-phrase vector.

        Returns:
            The updated record.

        Raises:
            CollectionMismatchError: the collection has no keyword vectors, or the weights are
                not valid.
        """
        updated = with_keyword_weights(self.collection, self.require_record(), chunk_weight, keyword_weight)
        self.points.reweight_keywords(chunk_weight, keyword_weight)
        self.write_record(updated)
        return updated

    def drop(self) -> None:
        """Delete the collection and its manifest."""
        if self.client.collection_exists(self.collection):
            self.client.delete_collection(self.collection)
        self.manifests.drop()
        self.points.changed()

    # -- chunk points (see store.points) -----------------------------------------------------------

    def count(self, *, pending: bool = False) -> int:
        """Chunk points of committed files in the collection (0 if it does not exist).

        No write mark, no pending chunk: an embedded store then counts all in O(1) (not by a filter).

        Args:
            pending: count the chunks of files not committed yet too (an ingest in progress,
                or the leftovers of an interrupted one).
        """
        if not self.exists():
            return 0
        if not pending and self.local and not self.write_interrupted():
            pending = True  # no mark, no pending chunk (store.manifest.pending_chunk_ids): O(1), not a scan
        return self.points.count(pending=pending)

    def count_source(self, source: str, *, sha256: str | None = None) -> int:
        """Chunk points of one source (optionally of one content hash)."""
        return self.points.count_source(source, sha256=sha256)

    def iter_chunks(self, batch: int = 256) -> Iterator[StoredChunk]:
        """Every chunk of the completely stored files, read-only (see :func:`store.chunks.iter_stored_chunks`).

        Raises:
            CollectionNotFoundError: the collection does not exist.
        """
        self.require_record()
        return iter_stored_chunks(self.client, self.collection, self.manifests, batch=batch)

    def upsert_chunks(self, points: Sequence[models.PointStruct], *, pending: bool = True) -> None:
        """Write chunk points; see :meth:`store.points.ChunkPoints.upsert`."""
        self.points.upsert(points, pending=pending)

    def delete_stale(
        self,
        source: str,
        keep_sha256: str,
        *,
        keep_chunks: int | None = None,
        previous: DocumentManifest | None = None,
    ) -> None:
        """Delete the chunks of ``source`` that are not part of its current content.

        Args:
            source: the source.
            keep_sha256: the current content hash; chunks with another hash are deleted.
            keep_chunks: the current chunk count; chunks of the current hash with a higher index
                (left by an earlier, different chunking of the same content) are deleted too.
            previous: the source's previous manifest. When given, its chunks are deleted by id
                (fast everywhere); otherwise by a payload filter (a full scan in embedded mode).
        """
        if previous is not None:
            self.points.delete_ids(previous.stale_chunk_ids(keep_sha256, keep_chunks))
            return
        self.points.delete_source(source, not_sha256=keep_sha256)
        if keep_chunks is not None:
            self.points.delete_beyond(source, keep_sha256, keep_chunks)
        self.points.changed()

    def has_chunks(self, manifest: DocumentManifest) -> bool:
        """Whether every chunk a manifest vouches for is stored and committed (by id, no scan)."""
        return self.points.all_committed(manifest.chunk_ids(), manifest.source)

    # -- manifest (see store.manifest) ---------------------------------------------------------

    def commit_document(self, manifest: DocumentManifest) -> None:
        """Mark a source as completely stored (after all its chunks are written).

        The manifest is written first, then the pending flag of the chunks it vouches for is
        cleared: a run killed in between leaves a manifest whose chunks are still flagged,
        which :meth:`repair` commits. While a stored file is being replaced, its old chunks
        stop counting when the new manifest is written and the new ones count once their flag
        is cleared: the file is missing from results for that short moment, never doubled.
        """
        self.manifests.put(manifest)
        self.points.clear_pending(manifest.chunk_ids())

    def document_snapshot(self) -> ManifestSnapshot:
        """Every stored source's manifest as it is now, validated on lookup (what an ingest run reads)."""
        return self.manifests.snapshot()

    def documents(self) -> list[DocumentManifest]:
        """All stored source files, sorted by source."""
        return self.manifests.all()

    def find_document(self, ref: str) -> DocumentManifest:
        """The stored document that ``ref`` names; see :func:`store.manifest.find_document`.

        Raises:
            DocumentNotFoundError: nothing matches, or a file name matches several documents.
        """
        return find_document(self.documents(), ref, self.collection)

    def delete_document(self, source: str, *, mark: bool = True) -> int:
        """Delete a source's chunks and manifest; returns the number of chunks deleted.

        Args:
            source: the stored source.
            mark: guard the deletion with the write mark (see :meth:`begin_write`); an ingest
                run, which holds the mark already, passes ``False``.
        """
        if not self.exists():
            return 0
        removed = self.count_source(source)
        if mark:
            self.repair()  # leftovers of an interrupted run first: that also clears its mark
            self.begin_write()
        # Manifest first: if we stop half-way, repair() removes the orphaned chunks.
        self.manifests.delete(source)
        self.points.delete_source(source)
        self.points.changed()
        if mark:
            self.end_write()
        return removed

    # -- interrupted writes --------------------------------------------------------------------

    def begin_write(self) -> None:
        """Mark the collection as being written (cleared by :meth:`end_write`).

        A mark left behind by a process that died makes the next :meth:`repair` scan the
        collection for orphaned chunks; without it the collection is known to be consistent.
        """
        self.manifests.begin_write()

    def end_write(self) -> None:
        """Clear the mark set by :meth:`begin_write`; log :func:`outgrown`'s note (once per ingest)."""
        self.manifests.end_write()
        if (note := outgrown(self)) is not None:
            logger.warning("%s", note)

    def write_interrupted(self) -> bool:
        """Whether a write was interrupted (its mark is still there)."""
        return self.manifests.write_interrupted()

    def repair(self, *, force: bool = False) -> int:
        """Remove chunks that no manifest vouches for, and commit those one does (after a crash).

        See :func:`store.manifest.repair`. The scan runs only when a write was interrupted (see
        :meth:`begin_write`) or when ``force`` is set.

        Note:
            On a Qdrant server, a repair while another process is ingesting into the same
            collection removes that process's not yet committed chunks; the next ingest of
            those files stores them again. :func:`store.client.repair_interrupted` therefore
            repairs only embedded stores when they are opened.

        Args:
            force: scan even if no write was interrupted.

        Returns:
            The number of chunk points removed.
        """
        if not self.exists() or not (force or self.write_interrupted()):
            return 0
        return repair(self.points, self.manifests)


def outgrown(store: VectorStore) -> str | None:
    """Why and how to move the collection to a server, past its ``local_max_points`` (:mod:`store.capacity`).

    Returns:
        The note, or ``None`` (within the limit, or no limit: a server).
    """
    limit = store.local_max_points
    return outgrown_note(store.collection, store.count(), limit) if limit is not None else None


def store_for(settings: Settings, collection: str | None = None, *, client: QdrantClient) -> VectorStore:
    """The :class:`VectorStore` of a collection on the client the settings opened.

    Args:
        settings: the settings ``client`` was opened with (:func:`store.client.open_client`);
            they say whether the store is local (embedded or in memory) or a server.
        collection: the collection (the settings' ``qdrant.collection`` by default).
        client: the open client.

    Returns:
        The store.

    Raises:
        InvalidNameError: ``collection`` is an internal (manifest) collection's name.
    """
    name = settings.qdrant.collection if collection is None else collection
    mode = settings.qdrant_mode
    store = VectorStore(client, name, local=mode != "server")
    store.local_max_points = settings.qdrant.local_max_points if mode == "embedded" else None
    return store
