"""Re-embed a collection under another model into a new collection, from its stored chunks.

The source's chunk texts and payloads are what is re-embedded, never the original files (which
may be gone): every committed document of the source is copied into the target with the same
point ids, the same payload and the same manifest, and new vectors from the target's embedder
(the dense vector and every representation the source's record has, see
:mod:`representations.builder`). The source is only read.

The target gets a record of its own (:func:`target_record`): the source's instructions,
chunking and representations, the new model, and ``derived_from`` naming the source, so a
later run knows it may continue it. Writes follow the store's protocol (:mod:`store.core`):
points are upserted pending, and a document's manifest is committed once all its chunks are
written. A run that is killed leaves the write mark; the next run repairs the target first and
skips the documents already committed in it, so it resumes where the killed one stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ingest.errors import IngestCancelledError, IngestError
from representations.augmented import QuestionGenerator, Questions
from representations.builder import RepresentationBuilder
from representations.dense import DENSE_VECTOR
from representations.records import with_sparse_avg_length
from store.payload import CONTENT_KEY, PENDING_KEY, SOURCE, chunk_point_id, id_batches, metadata_of
from store.record import CollectionRecord

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from qdrant_client import models

    from config import Settings
    from embedder import Embedder
    from store.core import VectorStore
    from store.manifest import DocumentManifest

__all__ = ["DERIVED_FROM", "ReembedReport", "derived_from", "reembed_collection", "target_record"]

logger = logging.getLogger(__name__)

#: Extra field of a re-embedded collection's record: where it came from.
DERIVED_FROM = "derived_from"

#: ``progress(chunks_done, chunks_total)``; chunks of documents already in the target count as done.
Progress = Callable[[int, int], None]


@dataclass
class ReembedReport:
    """What a re-embedding run did.

    Attributes:
        source: the source collection.
        target: the target collection.
        model: the model id of the target's vectors.
        documents: committed documents of the source.
        copied: documents written by this run.
        skipped: documents already committed in the target (a resumed run).
        removed: documents of the target that the source no longer has (deleted from the target).
        incomplete: sources of documents whose chunks are not all stored in the source (not copied).
        chunks_embedded: chunks embedded by this run.
        points: committed chunk points in the target afterwards.
        repaired: chunk points of an interrupted earlier run removed from the target first.
        seconds: wall time.
        cancelled: the run was cancelled; the documents copied before are kept.
    """

    source: str
    target: str
    model: str
    documents: int = 0
    copied: int = 0
    skipped: int = 0
    removed: int = 0
    incomplete: list[str] = field(default_factory=list)
    chunks_embedded: int = 0
    points: int = 0
    repaired: int = 0
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def complete(self) -> bool:
        """Whether the target now holds every document of the source."""
        return not self.cancelled and not self.incomplete

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "source": self.source,
            "target": self.target,
            "model": self.model,
            "documents": self.documents,
            "copied": self.copied,
            "skipped": self.skipped,
            "removed": self.removed,
            "incomplete": list(self.incomplete),
            "chunks_embedded": self.chunks_embedded,
            "points": self.points,
            "repaired": self.repaired,
            "seconds": round(self.seconds, 2),
            "cancelled": self.cancelled,
        }


def derived_from(record: CollectionRecord) -> dict[str, Any] | None:
    """The ``derived_from`` entry of a re-embedded collection's record (``None``: not re-embedded)."""
    value = (record.model_extra or {}).get(DERIVED_FROM)
    return dict(value) if isinstance(value, Mapping) else None


def target_record(
    source: CollectionRecord,
    embedder: Embedder,
    *,
    collection: str,
    note: Mapping[str, Any] | None = None,
) -> CollectionRecord:
    """The record of a re-embedding of ``source``: its instructions, chunking and representations, a new model.

    Args:
        source: the source collection's record.
        embedder: the target's embedder (model id, dimension, normalisation).
        collection: the source collection's name (recorded in ``derived_from``).
        note: more to record in ``derived_from`` (e.g. how the model was trained).

    Returns:
        A fresh record (``created_at`` now).
    """
    data = source.model_dump(mode="json", exclude={"created_at"})
    data.update(
        model=embedder.model_id,
        dimension=embedder.dimension,
        normalize=embedder.normalize,
    )
    data[DERIVED_FROM] = {"collection": collection, "model": source.model, **dict(note or {})}
    return CollectionRecord.model_validate(data)


@dataclass
class _Item:
    """A stored chunk of the source waiting to be embedded, and its document."""

    document: _Document
    point_id: str
    payload: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.payload.get(CONTENT_KEY) or "")


@dataclass(eq=False)
class _Document:
    """A source document being copied."""

    manifest: DocumentManifest
    previous: DocumentManifest | None
    written: int = 0


class _StoredQuestions(QuestionGenerator):
    """Replays the questions the source stored for each chunk: they are never generated again.

    Built without loading a model; :meth:`generate` answers the texts of the batch it was
    :meth:`load` -ed with, in order.
    """

    def __init__(self) -> None:  # no model: nothing of QuestionGenerator.__init__ is needed
        self._batch: list[list[str]] = []

    def load(self, payloads: Sequence[Mapping[str, Any]], key: str) -> None:
        """The next batch's stored questions (``metadata[key]`` of each payload)."""
        self._batch = [_strings(metadata_of(dict(payload)).get(key)) for payload in payloads]

    def generate(self, texts: Sequence[str]) -> list[list[str]]:
        """The loaded batch's questions (one list per text)."""
        if len(texts) != len(self._batch):
            raise IngestError(
                f"internal error: {len(texts)} chunks but {len(self._batch)} stored question lists"
            )
        return self._batch


def _strings(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


class _Run:
    """State of one :func:`reembed_collection` call."""

    def __init__(
        self,
        source: VectorStore,
        target: VectorStore,
        *,
        record: CollectionRecord,
        embedder: Embedder,
        batch_size: int,
        report: ReembedReport,
        cancel: threading.Event | None,
    ) -> None:
        self.source = source
        self.target = target
        self.record = record
        self.embedder = embedder
        self.batch_size = batch_size
        self.report = report
        self.cancel = cancel
        self.questions = _StoredQuestions() if record.representations.questions is not None else None
        self.builder: RepresentationBuilder | None = None
        self.passed = 0  # chunks of incomplete source documents, passed over

    def check_cancel(self) -> None:
        """Raise :class:`IngestCancelledError` when the cancel event is set."""
        if self.cancel is not None and self.cancel.is_set():
            raise IngestCancelledError("re-embedding cancelled")

    def items(self, documents: Sequence[_Document]) -> Iterator[_Item]:
        """The stored chunks of the documents, in order, read a document at a time."""
        for document in documents:
            payloads = _stored_payloads(self.source, document.manifest)
            if payloads is None:
                logger.warning(
                    "%s: not every chunk of it is stored in %s; it is not copied",
                    document.manifest.source,
                    self.source.collection,
                )
                self.report.incomplete.append(document.manifest.source)
                self.passed += document.manifest.chunks
                continue
            for point_id, payload in payloads:
                yield _Item(document, point_id, payload)

    def representations(self, texts: Sequence[str]) -> RepresentationBuilder:
        """The builder of the record's extra representations (on the first batch; see ingest)."""
        if self.builder is None:
            reps = with_sparse_avg_length(self.record.representations, texts)
            if reps is not self.record.representations:
                self.record = self.record.model_copy(update={"representations": reps})
                self.target.write_record(self.record)
            self.builder = RepresentationBuilder(
                reps,
                self.embedder,
                self.record.instruction_set.document,
                batch_size=self.batch_size,
                generator=self.questions,
            )
        return self.builder

    def write_batch(self, batch: list[_Item]) -> None:
        """Embed a batch, upsert its points pending, and commit the documents it completes."""
        texts = [item.text for item in batch]
        vectors = self.embedder.embed(texts, self.record.instruction_set.document, batch_size=self.batch_size)
        builder = self.representations(texts)
        if self.questions is not None and self.record.representations.questions is not None:
            self.questions.load([item.payload for item in batch], Questions.name)
        self.target.upsert_chunks(_points(batch, vectors, builder))
        self.report.chunks_embedded += len(batch)
        for item in batch:
            item.document.written += 1
        for document in dict.fromkeys(item.document for item in batch if _done(item.document)):
            self.commit(document)

    def commit(self, document: _Document) -> None:
        """Commit a completely written document (its manifest is the source's), then drop its old chunks."""
        manifest = document.manifest
        self.target.commit_document(manifest)
        if document.previous is not None:
            self.target.delete_stale(
                manifest.source, manifest.file_sha256, keep_chunks=manifest.chunks, previous=document.previous
            )
        self.report.copied += 1


def _done(document: _Document) -> bool:
    return document.written == document.manifest.chunks


def _stored_payloads(
    store: VectorStore, manifest: DocumentManifest
) -> list[tuple[str, dict[str, Any]]] | None:
    """``(point id, payload)`` of every chunk a manifest vouches for, in chunk order (``None``: some missing).

    Read by id from the source's points (read-only); a chunk that is missing, still pending or of
    another source makes the document incomplete.
    """
    ids = [chunk_point_id(manifest.file_sha256, index) for index in range(manifest.chunks)]
    found: dict[str, dict[str, Any]] = {}
    for part in id_batches(ids):
        for record in store.client.retrieve(
            store.collection, ids=part, with_payload=True, with_vectors=False
        ):
            found[str(record.id)] = dict(record.payload or {})
    payloads: list[tuple[str, dict[str, Any]]] = []
    for point_id in ids:
        payload = found.get(point_id)
        if payload is None or payload.get(PENDING_KEY) or metadata_of(payload).get(SOURCE) != manifest.source:
            return None
        payloads.append((point_id, payload))
    return payloads


def _points(
    batch: Sequence[_Item], vectors: NDArray[np.float32], builder: RepresentationBuilder
) -> list[models.PointStruct]:
    """The target's points of a batch: the source's ids and payloads, the new vectors."""
    from qdrant_client import models  # lazy: qdrant_client takes about a second to import

    if builder.extra_keys():
        extra, _ = builder.build([item.text for item in batch], vectors)  # payload fields: the stored ones
        point_vectors: list[Any] = [
            {DENSE_VECTOR: vector.tolist(), **named} for vector, named in zip(vectors, extra, strict=True)
        ]
    else:
        point_vectors = [vector.tolist() for vector in vectors]
    return [
        models.PointStruct(id=item.point_id, vector=vector, payload=item.payload)
        for item, vector in zip(batch, point_vectors, strict=True)
    ]


def _check_target(source: VectorStore, target: VectorStore, wanted: CollectionRecord) -> CollectionRecord:
    """Create the target, or check that the existing one is a re-embedding of ``source`` with this model.

    Raises:
        IngestError: the target is the source, or an existing target came from elsewhere.
        CollectionMismatchError: an existing target was built with another model or instructions.
    """
    if source.collection == target.collection:
        raise IngestError(
            f"the target collection {target.collection!r} is the source; choose a new name for the target"
        )
    found = target.read_record()
    if found is not None:
        origin = derived_from(found)
        if origin is None or origin.get("collection") != source.collection:
            raise IngestError(
                f"collection {target.collection!r} exists and is not a re-embedding of "
                f"{source.collection!r}; choose another target name, or drop it first "
                f"(instructor-search collections drop {target.collection})"
            )
    return target.ensure(wanted)


def _plan(
    source: VectorStore, target: VectorStore, report: ReembedReport
) -> tuple[list[_Document], int, int]:
    """The documents to copy, the source's chunks and those already in the target; removes dropped ones.

    A document whose manifest in the target matches the source's and whose chunks are all
    committed there is skipped; a target document the source no longer has is deleted.
    """
    documents = source.documents()
    in_target = {manifest.source: manifest for manifest in target.documents()}
    wanted = {manifest.source for manifest in documents}
    for gone in sorted(set(in_target) - wanted):
        target.delete_document(gone, mark=False)
        report.removed += 1
    todo: list[_Document] = []
    done_chunks = 0
    for manifest in documents:
        previous = in_target.get(manifest.source)
        if (
            previous is not None
            and previous.file_sha256 == manifest.file_sha256
            and previous.chunks == manifest.chunks
            and target.has_chunks(previous)
        ):
            report.skipped += 1
            done_chunks += manifest.chunks
            continue
        todo.append(_Document(manifest, previous))
    report.documents = len(documents)
    return todo, sum(manifest.chunks for manifest in documents), done_chunks


def reembed_collection(
    source: VectorStore,
    target: VectorStore,
    *,
    settings: Settings,
    embedder: Embedder,
    note: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ReembedReport:
    """Copy every committed document of ``source`` into ``target``, embedded with ``embedder``.

    The target is created with :func:`target_record` (or, when it exists, must be a re-embedding
    of ``source`` with the same model). Interrupted writes to the target are repaired first, and
    documents already committed there are skipped, so a run that was killed or cancelled
    continues where it stopped. ``source`` is never written.

    Args:
        source: the collection to re-embed (read only).
        target: the new collection.
        settings: ``model.batch_size`` is the number of chunks per embedded batch.
        embedder: the target's model.
        note: more to record in the target record's ``derived_from`` (a new target only).
        progress: called with ``(chunks_done, chunks_total)`` after each batch.
        cancel: set it (from any thread) to stop after the current batch: the documents already
            committed are kept, the rest is rolled back, and the report says ``cancelled``.

    Returns:
        The report.

    Raises:
        CollectionNotFoundError: the source does not exist.
        CollectionMismatchError: the target exists with another model or other instructions.
        IngestError: the target is the source, or exists without being a re-embedding of it.
    """
    started = time.perf_counter()
    wanted = target_record(source.require_record(), embedder, collection=source.collection, note=note)
    record = _check_target(source, target, wanted)
    report = ReembedReport(source=source.collection, target=target.collection, model=record.model)
    report.repaired = target.repair()
    target.begin_write()  # left in place if the run dies, so that the next run repairs
    run = _Run(
        source,
        target,
        record=record,
        embedder=embedder,
        batch_size=settings.model.batch_size,
        report=report,
        cancel=cancel,
    )
    try:
        todo, total, done = _plan(source, target, report)
        if progress is not None:
            progress(done, total)
        _copy(run, todo, done, total, progress)
        target.end_write()
    except IngestCancelledError:
        target.repair()  # the write mark is set: removes what no manifest vouches for, clears it
        report.cancelled = True
        logger.info("re-embedding cancelled after %d documents", report.copied)
    except BaseException:
        _roll_back(target)
        raise
    report.points = target.count()
    report.seconds = time.perf_counter() - started
    return report


def _copy(run: _Run, todo: Sequence[_Document], done: int, total: int, progress: Progress | None) -> None:
    """Embed and write the documents' chunks in batches that may span documents."""
    batch: list[_Item] = []
    items = run.items(todo)
    while True:
        item = next(items, None)
        if item is not None:
            batch.append(item)
        if batch and (item is None or len(batch) == run.batch_size):
            run.check_cancel()
            run.write_batch(batch)
            done += len(batch)
            batch = []
            if progress is not None:
                progress(done + run.passed, total)
        if item is None:
            break
    if progress is not None:
        progress(done + run.passed, total)


def _roll_back(store: VectorStore) -> None:
    """Remove the chunks a failed run had not committed, and clear its write mark."""
    try:
        store.repair()
    except Exception:  # the original error matters more; the next run repairs (the mark stays)
        logger.warning(
            "could not roll back the interrupted re-embedding; the next run repairs it", exc_info=True
        )
