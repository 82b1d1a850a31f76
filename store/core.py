"""Qdrant access: one client per process, collections that record how they were built.

A collection ``NAME`` holds one point per chunk: a dense vector and the payload
``{"page_content": ..., "metadata": {...}}`` that ``langchain_qdrant`` reads. Its collection
metadata holds a :class:`CollectionRecord` (model, instructions, dimension, chunking), which
every later ingest and search checks.

Beside it, ``NAME__documents`` (no vectors) holds one manifest point per source file, written
only after all of that file's chunks are stored. A file counts as stored only when its manifest
says so; chunks without a matching manifest are leftovers of an interrupted run and are removed
by :meth:`VectorStore.repair`. This makes a file's chunks "all or none" even though the embedded
store writes point by point.

Every chunk is written with the top-level payload flag ``pending: true``
(:data:`PENDING_KEY`), which :meth:`VectorStore.commit_document` clears once the file's
manifest is written. Every search and count excludes flagged chunks inside Qdrant's own query
(:func:`committed_filter`), so the chunks of a file still being written, or left by a killed
run, can never take the place of stored ones, however many there are. A collection written
before the flag existed has no flag anywhere and needs no migration.

Names: ``NAME__documents`` is internal. A :class:`VectorStore` is never opened on an internal
name, and a new collection gets a name that :func:`config.names.validate_collection_name`
accepts; an existing collection whose name only breaks the newer character rules stays usable
(listed, searched, written and dropped) under the name it has.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from config.names import (
    MANIFEST_SUFFIX,
    InvalidNameError,
    is_internal_collection,
    validate_collection_name,
)
from embedder import InstructionSet
from representations.core import (
    KEYWORD_MEAN_VECTOR,
    KEYWORD_VECTOR,
    QUESTION_VECTOR,
    SENTENCE_VECTOR,
    SPARSE_VECTOR,
    RepresentationsRecord,
    augmented,
    representations_record,
)
from store.errors import (
    CollectionMismatchError,
    CollectionNotFoundError,
    DocumentNotFoundError,
    StoreConnectionError,
    StoreLockedError,
)
from store.writes import note_write

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models

    from config import Settings
    from embedder import Embedder

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Prefix of the source of an uploaded file (``upload:<sanitised name>``): a display name, not a path.
UPLOAD_PREFIX = "upload:"
DENSE_VECTOR = ""  # the unnamed default vector, which langchain_qdrant reads
#: Namespace of the deterministic point ids (uuid5 of file hash and chunk index).
POINT_NAMESPACE = uuid.UUID("6f1c8a52-3d0e-5b7a-9c4e-2a1b0d9e8f70")
#: Top-level payload key of a chunk whose file is not committed yet (value ``True``); absent on
#: committed chunks and on every chunk of a collection written before the flag existed.
PENDING_KEY = "pending"
#: Point ids per delete / payload request.
_ID_BATCH = 1024


def chunk_point_id(file_sha256: str, chunk_index: int) -> str:
    """Deterministic id of a chunk: uuid5 of the file's content hash and the chunk index."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{file_sha256}:{chunk_index}"))


#: Id of the manifest-collection point that marks a write in progress.
WRITE_MARKER_ID = str(uuid.uuid5(POINT_NAMESPACE, "write-in-progress"))


def manifest_point_id(source: str) -> str:
    """Deterministic id of a source file's manifest point."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"source:{source}"))


def committed_filter(extra: models.Filter | None = None) -> models.Filter:
    """A filter that leaves out pending chunks (see :data:`PENDING_KEY`), and ANDs ``extra``.

    Chunks without the key (committed ones, and those of collections written before the flag)
    match, so no migration is needed.

    Args:
        extra: a further restriction (documents, domain), or ``None``.

    Returns:
        The filter, for ``query_points``, each of its prefetches, ``count`` and ``scroll``.
    """
    from qdrant_client import models

    pending = models.FieldCondition(key=PENDING_KEY, match=models.MatchValue(value=True))
    return models.Filter(must=[extra] if extra is not None else None, must_not=[pending])


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


class ChunkingRecord(BaseModel):
    """How the collection's documents were chunked."""

    model_config = ConfigDict(extra="allow")

    size: int
    overlap: int
    unit: str = "model tokens"
    splitter: str = "langchain_text_splitters.RecursiveCharacterTextSplitter"


class CollectionRecord(BaseModel):
    """What a collection was built with; stored as the Qdrant collection metadata.

    Attributes:
        model: model id (hub name, folder, or the bundled default's name).
        dimension: vector size.
        normalize: whether vectors were L2-normalised.
        domain: the domain the instructions were built for.
        instructions: query and document instructions (``None`` = no instruction).
        chunking: chunk size and overlap.
        distance: the vector distance.
        representations: the representations besides the dense vector (sparse, sentences,
            keywords, questions); a record written before they existed has none.
        created_at: ISO time of creation.
    """

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    app: str = "instructor-search"
    model: str
    dimension: int
    normalize: bool
    domain: str = ""
    instructions: dict[str, str | None]
    chunking: ChunkingRecord
    distance: str = "cosine"
    representations: RepresentationsRecord = Field(default_factory=RepresentationsRecord)
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def instruction_set(self) -> InstructionSet:
        """The recorded instructions."""
        return InstructionSet(
            query=self.instructions.get("query"), document=self.instructions.get("document")
        )

    def mismatches(self, expected: CollectionRecord, *, check_instructions: bool = True) -> list[str]:
        """Differences that make ``expected`` incompatible with this (found) record."""
        problems: list[str] = []
        if self.model != expected.model:
            problems.append(f"model: found {self.model!r}, expected {expected.model!r}")
        if self.dimension != expected.dimension:
            problems.append(f"dimension: found {self.dimension}, expected {expected.dimension}")
        if self.normalize != expected.normalize:
            problems.append(f"normalize: found {self.normalize}, expected {expected.normalize}")
        if check_instructions:
            for role in ("query", "document"):
                found, wanted = self.instructions.get(role), expected.instructions.get(role)
                if found != wanted:
                    problems.append(f"{role} instruction: found {found!r}, expected {wanted!r}")
        return problems


def expected_record(settings: Settings, embedder: Embedder, *, domain: str | None = None) -> CollectionRecord:
    """The record a collection built now, with these settings and this embedder, would have.

    Args:
        settings: the settings (instructions and chunking sections are used).
        embedder: the embedder (model id, dimension, normalisation).
        domain: overrides ``settings.instructions.domain``.

    Returns:
        The record.
    """
    chosen_domain = settings.instructions.domain if domain is None else domain
    instructions = InstructionSet.for_retrieval(
        chosen_domain,
        query=settings.instructions.query,
        document=settings.instructions.document,
        enabled=settings.instructions.enabled,
    )
    return CollectionRecord(
        model=embedder.model_id,
        dimension=embedder.dimension,
        normalize=embedder.normalize,
        domain=chosen_domain,
        instructions=instructions.as_dict(),
        chunking=ChunkingRecord(size=settings.chunk.size, overlap=settings.chunk.overlap),
        representations=representations_record(
            settings.index,
            keyword_instruction=InstructionSet.for_keywords(
                chosen_domain, enabled=settings.instructions.enabled
            ),
            question_instruction=instructions.query,
        ),
    )


def open_client(settings: Settings) -> QdrantClient:
    """Open the Qdrant client the settings point at (embedded folder, ``:memory:`` or server).

    Args:
        settings: the settings.

    Returns:
        The client. Open one per process and share it: the embedded store is single-process.
        An embedded store left half written by a killed run is repaired before it is returned
        (see :func:`repair_interrupted`).

    Raises:
        StoreLockedError: the embedded folder is already open in another process.
        StoreConnectionError: the server URL is unusable.
    """
    from qdrant_client import QdrantClient

    mode = settings.qdrant_mode
    if mode == "server":
        try:
            return QdrantClient(
                url=settings.qdrant.url, api_key=settings.qdrant.api_key, timeout=settings.qdrant.timeout
            )
        except ValueError as exc:
            raise StoreConnectionError(f"Qdrant URL {settings.qdrant.url!r} is not usable: {exc}") from exc
    if mode == "memory":
        return QdrantClient(location=":memory:")
    path = Path(settings.qdrant_location)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreConnectionError(
            f"cannot create the embedded Qdrant folder {str(path)!r}: {exc.strerror}; "
            "set INSTRUCTOR_SEARCH_QDRANT__PATH (or --qdrant-path) to a writable folder"
        ) from exc
    try:
        client = QdrantClient(path=str(path))
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            raise StoreLockedError(
                f"the embedded Qdrant store {str(path)!r} is already open in another process "
                "(a running app or ingest?). Embedded storage is single-process: stop that process, "
                "use another --qdrant-path, or run a Qdrant server and pass --qdrant-url."
            ) from exc
        raise
    try:
        repair_interrupted(client, settings)  # the folder lock is ours: a write mark left is a dead run's
    except BaseException:
        client.close()  # release the folder lock
        raise
    return client


def _wrap_server_errors(exc: Exception, action: str) -> StoreConnectionError:
    return StoreConnectionError(f"Qdrant failed while {action}: {type(exc).__name__}: {exc}")


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


class VectorStore:
    """A collection and its document manifest.

    Args:
        client: an open client (see :func:`open_client`).
        collection: collection name.
        local: ``True`` for the embedded / in-memory store (payload indexes are skipped there).

    Raises:
        InvalidNameError: ``collection`` is an internal (manifest) collection's name.
    """

    def __init__(self, client: QdrantClient, collection: str, *, local: bool = True) -> None:
        check_user_collection(collection)
        self.client = client
        self.collection = collection
        self.manifest_collection = collection + MANIFEST_SUFFIX
        self.local = local

    # -- collection and record -------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the collection exists."""
        try:
            return bool(self.client.collection_exists(self.collection))
        except Exception as exc:  # qdrant_client raises several transport types; all mean "server problem"
            raise _wrap_server_errors(exc, f"checking collection {self.collection!r}") from exc

    def read_record(self) -> CollectionRecord | None:
        """The collection's build record; ``None`` if the collection does not exist.

        Raises:
            CollectionMismatchError: the collection exists but was not built by instructor-search.
        """
        if not self.exists():
            return None
        info = self.client.get_collection(self.collection)
        metadata = info.config.metadata or {}
        record = metadata.get("instructor_search")
        if not isinstance(record, dict):
            raise CollectionMismatchError(
                f"collection {self.collection!r} exists but has no instructor-search record "
                "(it was created by another tool). Fix: choose another collection name (--collection)."
            )
        return CollectionRecord.model_validate(record)

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
        problems = found.mismatches(expected, check_instructions=check_instructions)
        if problems:
            raise CollectionMismatchError(
                f"collection {self.collection!r} was built differently: " + "; ".join(problems) + ". "
                "Fix: use the same model and instructions as the collection (see `instructor-search "
                "collections info`), or write to a new collection with --collection NEW_NAME."
            )

    def ensure(self, expected: CollectionRecord) -> CollectionRecord:
        """Create the collection with ``expected`` as its record, or check the existing one.

        Returns:
            The collection's record (the existing one if it was compatible).

        Raises:
            InvalidNameError: the collection does not exist and its name is not one that
                :func:`config.names.validate_collection_name` accepts as it is.
            CollectionMismatchError: the existing collection was built differently.
        """
        from qdrant_client import models

        found = self.read_record()
        if found is not None:
            self.check(found, expected)
            self._ensure_manifest()
            self._ensure_pending_index()
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
        self._check_new_name()
        reps = expected.representations
        dense = models.VectorParams(size=expected.dimension, distance=models.Distance.COSINE)
        vectors: dict[str, models.VectorParams] = {}
        if reps.sentences is not None:
            vectors[SENTENCE_VECTOR] = models.VectorParams(
                size=expected.dimension,
                distance=models.Distance.COSINE,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            )
        if reps.keywords is not None:
            vectors[KEYWORD_VECTOR] = dense
            # The raw mean of the key-phrase embeddings, kept to re-weight without re-embedding;
            # never searched, so not indexed.
            vectors[KEYWORD_MEAN_VECTOR] = models.VectorParams(
                size=expected.dimension,
                distance=models.Distance.COSINE,
                hnsw_config=models.HnswConfigDiff(m=0),
            )
        if reps.questions is not None:
            vectors[QUESTION_VECTOR] = dense
        self.client.create_collection(
            self.collection,
            # The dense chunk vector stays the unnamed default vector, which langchain_qdrant reads.
            vectors_config={DENSE_VECTOR: dense, **vectors} if vectors else dense,
            sparse_vectors_config=(
                {SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)}
                if reps.sparse is not None
                else None
            ),
            metadata={"instructor_search": expected.model_dump(mode="json")},
        )
        if not self.local:
            for key in ("metadata.source", "metadata.file_sha256", "metadata.file_name", "metadata.domain"):
                self.client.create_payload_index(self.collection, key, models.PayloadSchemaType.KEYWORD)
            self.client.create_payload_index(
                self.collection, "metadata.chunk_index", models.PayloadSchemaType.INTEGER
            )
        self._ensure_pending_index()
        self._ensure_manifest()
        self._changed()
        logger.info("created collection %s (%s, dim %d)", self.collection, expected.model, expected.dimension)
        return expected

    def _check_new_name(self) -> None:
        """A new collection's name must pass the name rules exactly as it is (no outer spaces)."""
        cleaned = validate_collection_name(self.collection)
        if cleaned != self.collection:
            raise InvalidNameError(
                f"collection name {self.collection!r} has leading or trailing white space; use {cleaned!r}"
            )

    def _ensure_pending_index(self) -> None:
        """On a server, index the pending flag (every query filters on it); local mode has none."""
        from qdrant_client import models

        if self.local:
            return
        schema = self.client.get_collection(self.collection).payload_schema or {}
        if PENDING_KEY not in schema:
            self.client.create_payload_index(self.collection, PENDING_KEY, models.PayloadSchemaType.BOOL)

    def write_record(self, record: CollectionRecord) -> None:
        """Replace the collection's record (e.g. after estimating the BM25 average length)."""
        self.client.update_collection(
            self.collection, metadata={"instructor_search": record.model_dump(mode="json")}
        )

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
            CollectionMismatchError: the collection has no keyword vectors.
        """
        import numpy as np
        from qdrant_client import models

        record = self.require_record()
        rec = record.representations.keywords
        if rec is None:
            raise CollectionMismatchError(
                f"collection {self.collection!r} has no keyword vectors to re-weight; ingest into a new "
                "collection with INSTRUCTOR_SEARCH_INDEX__KEYWORDS__ENABLED=true"
            )
        if chunk_weight < 0 or keyword_weight < 0 or chunk_weight + keyword_weight <= 0:
            raise CollectionMismatchError(
                f"keyword weights ({chunk_weight}, {keyword_weight}) are not valid: use non-negative "
                "weights with a positive sum"
            )
        for records in scroll_pages(
            self.client, self.collection, vectors=[DENSE_VECTOR, KEYWORD_MEAN_VECTOR]
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
            self._changed()
        updated = record.model_copy(
            update={
                "representations": record.representations.model_copy(
                    update={
                        "keywords": rec.model_copy(
                            update={"chunk_weight": chunk_weight, "keyword_weight": keyword_weight}
                        )
                    }
                )
            }
        )
        self.write_record(updated)
        return updated

    def _ensure_manifest(self) -> None:
        if not self.client.collection_exists(self.manifest_collection):
            self.client.create_collection(self.manifest_collection, vectors_config={})

    def drop(self) -> None:
        """Delete the collection and its manifest."""
        for name in (self.collection, self.manifest_collection):
            if self.client.collection_exists(name):
                self.client.delete_collection(name)
        self._changed()

    def _changed(self) -> None:
        """Chunk points changed: the in-process index of the embedded store is stale."""
        if self.local:
            note_write(self.client, self.collection)

    # -- points ------------------------------------------------------------------------------

    @staticmethod
    def _source_filter(source: str, *, not_sha: str | None = None) -> models.Filter:
        from qdrant_client import models

        must: list[Any] = [
            models.FieldCondition(key="metadata.source", match=models.MatchValue(value=source))
        ]
        must_not: list[Any] = []
        if not_sha is not None:
            must_not.append(
                models.FieldCondition(key="metadata.file_sha256", match=models.MatchValue(value=not_sha))
            )
        return models.Filter(must=must, must_not=must_not or None)

    def count(self, *, pending: bool = False) -> int:
        """Chunk points of committed files in the collection (0 if it does not exist).

        Args:
            pending: count the chunks of files not committed yet too (an ingest in progress,
                or the leftovers of an interrupted one).
        """
        if not self.exists():
            return 0
        flt = None if pending else committed_filter()
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def count_source(self, source: str, *, sha256: str | None = None) -> int:
        """Chunk points of one source (optionally of one content hash)."""
        from qdrant_client import models

        conditions: list[Any] = [
            models.FieldCondition(key="metadata.source", match=models.MatchValue(value=source))
        ]
        if sha256 is not None:
            conditions.append(
                models.FieldCondition(key="metadata.file_sha256", match=models.MatchValue(value=sha256))
            )
        flt = models.Filter(must=conditions)
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def upsert_chunks(self, points: Sequence[models.PointStruct], *, pending: bool = True) -> None:
        """Write chunk points (ids are deterministic, so rewriting is idempotent).

        Args:
            points: the points (their payloads are not modified).
            pending: flag them as pending (:data:`PENDING_KEY`): no search or count sees them
                until :meth:`commit_document` commits their file. ``False`` only for points that
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
        self._changed()

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
        from qdrant_client import models

        if previous is not None:
            stale = [
                chunk_point_id(previous.file_sha256, index)
                for index in range(previous.chunks)
                if previous.file_sha256 != keep_sha256 or (keep_chunks is not None and index >= keep_chunks)
            ]
            for start in range(0, len(stale), 1024):
                self.client.delete(
                    self.collection,
                    points_selector=models.PointIdsList(points=list(stale[start : start + 1024])),
                    wait=True,
                )
            if stale:
                self._changed()
            return
        self.client.delete(
            self.collection,
            points_selector=models.FilterSelector(filter=self._source_filter(source, not_sha=keep_sha256)),
            wait=True,
        )
        if keep_chunks is not None:
            flt = models.Filter(
                must=[
                    models.FieldCondition(key="metadata.source", match=models.MatchValue(value=source)),
                    models.FieldCondition(
                        key="metadata.file_sha256", match=models.MatchValue(value=keep_sha256)
                    ),
                    models.FieldCondition(key="metadata.chunk_index", range=models.Range(gte=keep_chunks)),
                ]
            )
            self.client.delete(self.collection, points_selector=models.FilterSelector(filter=flt), wait=True)
        self._changed()

    def has_chunks(self, manifest: DocumentManifest) -> bool:
        """Whether every chunk a manifest vouches for is stored and committed (by id, no scan)."""
        ids = [chunk_point_id(manifest.file_sha256, index) for index in range(manifest.chunks)]
        for start in range(0, len(ids), _ID_BATCH):
            part = ids[start : start + _ID_BATCH]
            records = self.client.retrieve(
                self.collection, ids=part, with_payload=["metadata.source", PENDING_KEY]
            )
            if len(records) != len(part):
                return False
            for record in records:
                payload = record.payload or {}
                if payload.get(PENDING_KEY) or payload.get("metadata", {}).get("source") != manifest.source:
                    return False
        return True

    def stored_source(self, file_sha256: str) -> str | None:
        """The committed source whose content has this hash, if any (point ids depend on the hash only).

        Args:
            file_sha256: a content hash.

        Returns:
            The source, or ``None`` when no committed document has this content.
        """
        if not self.exists():
            return None
        records = self.client.retrieve(
            self.collection, ids=[chunk_point_id(file_sha256, 0)], with_payload=["metadata.source"]
        )
        if not records:
            return None
        source = (records[0].payload or {}).get("metadata", {}).get("source")
        if not isinstance(source, str):
            return None
        manifest = self.manifest(source)
        if manifest is None or manifest.file_sha256 != file_sha256:
            return None
        return source

    # -- manifest ------------------------------------------------------------------------------

    def manifest(self, source: str) -> DocumentManifest | None:
        """The manifest of a stored source, or ``None``."""
        if not self.client.collection_exists(self.manifest_collection):
            return None
        records = self.client.retrieve(
            self.manifest_collection, ids=[manifest_point_id(source)], with_payload=True
        )
        if not records:
            return None
        return DocumentManifest.model_validate(records[0].payload)

    def commit_document(self, manifest: DocumentManifest) -> None:
        """Mark a source as completely stored (after all its chunks are written).

        The manifest is written first, then the pending flag of the chunks it vouches for is
        cleared: a run killed in between leaves a manifest whose chunks are still flagged,
        which :meth:`repair` commits. While a stored file is being replaced, its old chunks
        stop counting when the new manifest is written and the new ones count once their flag
        is cleared: the file is missing from results for that short moment, never doubled.
        """
        from qdrant_client import models

        self.client.upsert(
            self.manifest_collection,
            points=[
                models.PointStruct(
                    id=manifest_point_id(manifest.source), vector={}, payload=manifest.model_dump()
                )
            ],
            wait=True,
        )
        self._clear_pending([chunk_point_id(manifest.file_sha256, index) for index in range(manifest.chunks)])

    def _clear_pending(self, ids: Sequence[Any]) -> None:
        """Remove the pending flag from these (existing) chunk points."""
        for start in range(0, len(ids), _ID_BATCH):
            self.client.delete_payload(
                self.collection, keys=[PENDING_KEY], points=list(ids[start : start + _ID_BATCH]), wait=True
            )
        if ids:
            self._changed()

    def documents(self) -> list[DocumentManifest]:
        """All stored source files, sorted by source."""
        if not self.client.collection_exists(self.manifest_collection):
            return []
        return sorted(
            (
                DocumentManifest.model_validate(r.payload)
                for r in self._scroll(self.manifest_collection, payload=True)
                if r.payload and "source" in r.payload
            ),
            key=lambda m: m.source,
        )

    def find_document(self, ref: str) -> DocumentManifest:
        """The stored document that ``ref`` names.

        Args:
            ref: the stored source, a path to the file (resolved), or a file name that only one
                stored document has.

        Returns:
            Its manifest.

        Raises:
            DocumentNotFoundError: nothing matches, or a file name matches several documents.
        """
        documents = self.documents()
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
            f"no document {ref!r} in collection {self.collection!r}; "
            "see the stored sources with: instructor-search documents list"
        )

    def delete_document(self, source: str, *, mark: bool = True) -> int:
        """Delete a source's chunks and manifest; returns the number of chunks deleted.

        Args:
            source: the stored source.
            mark: guard the deletion with the write mark (see :meth:`begin_write`); an ingest
                run, which holds the mark already, passes ``False``.
        """
        from qdrant_client import models

        if not self.exists():
            return 0
        removed = self.count_source(source)
        if mark:
            self.repair()  # leftovers of an interrupted run first: that also clears its mark
            self.begin_write()
        # Manifest first: if we stop half-way, repair() removes the orphaned chunks.
        self.client.delete(
            self.manifest_collection,
            points_selector=models.PointIdsList(points=[manifest_point_id(source)]),
            wait=True,
        )
        self.client.delete(
            self.collection,
            points_selector=models.FilterSelector(filter=self._source_filter(source)),
            wait=True,
        )
        self._changed()
        if mark:
            self.end_write()
        return removed

    # -- interrupted writes ---------------------------------------------------------------------

    def begin_write(self) -> None:
        """Mark the collection as being written (cleared by :meth:`end_write`).

        A mark left behind by a process that died makes the next :meth:`repair` scan the
        collection for orphaned chunks; without it the collection is known to be consistent.
        """
        from qdrant_client import models

        self._ensure_manifest()
        self.client.upsert(
            self.manifest_collection,
            points=[
                models.PointStruct(
                    id=WRITE_MARKER_ID,
                    vector={},
                    payload={
                        "kind": "write-in-progress",
                        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    },
                )
            ],
            wait=True,
        )

    def end_write(self) -> None:
        """Clear the mark set by :meth:`begin_write` (the collection is consistent again)."""
        from qdrant_client import models

        if self.client.collection_exists(self.manifest_collection):
            self.client.delete(
                self.manifest_collection,
                points_selector=models.PointIdsList(points=[WRITE_MARKER_ID]),
                wait=True,
            )

    def write_interrupted(self) -> bool:
        """Whether a write was interrupted (its mark is still there)."""
        if not self.client.collection_exists(self.manifest_collection):
            return False
        return bool(self.client.retrieve(self.manifest_collection, ids=[WRITE_MARKER_ID]))

    def repair(self, *, force: bool = False) -> int:
        """Remove chunks that no manifest vouches for, and commit those one does (after a crash).

        A chunk is vouched for when the manifest of its source has its content hash and more
        chunks than its index. Unvouched chunks (an interrupted file, an old version left by a
        replacement) are deleted; vouched chunks still flagged pending (a run killed between
        writing a manifest and clearing its chunks' flag) are committed. The scan runs only
        when a write was interrupted (see :meth:`begin_write`) or when ``force`` is set.

        Note:
            On a Qdrant server, a repair while another process is ingesting into the same
            collection removes that process's not yet committed chunks; the next ingest of
            those files stores them again. :func:`repair_interrupted` therefore repairs only
            embedded stores when they are opened.

        Args:
            force: scan even if no write was interrupted.

        Returns:
            The number of chunk points removed.
        """
        from qdrant_client import models

        if not self.exists() or not (force or self.write_interrupted()):
            return 0
        orphans, vouched_pending = self._unvouched_and_pending()
        for start in range(0, len(orphans), _ID_BATCH):
            self.client.delete(
                self.collection,
                points_selector=models.PointIdsList(points=orphans[start : start + _ID_BATCH]),
                wait=True,
            )
        if orphans:
            self._changed()
            logger.warning("removed %d chunks of interrupted ingests from %s", len(orphans), self.collection)
        if vouched_pending:
            self._clear_pending(vouched_pending)
            logger.warning(
                "committed %d stored chunks of an interrupted commit in %s",
                len(vouched_pending),
                self.collection,
            )
        self.end_write()
        return len(orphans)

    def _unvouched_and_pending(self) -> tuple[list[Any], list[Any]]:
        """Ids of the chunks no manifest vouches for, and of the vouched ones still pending."""
        committed = {m.source: (m.file_sha256, m.chunks) for m in self.documents()}
        orphans: list[Any] = []
        pending: list[Any] = []
        for record in self._scroll(
            self.collection,
            payload=["metadata.source", "metadata.file_sha256", "metadata.chunk_index", PENDING_KEY],
        ):
            payload = record.payload or {}
            meta = payload.get("metadata", {})
            vouched = committed.get(meta.get("source"))
            index = meta.get("chunk_index")
            if (
                vouched is None
                or vouched[0] != meta.get("file_sha256")
                or not isinstance(index, int)
                or index >= vouched[1]
            ):
                orphans.append(record.id)
            elif payload.get(PENDING_KEY):
                pending.append(record.id)
        return orphans, pending

    def _scroll(self, collection: str, *, payload: bool | list[str]) -> Iterator[Any]:
        for page in scroll_pages(self.client, collection, payload=payload):
            yield from page


def scroll_pages(
    client: QdrantClient,
    collection: str,
    *,
    payload: bool | list[str] = False,
    vectors: bool | list[str] = False,
    limit: int = 256,
) -> Iterator[list[Any]]:
    """Every point of a collection, one ``scroll`` page at a time (public API; server or local).

    Args:
        client: the client.
        collection: the collection.
        payload: ``with_payload`` of each call (``True``, ``False`` or the payload keys).
        vectors: ``with_vectors`` of each call (``True``, ``False`` or the vector names).
        limit: points per page.

    Yields:
        The non-empty pages of records, in Qdrant's id order.
    """
    offset: Any = None
    while True:
        records, offset = client.scroll(
            collection, limit=limit, offset=offset, with_payload=payload, with_vectors=vectors
        )
        if records:
            yield records
        if offset is None:
            return


def list_collections(client: QdrantClient) -> list[str]:
    """Names of the user collections (internal manifest collections left out)."""
    names: Iterable[str] = (c.name for c in client.get_collections().collections)
    return sorted(name for name in names if not is_internal_collection(name))


def repair_interrupted(client: QdrantClient, settings: Settings) -> dict[str, int]:
    """Repair every collection of an embedded store that a killed run left half written.

    :func:`open_client` calls it: the embedded store's folder lock guarantees that
    no other process is writing, so a write mark (see :meth:`VectorStore.begin_write`) left in
    place can only be a dead run's, and its leftovers are removed now rather than at the next
    write. A server may have a concurrent ingest by another process, so nothing is done there
    (the next write repairs, see :meth:`VectorStore.repair`).

    Args:
        client: the client just opened.
        settings: the settings it was opened with.

    Returns:
        ``collection -> chunks removed`` of the collections that were repaired.
    """
    if settings.qdrant_mode == "server":
        return {}
    repaired: dict[str, int] = {}
    for name in list_collections(client):
        store = VectorStore(client, name, local=True)
        if store.write_interrupted():
            repaired[name] = store.repair()
    if repaired:
        logger.warning("repaired collections left half written by an interrupted run: %s", repaired)
    return repaired
