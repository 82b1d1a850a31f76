"""The ingest service: files in, chunk points and document manifests out.

The work is streamed so that memory does not grow with the corpus: a file is read, extracted
and chunked, and its chunks join a queue that is embedded in batches of
``settings.model.batch_size`` (a batch may span files). Each embedded batch is upserted at once;
when every chunk of a file is stored, the file's manifest is committed and the chunks of its
previous content are deleted. Only a committed manifest makes a file count as stored, and
:meth:`~ingest.store.VectorStore.repair` (run at the start of every ingest) removes chunks no
manifest vouches for, so a file is stored completely or not at all even if the process dies.

Statuses:

* ``unchanged``: the manifest has the file's sha256, the same chunking, and all its chunks are
  present; nothing is written.
* ``replaced``: the source was stored with other content (or other chunking); it is replaced.
* ``ingested``: new source (or a stored source whose chunks had gone missing).
* ``failed``: the file could not be read or has no text; the reason is in ``error``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from ingest.chunking import Chunk, Chunker, make_chunker
from ingest.errors import DocumentError, IngestError
from ingest.extract import ExtractedText, extract_text
from ingest.sources import FileResult, FileStatus, SourceFile, discover, upload_source
from ingest.store import DocumentManifest, chunk_point_id, expected_record

if TYPE_CHECKING:
    from config import Settings
    from embedder import Embedder
    from ingest.store import CollectionRecord, VectorStore

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
    """

    files: list[FileResult]
    points: int
    collection: str
    chunks_embedded: int = 0
    seconds: float = 0.0
    truncated: int = 0
    repaired: int = 0

    @property
    def failed(self) -> bool:
        """Whether any file failed."""
        return any(result.status == "failed" for result in self.files)

    def counts(self) -> dict[str, int]:
        """Files per status."""
        out: dict[str, int] = {"ingested": 0, "unchanged": 0, "replaced": 0, "failed": 0}
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
            "counts": self.counts(),
        }


def file_sha256(data: bytes) -> str:
    """Hex sha256 of a file's bytes (the content id of its chunks)."""
    return hashlib.sha256(data).hexdigest()


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
    results: list[FileResult | None] = field(default_factory=list)
    queue: deque[_Queued] = field(default_factory=deque)
    in_run: dict[str, str] = field(default_factory=dict)  # sha256 -> source, for this run
    chunks_embedded: int = 0

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

    def fail(self, index: int, error: str, *, pages: int | None = None) -> None:
        source = self.files[index]
        logger.info("failed: %s: %s", source.display_path, error)
        self.results[index] = FileResult(
            path=source.display_path,
            status="failed",
            error=error,
            file_name=source.file_name,
            pages=pages,
            source=source.source,
        )
        self.emit(index, "failed")

    # -- per file -----------------------------------------------------------------------------------

    def add_file(self, index: int) -> None:
        """Read, hash, check and chunk one file; queue its chunks for embedding."""
        source = self.files[index]
        self.emit(index, "reading")
        try:
            data = source.read_bytes()
        except DocumentError as exc:
            self.fail(index, str(exc))
            return
        sha = file_sha256(data)
        manifest = self.store.manifest(source.source)
        if manifest is not None and self._is_current(manifest, sha):
            self.results[index] = FileResult(
                path=source.display_path,
                status="unchanged",
                chunks=manifest.chunks,
                file_name=source.file_name,
                pages=manifest.pages,
                source=source.source,
            )
            self.in_run[sha] = source.source
            self.emit(index, "skipped", done=manifest.chunks, total=manifest.chunks)
            return
        duplicate_of = self.in_run.get(sha) or self.store.stored_source(sha)
        if duplicate_of is not None and duplicate_of != source.source:
            self._skip_duplicate(index, manifest, duplicate_of)
            return
        try:
            extracted = source_text(data, source, password=self.password)
            chunks = self.chunker.split(extracted.pages)
        except DocumentError as exc:
            self.fail(index, str(exc))
            return
        del data
        if not chunks:
            self.fail(index, f"{source.file_name!r} contains no text to index", pages=extracted.page_count)
            return
        status: FileStatus = (
            "replaced" if manifest is not None and manifest.file_sha256 != sha else "ingested"
        )
        if manifest is not None and manifest.file_sha256 == sha:
            status = "replaced" if self._chunking_changed(manifest) else "ingested"
        open_file = _OpenFile(
            index=index,
            source=source,
            sha256=sha,
            status=status,
            chunk_count=len(chunks),
            pages=extracted.page_count,
            ingested_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            previous=manifest,
        )
        self.in_run[sha] = source.source
        self.queue.extend(_Queued(open_file, chunk) for chunk in chunks)
        self.emit(index, "embedding", done=0, total=len(chunks))

    def _chunking_changed(self, manifest: DocumentManifest) -> bool:
        chunker = self.chunker
        pairs: list[tuple[object, object]] = [
            (manifest.chunk_size, chunker.size),
            (manifest.chunk_overlap, chunker.overlap),
            (manifest.chunk_strategy, chunker.strategy),
        ]
        return any(recorded is not None and recorded != wanted for recorded, wanted in pairs)

    def _is_current(self, manifest: DocumentManifest, sha: str) -> bool:
        if manifest.file_sha256 != sha or self._chunking_changed(manifest):
            return False
        if not self.store.has_chunks(manifest):
            logger.warning(
                "%s: some of its %d chunks are missing from the collection; storing it again",
                manifest.source,
                manifest.chunks,
            )
            return False
        return True

    def _skip_duplicate(self, index: int, manifest: DocumentManifest | None, duplicate_of: str) -> None:
        """Identical content is stored once (point ids depend on the content hash only)."""
        source = self.files[index]
        status: FileStatus = "unchanged"
        if manifest is not None:  # this source held other content before: drop it
            self.store.delete_document(source.source)
            status = "replaced"
        note = f"identical content is already stored as {duplicate_of!r}; it is not stored twice"
        logger.info("%s: %s", source.display_path, note)
        self.results[index] = FileResult(
            path=source.display_path,
            status=status,
            chunks=0,
            file_name=source.file_name,
            source=source.source,
            note=note,
        )
        self.emit(index, "skipped")

    # -- embedding and storing -------------------------------------------------------------------

    def drain(self, *, final: bool = False) -> None:
        """Embed and store full batches (and the last partial one when ``final``)."""
        batch_size = self.settings.model.batch_size
        while len(self.queue) >= batch_size or (final and self.queue):
            batch = [self.queue.popleft() for _ in range(min(batch_size, len(self.queue)))]
            self.store_batch(batch)

    def store_batch(self, batch: list[_Queued]) -> None:
        """Embed one batch, upsert its points, and commit the files it completes."""
        from qdrant_client import models

        vectors = self.embedder.embed(
            [item.chunk.text for item in batch],
            self.record.instruction_set.document,
            batch_size=self.settings.model.batch_size,
        )
        points = [
            models.PointStruct(
                id=chunk_point_id(item.file.sha256, item.chunk.index),
                vector=vector.tolist(),
                payload=self._payload(item),
            )
            for item, vector in zip(batch, vectors, strict=True)
        ]
        self.store.upsert_chunks(points)
        self.chunks_embedded += len(batch)
        touched: dict[int, _OpenFile] = {}
        for item in batch:
            item.file.done += 1
            touched[item.file.index] = item.file
        for open_file in touched.values():
            if open_file.done == open_file.chunk_count:
                self.commit(open_file)
            else:
                self.emit(open_file.index, "embedding", done=open_file.done, total=open_file.chunk_count)

    def _payload(self, item: _Queued) -> dict[str, object]:
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
            },
        }

    def commit(self, open_file: _OpenFile) -> None:
        """All chunks of a file are stored: commit its manifest, then drop its old chunks."""
        source = open_file.source
        chunker = self.chunker
        self.store.commit_document(
            DocumentManifest(
                source=source.source,
                file_name=source.file_name,
                file_sha256=open_file.sha256,
                chunks=open_file.chunk_count,
                pages=open_file.pages,
                domain=self.record.domain,
                ingested_at=open_file.ingested_at,
                chunk_size=chunker.size,
                chunk_overlap=chunker.overlap,
                chunk_strategy=chunker.strategy,
            )
        )
        # After the commit: if the process dies here, repair() removes the old chunks. A new
        # source has none (the collection is consistent after repair()).
        if open_file.previous is not None:
            self.store.delete_stale(
                source.source,
                open_file.sha256,
                keep_chunks=open_file.chunk_count,
                previous=open_file.previous,
            )
        self.results[open_file.index] = FileResult(
            path=source.display_path,
            status=open_file.status,
            chunks=open_file.chunk_count,
            file_name=source.file_name,
            pages=open_file.pages,
            source=source.source,
        )
        logger.info("%s: %s, %d chunks", open_file.status, source.display_path, open_file.chunk_count)
        self.emit(open_file.index, "stored", done=open_file.chunk_count, total=open_file.chunk_count)


def source_text(data: bytes, source: SourceFile, *, password: str | None = None) -> ExtractedText:
    """Extract the text of a source file's bytes (see :func:`ingest.extract.extract_text`)."""
    return extract_text(data, file_name=source.file_name, password=password)


def ingest_files(
    files: Sequence[SourceFile],
    *,
    settings: Settings,
    embedder: Embedder,
    store: VectorStore,
    domain: str | None = None,
    password: str | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
) -> IngestReport:
    """Ingest files into the store's collection, streaming, one file all-or-none.

    The collection is created on first use with the record of these settings and this
    embedder; an existing collection built with another model or other instructions is refused.
    Leftovers of an interrupted earlier run are removed first. A file that cannot be read or
    has no text is reported as ``failed`` and the run goes on.

    Args:
        files: the files (see :func:`ingest.sources.discover` and
            :func:`ingest.sources.upload_source`).
        settings: the settings (model batch size, chunking, instructions).
        embedder: the embedder.
        store: the collection.
        domain: overrides ``settings.instructions.domain`` for a new collection.
        password: password for encrypted PDFs.
        on_progress: called with a :class:`ProgressEvent` as files advance.

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
    record = store.ensure(expected_record(settings, embedder, domain=domain))
    repaired = store.repair()
    store.begin_write()  # left in place if the run dies, so that the next run repairs
    truncated_before = embedder.stats.truncated
    run = _Run(
        files=files,
        settings=settings,
        embedder=embedder,
        store=store,
        record=record,
        chunker=make_chunker(settings.chunk, embedder, record.instruction_set.document),
        password=password,
        on_progress=on_progress,
        results=[None] * len(files),
    )
    for index in range(len(files)):
        run.add_file(index)
        run.drain()
    run.drain(final=True)
    store.end_write()
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
    )
