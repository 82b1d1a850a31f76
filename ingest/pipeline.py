"""The ingest service: files in, chunk points and document manifests out.

The work is streamed so that memory does not grow with the corpus: a file is read, extracted
and chunked, and its chunks join a queue that is embedded in batches of
``settings.model.batch_size`` (a batch may span files; :mod:`ingest.batching`). Each embedded
batch is upserted at once; when every chunk of a file is stored, the file's manifest is
committed and the chunks of its previous content are deleted. Reading/extraction (a reader
thread, :mod:`ingest.reading`) and Qdrant writes (a writer thread, :mod:`ingest.writing`)
overlap with embedding; the queues between the stages are bounded. Only a committed manifest
makes a file count as stored, and :meth:`~store.core.VectorStore.repair` (run at the start of
every ingest) removes chunks no manifest vouches for, so a file is stored completely or not at
all even if the process dies. The statuses of a file are listed in :mod:`ingest.report`.

A run that is cancelled, or that an exception leaves (a model error, or a ``BaseException``
such as Streamlit's ``StopException`` raised from ``on_progress``), removes the chunks of the
files it had not committed and clears the write mark before it returns or re-raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ingest.batching import BatchQueue
from ingest.chunking import make_chunker
from ingest.errors import DocumentError, IngestCancelledError, IngestError
from ingest.ocr.base import OcrOptions
from ingest.pagecache import PageCache
from ingest.reading import Prepared, Preparer, Reader
from ingest.report import FileResults, IngestReport, ProgressEvent
from ingest.sources import FileStatus, SourceFile
from ingest.writing import OpenFile, Queued, Writer, chunk_points, document_manifest, write_job
from representations.augmented import QuestionGenerator
from representations.builder import RepresentationBuilder
from representations.records import with_sparse_avg_length
from store.record import expected_record

if TYPE_CHECKING:
    from config import Settings
    from embedder import Embedder
    from store.core import VectorStore
    from store.manifest import DocumentManifest, ManifestSnapshot
    from store.record import CollectionRecord

__all__ = ["ingest_files"]

logger = logging.getLogger(__name__)


class _Run:
    """State of one :func:`ingest_files` call, driven from the calling thread.

    The reader thread prepares files (:class:`~ingest.reading.Preparer`, no Qdrant access), the
    calling thread chunks and embeds them, and the writer thread (the only one using the Qdrant
    client during the run) writes what each batch completes.
    """

    def __init__(
        self,
        files: Sequence[SourceFile],
        *,
        settings: Settings,
        embedder: Embedder,
        store: VectorStore,
        record: CollectionRecord,
        manifests: ManifestSnapshot,
        password: str | None,
        on_progress: Callable[[ProgressEvent], None] | None,
        question_generator: QuestionGenerator | None,
        cancel: threading.Event | None,
        page_cache: PageCache,
    ) -> None:
        self.files = files
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.record = record
        self.stats_before = (embedder.stats.truncated, embedder.stats.cache_hits)
        self.chunker = make_chunker(settings.chunk, embedder, record.instruction_set.document)
        self.results = FileResults(files, on_progress, manifests)
        self.preparer = Preparer(
            files,
            manifests,
            self.chunker,
            password=password,
            max_chars=settings.ingest.max_chars_per_file,
            cancel=cancel,
            ocr=OcrOptions.from_settings(settings.ingest),
            page_cache=page_cache,
        )
        self.writer = Writer()
        self.queue: BatchQueue[Queued] = BatchQueue(
            settings.model.batch_size,
            settings.model.sort_window,
            lambda item: embedder.count_tokens(item.chunk.text),
        )
        self.question_generator = question_generator
        self.cancel = cancel
        self.chunks_embedded = 0
        self.builder: RepresentationBuilder | None = None

    def check_cancel(self) -> None:
        """Raise :class:`IngestCancelledError` when the run's cancel event is set."""
        if self.cancel is not None and self.cancel.is_set():
            raise IngestCancelledError("ingest cancelled")

    # -- files, one at a time ------------------------------------------------------------------

    def add_file(self, prepared: Prepared) -> None:
        """Turn a prepared file into a result or into queued chunks."""
        index = prepared.index
        source = self.files[index]
        if prepared.cancelled:
            raise IngestCancelledError(f"ingest cancelled before {source.display_path} was read")
        self.results.emit(index, "reading")
        if prepared.error is not None:
            self.fail(index, prepared.error)
            return
        previous = prepared.previous
        if prepared.unchanged and previous is not None:
            if self.writer.call(self.store.has_chunks, previous):
                self.results.result(index, "unchanged", chunks=previous.chunks, pages=previous.pages)
                self.results.emit(index, "skipped", done=previous.chunks, total=previous.chunks)
                return
            logger.warning(
                "%s: some of its %d chunks are missing from the collection; storing it again",
                source.display_path,
                previous.chunks,
            )
            prepared = self.preparer.prepare(index, force=True)
            if prepared.cancelled:
                raise IngestCancelledError(f"ingest cancelled while reading {source.display_path}")
            if prepared.error is not None:
                self.fail(index, prepared.error)
                return
        if prepared.duplicate_of is not None:
            self._skip_duplicate(index, previous, prepared.duplicate_of)
            return
        self._chunk(prepared, previous)

    def _chunk(self, prepared: Prepared, previous: DocumentManifest | None) -> None:
        """Chunk an extracted file and queue its chunks (or record why it failed)."""
        index, extracted = prepared.index, prepared.extracted
        source = self.files[index]
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
            previous.file_sha256 != prepared.sha256 or self.preparer.chunking_changed(previous)
        ):
            status = "replaced"
        open_file = OpenFile(
            index=index,
            source=source,
            sha256=prepared.sha256,
            status=status,
            chunk_count=len(chunks),
            pages=extracted.page_count,
            ingested_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            previous=previous,
            ocr_pages=extracted.ocr_pages,
            empty_pages=extracted.empty_pages,
            skipped_pages=dict(extracted.skipped_pages),
            warning=extracted.warning,
        )
        self.queue.extend(Queued(open_file, chunk) for chunk in chunks)
        self.results.emit(index, "embedding", done=0, total=len(chunks))

    def _skip_duplicate(self, index: int, previous: DocumentManifest | None, duplicate_of: str) -> None:
        """Identical content is stored once (point ids depend on the content hash only)."""
        source = self.files[index]
        status: FileStatus = "unchanged"
        if previous is not None:  # this source held other content before: drop it
            self.writer.call(lambda: self.store.delete_document(source.source, mark=False))
            status = "replaced"
        note = f"identical content is already stored as {duplicate_of!r}; it is not stored twice"
        logger.info("%s: %s", source.display_path, note)
        self.results.result(index, status, note=note)
        self.results.emit(index, "skipped")

    # -- batches ------------------------------------------------------------------------------

    def drain(self, *, final: bool = False) -> None:
        """Embed the queued chunks in batches (see :mod:`ingest.batching`) and queue their writes.

        With ``final``, everything left is embedded and every queued write waited for.
        """
        for batch in self.queue.batches(final=final):
            self.check_cancel()
            self.embed_batch(batch)
        if final:
            for open_file in self.writer.finish():
                self.stored(open_file)

    def embed_batch(self, batch: list[Queued]) -> None:
        """Embed one batch and hand its points (and the files it completes) to the writer."""
        texts = [item.chunk.text for item in batch]
        vectors = self.embedder.embed(
            texts, self.record.instruction_set.document, batch_size=self.settings.model.batch_size
        )
        builder = self.builder or self.representations([item.chunk.text for item in self.queue.window])
        points = chunk_points(batch, vectors, builder, self.record.domain)
        self.chunks_embedded += len(batch)
        touched: dict[int, OpenFile] = {}
        for item in batch:
            item.file.done += 1
            touched[item.file.index] = item.file
        completing = [f for f in touched.values() if f.done == f.chunk_count]
        manifests = [document_manifest(f, self.record.domain, self.chunker) for f in completing]
        for open_file in touched.values():
            self.results.emit(open_file.index, "embedding", done=open_file.done, total=open_file.chunk_count)
        for open_file in self.writer.submit(write_job(self.store, points, completing, manifests)):
            self.stored(open_file)

    def representations(self, texts: Sequence[str]) -> RepresentationBuilder:
        """The builder of the collection's extra representations (created on first use).

        A new collection whose sparse vectors have no recorded average length gets one
        estimated from ``texts``, recorded before any sparse vector is stored. The caller passes
        the first window of queued chunks in arrival order (up to ``model.batch_size`` x
        ``model.sort_window`` of them), not the first batch: length sorting makes that batch the
        window's shortest chunks, and BM25 needs the corpus's mean length.
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

    def report(self, started: float, *, repaired: int, skipped: list[str], rolled_back: int) -> IngestReport:
        """The report of the finished run (``started``: its ``time.perf_counter()`` at the start)."""
        truncated_before, cache_hits_before = self.stats_before
        return IngestReport(
            files=self.results.collected(),
            points=self.store.count(),
            collection=self.store.collection,
            chunks_embedded=self.chunks_embedded,
            seconds=time.perf_counter() - started,
            truncated=self.embedder.stats.truncated - truncated_before,
            repaired=repaired,
            cache_hits=self.embedder.stats.cache_hits - cache_hits_before,
            representations=self.builder.stats.to_json() if self.builder is not None else {},
            skipped=skipped,
            rolled_back=rolled_back,
        )

    # -- results ------------------------------------------------------------------------------

    def fail(self, index: int, error: str, *, pages: int | None = None) -> None:
        """File ``index`` failed for ``error``."""
        logger.info("failed: %s: %s", self.files[index].display_path, error)
        self.results.result(index, "failed", error=error, pages=pages)
        self.results.emit(index, "failed")

    def stored(self, open_file: OpenFile) -> None:
        """A file's chunks and manifest are written."""
        chunks = open_file.chunk_count
        self.results.result(
            open_file.index,
            open_file.status,
            chunks=chunks,
            pages=open_file.pages,
            ocr_pages=open_file.ocr_pages,
            empty_pages=open_file.empty_pages,
            skipped_pages=open_file.skipped_pages,
            warning=open_file.warning,
        )
        ocr = f", {len(open_file.ocr_pages)} of {open_file.pages} pages OCR'd" if open_file.ocr_pages else ""
        logger.info("%s: %s, %d chunks%s", open_file.status, open_file.source.display_path, chunks, ocr)
        self.results.emit(open_file.index, "stored", done=chunks, total=chunks)


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
    page_cache: PageCache | None = None,
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
        on_progress: called with a :class:`~ingest.report.ProgressEvent` as files advance.
        cancel: set it (from any thread) to stop the run as soon as it can: it is checked
            before each file, between embedded batches and inside extraction and chunking.
            Files stored before it was set are kept; every other file is reported
            ``cancelled`` and its chunks already written are removed (a version stored before
            the run stays intact). The report is returned as usual.
        page_cache: the page cache of text layers and OCR output (``None``: the persistent one
            of ``settings.data_dir``, :meth:`~ingest.pagecache.PageCache.for_data_dir`), so a page
            OCR'd once is not OCR'd again, in this process or another.

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
    manifests = store.document_snapshot()
    store.begin_write()  # left in place if the run dies, so that the next run repairs
    run = _Run(
        files,
        settings=settings,
        embedder=embedder,
        store=store,
        record=record,
        manifests=manifests,
        password=password,
        on_progress=on_progress,
        question_generator=generator,
        cancel=cancel,
        page_cache=page_cache if page_cache is not None else PageCache.for_data_dir(settings.data_dir),
    )
    rolled_back = _execute(run)
    return run.report(started, repaired=repaired, skipped=skipped, rolled_back=rolled_back)


def _execute(run: _Run) -> int:
    """Run the stages; on a cancel or an exception, remove the uncommitted chunks.

    Returns:
        The chunk points a cancel removed (0 for a run that completes).

    Raises:
        BaseException: whatever stopped the run (after the rollback, which clears the write mark).
    """
    reader = Reader(len(run.files), run.preparer.prepare)
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
            cancelled = run.results.mark_cancelled()
            if cancelled:
                logger.info("ingest cancelled: %d file(s) not stored", cancelled)
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
    """Why representations the user configured are not built in this run (also logged).

    Only representations whose ``index`` section the user set (in the config file, the
    environment or the command line: the section's explicitly set fields) are named; those the
    defaults alone ask for, such as questions without a generator, pass in silence.
    """
    configured = {
        name for name in type(settings.index).model_fields if getattr(settings.index, name).model_fields_set
    }
    notes: list[str] = []
    questions = settings.index.questions
    if questions.generator is None and questions.model_fields_set - {"generator"}:
        notes.append(
            "questions: no generator model is configured (index.questions.generator), so no synthetic "
            "questions are generated; set INSTRUCTOR_SEARCH_INDEX__QUESTIONS__GENERATOR to a "
            "sequence-to-sequence model folder (e.g. FLAN-T5) to build them"
        )
    missing = [
        name
        for name in wanted.representations.available()
        if name in configured and name not in found.representations.available()
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
