"""The ingest service: files in, chunk points and document manifests out.

The work is streamed so that memory does not grow with the corpus: a file is read, extracted
and chunked, and its chunks join a queue that is embedded in batches of
``settings.model.batch_size`` (a batch may span files). Each embedded batch is upserted at once;
when every chunk of a file is stored, the file's manifest is committed and the chunks of its
previous content are deleted. Reading/extraction (a reader thread) and Qdrant writes (a writer
thread) overlap with embedding; the queues between the stages are bounded. Only a committed manifest makes a file count as stored, and
:meth:`~store.core.VectorStore.repair` (run at the start of every ingest) removes chunks no
manifest vouches for, so a file is stored completely or not at all even if the process dies.

Statuses:

* ``unchanged``: the manifest has the file's sha256, the same chunking, and all its chunks are
  present; nothing is written.
* ``replaced``: the source was stored with other content (or other chunking); it is replaced.
* ``ingested``: new source (or a stored source whose chunks had gone missing).
* ``failed``: the file could not be read, has no text, or passes a limit of the ``ingest``
  settings (``max_chars_per_file``, ``max_chunks_per_file``); the reason is in ``error``.
* ``cancelled``: the run's ``cancel`` event was set before the file was stored; nothing of it
  is kept (a version stored before the run still is).

A run that is cancelled, or that an exception leaves (a model error, or a ``BaseException``
such as Streamlit's ``StopException`` raised from ``on_progress``), removes the chunks of the
files it had not committed and clears the write mark before it returns or re-raises.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ingest.chunking import Chunk, Chunker, make_chunker
from ingest.errors import DocumentError, IngestCancelledError, IngestError
from ingest.extract import ExtractedText, extract_text
from ingest.sources import FILE_STATUSES, FileResult, FileStatus, SourceFile, discover, upload_source
from representations.core import QuestionGenerator, RepresentationBuilder, with_sparse_avg_length
from store.core import DENSE_VECTOR, DocumentManifest, chunk_point_id, expected_record

if TYPE_CHECKING:
    from config import Settings
    from embedder import Embedder
    from store.core import CollectionRecord, VectorStore

__all__ = [
    "FileResult",
    "FileStatus",
    "IngestReport",
    "ProgressEvent",
    "ProgressStage",
    "SourceFile",
    "discover",
    "file_sha256",
    "ingest_files",
    "upload_source",
]

logger = logging.getLogger(__name__)

ProgressStage = Literal["reading", "embedding", "stored", "skipped", "failed"]


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of an ingest run, for a progress bar.

    Attributes:
        file_index: 0-based index of the file the event is about.
        file_count: files in the run.
        file_name: the file's display name.
        stage: ``reading`` (the file is being read and chunked), ``embedding`` (some of its
            chunks were embedded and stored), ``stored`` (complete), ``skipped`` (unchanged) or
            ``failed``.
        chunks_done: the file's chunks embedded so far.
        chunks_total: the file's chunks (0 until it is chunked).
    """

    file_index: int
    file_count: int
    file_name: str
    stage: ProgressStage
    chunks_done: int = 0
    chunks_total: int = 0


@dataclass
class IngestReport:
    """The outcome of an ingest run.

    Attributes:
        files: one result per file, in input order.
        points: chunk points in the collection after the run.
        collection: the collection name.
        chunks_embedded: chunks embedded in this run.
        seconds: wall time of the run.
        truncated: chunks the model had to truncate (0 unless chunking could not fit them).
        repaired: leftover chunks of an interrupted earlier run that were removed.
        cache_hits: chunks whose vectors came from the embedding cache (not encoded again).
        representations: seconds spent on, and items made for, each extra representation
            (sparse non-zeros, sentences, key phrases, questions).
        skipped: representations the settings ask for that were not built, with the reason.
        rolled_back: chunk points of cancelled files that were removed again.
    """

    files: list[FileResult]
    points: int
    collection: str
    chunks_embedded: int = 0
    seconds: float = 0.0
    truncated: int = 0
    repaired: int = 0
    cache_hits: int = 0
    representations: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    rolled_back: int = 0

    @property
    def failed(self) -> bool:
        """Whether any file failed."""
        return any(result.status == "failed" for result in self.files)

    @property
    def cancelled(self) -> bool:
        """Whether the run was cancelled before every file was stored."""
        return any(result.status == "cancelled" for result in self.files)

    def counts(self) -> dict[str, int]:
        """Files per status (every status of :data:`~ingest.sources.FILE_STATUSES`, zeros included)."""
        out: dict[str, int] = dict.fromkeys(FILE_STATUSES, 0)
        for result in self.files:
            out[result.status] += 1
        return out

    def to_json(self) -> dict[str, object]:
        """``{"files": [{"path", "status", "chunks", "error", ...}], "points": N, ...}``."""
        return {
            "files": [result.to_json() for result in self.files],
            "points": self.points,
            "collection": self.collection,
            "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3),
            "truncated": self.truncated,
            "repaired": self.repaired,
            "cache_hits": self.cache_hits,
            "representations": self.representations,
            "skipped": list(self.skipped),
            "counts": self.counts(),
            "cancelled": self.cancelled,
            "rolled_back": self.rolled_back,
        }


def file_sha256(data: bytes) -> str:
    """Hex sha256 of a file's bytes (the content id of its chunks)."""
    return hashlib.sha256(data).hexdigest()


#: Files read and extracted ahead of the embedder (bounded, so memory stays flat).
PREFETCH_FILES = 2
#: Most padding a length-sorted batch may have (share of its token positions) before it is cut.
MAX_PADDING = 0.08
#: Batches this small are never cut for padding (tiny batches waste more than padding does).
MIN_BATCH = 4
#: Embedded batches that may wait for the store writer.
WRITES_IN_FLIGHT = 2

T = TypeVar("T")


@dataclass
class _Prepared:
    """A file read (and, unless it is unchanged or a duplicate, extracted) by the reader thread."""

    index: int
    sha256: str = ""
    error: str | None = None
    previous: DocumentManifest | None = None
    unchanged: bool = False  # same content and chunking as its manifest (chunks checked later)
    duplicate_of: str | None = None
    extracted: ExtractedText | None = None
    cancelled: bool = False  # the run was cancelled before or while this file was read


@dataclass
class _OpenFile:
    """A file whose chunks are being embedded and stored."""

    index: int
    source: SourceFile
    sha256: str
    status: FileStatus
    chunk_count: int
    pages: int | None
    ingested_at: str
    previous: DocumentManifest | None = None
    done: int = 0


@dataclass
class _Queued:
    file: _OpenFile
    chunk: Chunk


class _Reader:
    """Reads, hashes and extracts files ahead of the embedder, in a background thread.

    It never touches the Qdrant client: it decides from a snapshot of the manifests taken at
    the start of the run. Items come out in file order; an unexpected exception is re-raised in
    the consuming thread.
    """

    def __init__(self, count: int, prepare: Callable[[int], _Prepared], depth: int = PREFETCH_FILES) -> None:
        self._count = count
        self._prepare = prepare
        self._queue: queue.Queue[_Prepared | BaseException | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="ingest-reader", daemon=True)
        self._thread.start()

    def _put(self, item: _Prepared | BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _work(self) -> None:
        try:
            for index in range(self._count):
                if self._stop.is_set():
                    return
                self._put(self._prepare(index))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._put(exc)
        finally:
            self._put(None)

    def __iter__(self) -> Iterator[_Prepared]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class _Writer:
    """The one thread that talks to Qdrant while a run embeds (upserts overlap with encoding).

    Jobs run in submission order, so a file's manifest is always committed after its chunks.
    """

    def __init__(self, in_flight: int = WRITES_IN_FLIGHT) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self._pending: deque[Future[list[_OpenFile]]] = deque()
        self._in_flight = in_flight

    def submit(self, job: Callable[[], list[_OpenFile]]) -> list[_OpenFile]:
        """Queue a write job; returns the files completed by jobs that have finished meanwhile."""
        self._pending.append(self._pool.submit(job))
        return self._harvest(wait_for=self._in_flight)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store call on the writer thread (after the queued writes) and wait for it."""
        return self._pool.submit(fn, *args).result()

    def finish(self) -> list[_OpenFile]:
        """Wait for every queued write; returns the files they completed."""
        return self._harvest(wait_for=0)

    def _harvest(self, *, wait_for: int) -> list[_OpenFile]:
        completed: list[_OpenFile] = []
        while self._pending and (len(self._pending) > wait_for or self._pending[0].done()):
            completed += self._pending.popleft().result()  # re-raises a failed write here
        return completed

    def abandon(self) -> None:
        """Wait for the write running now, drop the queued ones and forget every outcome."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Run:
    """State of one :func:`ingest_files` call."""

    files: Sequence[SourceFile]
    settings: Settings
    embedder: Embedder
    store: VectorStore
    record: CollectionRecord
    chunker: Chunker
    password: str | None
    on_progress: Callable[[ProgressEvent], None] | None
    manifests: dict[str, DocumentManifest]  # by source, at the start of the run
    writer: _Writer
    results: list[FileResult | None] = field(default_factory=list)
    queue: deque[_Queued] = field(default_factory=deque)
    stored_sha: dict[str, str] = field(default_factory=dict)  # sha256 -> committed source (snapshot)
    in_run: dict[str, str] = field(default_factory=dict)  # sha256 -> source, this run (reader thread)
    chunks_embedded: int = 0
    builder: RepresentationBuilder | None = None
    question_generator: QuestionGenerator | None = None
    cancel: threading.Event | None = None

    def check_cancel(self) -> None:
        """Raise :class:`IngestCancelledError` when the run's cancel event is set."""
        if self.cancel is not None and self.cancel.is_set():
            raise IngestCancelledError("ingest cancelled")

    # -- progress ---------------------------------------------------------------------------------

    def emit(self, index: int, stage: ProgressStage, *, done: int = 0, total: int = 0) -> None:
        if self.on_progress is not None:
            self.on_progress(
                ProgressEvent(
                    file_index=index,
                    file_count=len(self.files),
                    file_name=self.files[index].file_name,
                    stage=stage,
                    chunks_done=done,
                    chunks_total=total,
                )
            )

    def result(self, index: int, status: FileStatus, **fields: Any) -> FileResult:
        source = self.files[index]
        result = FileResult(
            path=source.display_path,
            status=status,
            file_name=source.file_name,
            source=source.source,
            **fields,
        )
        self.results[index] = result
        return result

    def fail(self, index: int, error: str, *, pages: int | None = None) -> None:
        logger.info("failed: %s: %s", self.files[index].display_path, error)
        self.result(index, "failed", error=error, pages=pages)
        self.emit(index, "failed")

    def mark_cancelled(self) -> None:
        """Every file without a result yet is ``cancelled`` (its chunks were rolled back)."""
        pending = [index for index, result in enumerate(self.results) if result is None]
        for index in pending:
            kept = self.manifests.get(self.files[index].source) is not None
            note = "the ingest was cancelled before this file was stored; " + (
                "its previously stored version is kept" if kept else "nothing of it was kept"
            )
            self.result(index, "cancelled", note=note)
        if pending:
            logger.info("ingest cancelled: %d file(s) not stored", len(pending))

    # -- reader thread: no Qdrant access --------------------------------------------------------------

    def prepare(self, index: int, *, force: bool = False) -> _Prepared:
        """Read, hash, classify and (when needed) extract one file."""
        source = self.files[index]
        if self.cancel is not None and self.cancel.is_set():
            return _Prepared(index, cancelled=True)
        try:
            data = source.read_bytes()
        except DocumentError as exc:
            return _Prepared(index, error=str(exc))
        sha = file_sha256(data)
        previous = self.manifests.get(source.source)
        if (
            not force
            and previous is not None
            and previous.file_sha256 == sha
            and not self._chunking_changed(previous)
        ):
            self.in_run.setdefault(sha, source.source)
            return _Prepared(index, sha256=sha, previous=previous, unchanged=True)
        duplicate_of = self.in_run.get(sha) or self.stored_sha.get(sha)
        if duplicate_of is not None and duplicate_of != source.source:
            return _Prepared(index, sha256=sha, previous=previous, duplicate_of=duplicate_of)
        try:
            extracted = extract_text(
                data,
                file_name=source.file_name,
                password=self.password,
                max_chars=self.settings.ingest.max_chars_per_file,
                cancel=self.cancel,
            )
        except IngestCancelledError:
            return _Prepared(index, sha256=sha, cancelled=True)
        except DocumentError as exc:
            return _Prepared(index, sha256=sha, error=str(exc))
        self.in_run[sha] = source.source
        return _Prepared(index, sha256=sha, previous=previous, extracted=extracted)

    def _chunking_changed(self, manifest: DocumentManifest) -> bool:
        chunker = self.chunker
        pairs: list[tuple[object, object]] = [
            (manifest.chunk_size, chunker.size),
            (manifest.chunk_overlap, chunker.overlap),
            (manifest.chunk_strategy, chunker.strategy),
        ]
        return any(recorded is not None and recorded != wanted for recorded, wanted in pairs)

    # -- main thread ------------------------------------------------------------------------------------

    def add_file(self, prepared: _Prepared) -> None:
        """Turn a prepared file into a result or into queued chunks."""
        index = prepared.index
        source = self.files[index]
        if prepared.cancelled:
            raise IngestCancelledError(f"ingest cancelled before {source.display_path} was read")
        self.emit(index, "reading")
        if prepared.error is not None:
            self.fail(index, prepared.error)
            return
        previous = prepared.previous
        if prepared.unchanged and previous is not None:
            if self.writer.call(self.store.has_chunks, previous):
                self.result(index, "unchanged", chunks=previous.chunks, pages=previous.pages)
                self.emit(index, "skipped", done=previous.chunks, total=previous.chunks)
                return
            logger.warning(
                "%s: some of its %d chunks are missing from the collection; storing it again",
                source.display_path,
                previous.chunks,
            )
            prepared = self.prepare(index, force=True)
            if prepared.cancelled:
                raise IngestCancelledError(f"ingest cancelled while reading {source.display_path}")
            if prepared.error is not None:
                self.fail(index, prepared.error)
                return
        if prepared.duplicate_of is not None:
            self._skip_duplicate(index, previous, prepared.duplicate_of)
            return
        extracted = prepared.extracted
        if extracted is None:  # pragma: no cover - prepare() always extracts otherwise
            raise IngestError(f"internal error: {source.display_path} was not extracted")
        try:
            chunks = self.chunker.split(
                extracted.pages,
                max_chunks=self.settings.ingest.max_chunks_per_file,
                file_name=source.file_name,
                cancel=self.cancel,
            )
        except DocumentError as exc:  # over ingest.max_chunks_per_file
            self.fail(index, str(exc), pages=extracted.page_count)
            return
        if not chunks:
            self.fail(index, f"{source.file_name!r} contains no text to index", pages=extracted.page_count)
            return
        status: FileStatus = "ingested"
        if previous is not None and (
            previous.file_sha256 != prepared.sha256 or self._chunking_changed(previous)
        ):
            status = "replaced"
        open_file = _OpenFile(
            index=index,
            source=source,
            sha256=prepared.sha256,
            status=status,
            chunk_count=len(chunks),
            pages=extracted.page_count,
            ingested_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            previous=previous,
        )
        self.queue.extend(_Queued(open_file, chunk) for chunk in chunks)
        self.emit(index, "embedding", done=0, total=len(chunks))

    def _skip_duplicate(self, index: int, previous: DocumentManifest | None, duplicate_of: str) -> None:
        """Identical content is stored once (point ids depend on the content hash only)."""
        source = self.files[index]
        status: FileStatus = "unchanged"
        if previous is not None:  # this source held other content before: drop it
            self.writer.call(lambda: self.store.delete_document(source.source, mark=False))
            status = "replaced"
        note = f"identical content is already stored as {duplicate_of!r}; it is not stored twice"
        logger.info("%s: %s", source.display_path, note)
        self.result(index, status, note=note)
        self.emit(index, "skipped")

    def drain(self, *, final: bool = False) -> None:
        """Embed the queued chunks in length-sorted batches and queue their writes.

        A window of ``model.sort_window`` batches is taken from the queue once it is full (or
        whatever is left when ``final``), sorted by token count and cut into batches of at most
        ``model.batch_size`` that pad at most :data:`MAX_PADDING` of their positions (a batch of
        :data:`MIN_BATCH` or fewer is never cut); the window bounds the chunks held.
        ``sort_window=1`` keeps arrival order and fixed-size batches.
        """
        batch_size = self.settings.model.batch_size
        window = batch_size * self.settings.model.sort_window
        while len(self.queue) >= window or (final and self.queue):
            taken = [self.queue.popleft() for _ in range(min(window, len(self.queue)))]
            if self.settings.model.sort_window == 1:
                batches = [taken[start : start + batch_size] for start in range(0, len(taken), batch_size)]
            else:
                batches = self._padding_bounded(taken, batch_size)
            for batch in batches:
                self.check_cancel()
                self.embed_batch(batch)
        if final:
            for open_file in self.writer.finish():
                self.stored(open_file)

    def _padding_bounded(self, items: list[_Queued], batch_size: int) -> list[list[_Queued]]:
        """Sort by tokens and cut where the next, longer chunk would pad the batch beyond MAX_PADDING."""
        lengths = {id(item): self.embedder.count_tokens(item.chunk.text) for item in items}
        items.sort(key=lambda item: lengths[id(item)])
        batches: list[list[_Queued]] = []
        current: list[_Queued] = []
        total = 0
        for item in items:
            length = lengths[id(item)] + 2  # special tokens; the instruction only adds a constant
            full = len(current) == batch_size
            padding = 1 - (total + length) / (length * (len(current) + 1))
            if current and (full or (len(current) >= MIN_BATCH and padding > MAX_PADDING)):
                batches.append(current)
                current, total = [], 0
            current.append(item)
            total += length
        if current:
            batches.append(current)
        return batches

    def embed_batch(self, batch: list[_Queued]) -> None:
        """Embed one batch and hand its points (and the files it completes) to the writer."""
        from qdrant_client import models

        texts = [item.chunk.text for item in batch]
        vectors = self.embedder.embed(
            texts, self.record.instruction_set.document, batch_size=self.settings.model.batch_size
        )
        builder = self.representations(texts)
        if builder.extra_keys():
            extra, extra_payload = builder.build(texts, vectors)
            point_vectors: list[Any] = [
                {DENSE_VECTOR: vector.tolist(), **named} for vector, named in zip(vectors, extra, strict=True)
            ]
        else:
            extra_payload = [{} for _ in batch]
            point_vectors = [vector.tolist() for vector in vectors]
        points = [
            models.PointStruct(
                id=chunk_point_id(item.file.sha256, item.chunk.index),
                vector=vector,
                payload=self._payload(item, more),
            )
            for item, vector, more in zip(batch, point_vectors, extra_payload, strict=True)
        ]
        self.chunks_embedded += len(batch)
        touched: dict[int, _OpenFile] = {}
        for item in batch:
            item.file.done += 1
            touched[item.file.index] = item.file
        completing = [f for f in touched.values() if f.done == f.chunk_count]
        manifests = [self._manifest(f) for f in completing]
        store = self.store

        def write() -> list[_OpenFile]:
            store.upsert_chunks(points)
            for open_file, manifest in zip(completing, manifests, strict=True):
                store.commit_document(manifest)
                # After the commit: if the process dies here, repair() removes the old chunks.
                # A new source has none (the collection is consistent after repair()).
                if open_file.previous is not None:
                    store.delete_stale(
                        open_file.source.source,
                        open_file.sha256,
                        keep_chunks=open_file.chunk_count,
                        previous=open_file.previous,
                    )
            return completing

        for open_file in touched.values():
            self.emit(open_file.index, "embedding", done=open_file.done, total=open_file.chunk_count)
        for open_file in self.writer.submit(write):
            self.stored(open_file)

    def representations(self, texts: Sequence[str]) -> RepresentationBuilder:
        """The builder of the collection's extra representations (created on first use).

        A new collection whose sparse vectors have no recorded average length gets one
        estimated from the first batch (``texts``), recorded before any sparse vector is stored.
        """
        if self.builder is None:
            reps = with_sparse_avg_length(self.record.representations, texts)
            if reps is not self.record.representations and reps.sparse is not None:
                self.record = self.record.model_copy(update={"representations": reps})
                self.writer.call(self.store.write_record, self.record)
                logger.info("BM25 average chunk length estimated at %.1f terms", reps.sparse.avg_length)
            self.builder = RepresentationBuilder(
                reps,
                self.embedder,
                self.record.instruction_set.document,
                batch_size=self.settings.model.batch_size,
                generator=self.question_generator,
            )
        return self.builder

    def _payload(self, item: _Queued, more: dict[str, Any] | None = None) -> dict[str, object]:
        chunk, open_file = item.chunk, item.file
        return {
            "page_content": chunk.text,
            "metadata": {
                "source": open_file.source.source,
                "file_name": open_file.source.file_name,
                "file_sha256": open_file.sha256,
                "page": chunk.page,
                "chunk_index": chunk.index,
                "chunk_count": open_file.chunk_count,
                "char_start": chunk.char_start,
                "char_end": chunk.char_end,
                "domain": self.record.domain,
                "ingested_at": open_file.ingested_at,
                **(more or {}),
            },
        }

    def _manifest(self, open_file: _OpenFile) -> DocumentManifest:
        source = open_file.source
        return DocumentManifest(
            source=source.source,
            file_name=source.file_name,
            file_sha256=open_file.sha256,
            chunks=open_file.chunk_count,
            pages=open_file.pages,
            domain=self.record.domain,
            ingested_at=open_file.ingested_at,
            chunk_size=self.chunker.size,
            chunk_overlap=self.chunker.overlap,
            chunk_strategy=self.chunker.strategy,
        )

    def stored(self, open_file: _OpenFile) -> None:
        """A file's chunks and manifest are written."""
        self.result(open_file.index, open_file.status, chunks=open_file.chunk_count, pages=open_file.pages)
        logger.info(
            "%s: %s, %d chunks", open_file.status, open_file.source.display_path, open_file.chunk_count
        )
        self.emit(open_file.index, "stored", done=open_file.chunk_count, total=open_file.chunk_count)


def ingest_files(
    files: Sequence[SourceFile],
    *,
    settings: Settings,
    embedder: Embedder,
    store: VectorStore,
    domain: str | None = None,
    password: str | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    cancel: threading.Event | None = None,
) -> IngestReport:
    """Ingest files into the store's collection, streaming, one file all-or-none.

    The collection is created on first use with the record of these settings and this
    embedder; an existing collection built with another model or other instructions is refused.
    Leftovers of an interrupted earlier run are removed first. A file that cannot be read or
    has no text is reported as ``failed`` and the run goes on.

    Three stages overlap: a reader thread reads and extracts the next files, the calling thread
    chunks and embeds, and a writer thread (the only one using the Qdrant client during the
    run) upserts points and commits manifests. Queues between them are bounded, and
    ``on_progress`` is always called from the calling thread.

    Args:
        files: the files (see :func:`ingest.sources.discover` and
            :func:`ingest.sources.upload_source`).
        settings: the settings (model batch size, chunking, instructions).
        embedder: the embedder.
        store: the collection.
        domain: overrides ``settings.instructions.domain`` for a new collection.
        password: password for encrypted PDFs.
        on_progress: called with a :class:`ProgressEvent` as files advance.
        cancel: set it (from any thread) to stop the run as soon as it can: it is checked
            before each file, between embedded batches and inside extraction and chunking.
            Files stored before it was set are kept; every other file is reported
            ``cancelled`` and its chunks already written are removed (a version stored before
            the run stays intact). The report is returned as usual.

    Returns:
        The report, one result per file in input order.

    Raises:
        CollectionMismatchError: the collection was built with another model or instructions.
        StoreConnectionError: the Qdrant server failed.
        EmbedderError: the model failed.
    """
    started = time.perf_counter()
    if not files:
        return IngestReport(files=[], points=store.count(), collection=store.collection)
    wanted = expected_record(settings, embedder, domain=domain)
    record = store.ensure(wanted)
    skipped = _skipped_representations(settings, wanted, record)
    questions = record.representations.questions
    # Loaded before anything is written: a missing model fails here.
    generator = QuestionGenerator.from_record(questions) if questions is not None else None
    repaired = store.repair()
    manifests = {manifest.source: manifest for manifest in store.documents()}
    store.begin_write()  # left in place if the run dies, so that the next run repairs
    truncated_before = embedder.stats.truncated
    cache_hits_before = embedder.stats.cache_hits
    run = _Run(
        files=files,
        settings=settings,
        embedder=embedder,
        store=store,
        record=record,
        chunker=make_chunker(settings.chunk, embedder, record.instruction_set.document),
        password=password,
        on_progress=on_progress,
        manifests=manifests,
        stored_sha={manifest.file_sha256: manifest.source for manifest in manifests.values()},
        writer=_Writer(),
        results=[None] * len(files),
        question_generator=generator,
        cancel=cancel,
    )
    rolled_back = _execute(run)
    results = [result for result in run.results if result is not None]
    if len(results) != len(files):  # every path above sets a result; guard against a silent gap
        raise IngestError(f"internal error: {len(files) - len(results)} file(s) got no result")
    return IngestReport(
        files=results,
        points=store.count(),
        collection=store.collection,
        chunks_embedded=run.chunks_embedded,
        seconds=time.perf_counter() - started,
        truncated=embedder.stats.truncated - truncated_before,
        repaired=repaired,
        cache_hits=embedder.stats.cache_hits - cache_hits_before,
        representations=run.builder.stats.to_json() if run.builder is not None else {},
        skipped=skipped,
        rolled_back=rolled_back,
    )


def _execute(run: _Run) -> int:
    """Run the stages; on a cancel or an exception, remove the uncommitted chunks.

    Returns:
        The chunk points a cancel removed (0 for a run that completes).

    Raises:
        BaseException: whatever stopped the run (after the rollback, which clears the write mark).
    """
    reader = _Reader(len(run.files), run.prepare)
    rolled_back = 0
    try:
        try:
            for prepared in reader:
                run.check_cancel()
                run.add_file(prepared)
                run.drain()
            run.check_cancel()
            run.drain(final=True)
            run.store.end_write()
        except IngestCancelledError:
            reader.close()
            for open_file in run.writer.finish():  # writes under way complete: those files are stored
                run.stored(open_file)
            rolled_back = run.store.repair()  # the write mark is set: removes what no manifest vouches for
            run.mark_cancelled()
    except BaseException:
        reader.close()
        run.writer.abandon()
        _roll_back(run.store)
        raise
    finally:
        reader.close()
        run.writer.close()
    return rolled_back


def _roll_back(store: VectorStore) -> None:
    """Remove the chunks of files a failed run had not committed, and clear its write mark."""
    try:
        removed = store.repair()
    except Exception:  # the original error matters more; the next run repairs (the mark stays)
        logger.warning("could not roll back the interrupted ingest; the next run repairs it", exc_info=True)
        return
    if removed:
        logger.info("rolled back %d chunks of files the failed run had not stored", removed)


def _skipped_representations(
    settings: Settings, wanted: CollectionRecord, found: CollectionRecord
) -> list[str]:
    """Why representations the settings ask for are not built in this run (also logged)."""
    notes: list[str] = []
    if settings.index.questions.generator is None:
        notes.append(
            "questions: no generator model is configured (index.questions.generator), so no synthetic "
            "questions are generated; set INSTRUCTOR_SEARCH_INDEX__QUESTIONS__GENERATOR to a "
            "sequence-to-sequence model folder (e.g. FLAN-T5) to build them"
        )
    missing = [
        name for name in wanted.representations.available() if name not in found.representations.available()
    ]
    if missing:
        notes.append(
            f"{', '.join(missing)}: the collection was created without "
            f"{'it' if len(missing) == 1 else 'them'} (it has {', '.join(found.representations.available())}); "
            "ingest into a new collection to build them"
        )
    for note in notes:
        logger.info("skipping %s", note)
    return notes
