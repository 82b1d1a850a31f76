"""The reader stage of an ingest run: files read, hashed, classified and extracted ahead of the embedder.

It never touches the Qdrant client: it decides from a snapshot of the manifests taken at the
start of the run. :class:`Reader` runs :meth:`Preparer.prepare` in a background thread and hands
the files on in order, through a bounded queue. OCR of scanned pages happens here, in the reader
thread, so it overlaps with the embedding of the files before (and cancel stops it between pages).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ingest.chunking import Chunker
from ingest.errors import DocumentError, IngestCancelledError
from ingest.extract import PAGE_TEXT_CACHE, ExtractedText, extract_text
from ingest.ocr.base import OcrOptions
from ingest.pagecache import PageCache
from ingest.sources import SourceFile, file_sha256
from store.manifest import DocumentManifest, ManifestSnapshot

#: Files read and extracted ahead of the embedder (bounded, so memory stays flat).
PREFETCH_FILES = 2


@dataclass
class Prepared:
    """A file read (and, unless it is unchanged or a duplicate, extracted) by the reader thread."""

    index: int
    sha256: str = ""
    error: str | None = None
    previous: DocumentManifest | None = None
    unchanged: bool = False  # same content and chunking as its manifest (chunks checked later)
    duplicate_of: str | None = None
    extracted: ExtractedText | None = None
    cancelled: bool = False  # the run was cancelled before or while this file was read


class Preparer:
    """Reads, hashes, classifies and (when needed) extracts the files of a run.

    Args:
        files: the run's files.
        manifests: the stored manifests by source, at the start of the run.
        chunker: the run's chunker (its chunking decides whether a stored file is unchanged).
        password: password for encrypted PDFs.
        max_chars: ``ingest.max_chars_per_file``.
        cancel: the run's cancel event.
        ocr: the OCR options of PDF pages.
        page_cache: the page cache (text layers and OCR output).
    """

    def __init__(
        self,
        files: Sequence[SourceFile],
        manifests: ManifestSnapshot,
        chunker: Chunker,
        *,
        password: str | None,
        max_chars: int,
        cancel: threading.Event | None,
        ocr: OcrOptions | None = None,
        page_cache: PageCache | None = PAGE_TEXT_CACHE,
    ) -> None:
        self.files = files
        self.ocr = ocr
        self.page_cache = page_cache
        self.manifests = manifests
        self.chunker = chunker
        self.password = password
        self.max_chars = max_chars
        self.cancel = cancel
        # sha256 -> committed source (snapshot), and sha256 -> source of this run (reader thread)
        self.stored_sha = manifests.hashes()
        self.in_run: dict[str, str] = {}

    def prepare(self, index: int, *, force: bool = False) -> Prepared:
        """Read, hash, classify and (when needed) extract file ``index``.

        Args:
            index: the file's index in the run.
            force: extract it even if its manifest says it is unchanged.
        """
        source = self.files[index]
        if self.cancel is not None and self.cancel.is_set():
            return Prepared(index, cancelled=True)
        try:
            data = source.read_bytes()
        except DocumentError as exc:
            return Prepared(index, error=str(exc))
        sha = file_sha256(data)
        previous = self.manifests.get(source.source)
        if (
            not force
            and previous is not None
            and previous.file_sha256 == sha
            and not self.chunking_changed(previous)
        ):
            self.in_run.setdefault(sha, source.source)
            return Prepared(index, sha256=sha, previous=previous, unchanged=True)
        duplicate_of = self.in_run.get(sha) or self.stored_sha.get(sha)
        if duplicate_of is not None and duplicate_of != source.source:
            return Prepared(index, sha256=sha, previous=previous, duplicate_of=duplicate_of)
        try:
            extracted = extract_text(
                data,
                file_name=source.file_name,
                password=self.password,
                max_chars=self.max_chars,
                cancel=self.cancel,
                ocr=self.ocr,
                page_cache=self.page_cache,
            )
        except IngestCancelledError:
            return Prepared(index, sha256=sha, cancelled=True)
        except DocumentError as exc:
            return Prepared(index, sha256=sha, error=str(exc))
        self.in_run[sha] = source.source
        return Prepared(index, sha256=sha, previous=previous, extracted=extracted)

    def chunking_changed(self, manifest: DocumentManifest) -> bool:
        """Whether the file was stored with another chunking than this run's."""
        chunker = self.chunker
        pairs: list[tuple[object, object]] = [
            (manifest.chunk_size, chunker.size),
            (manifest.chunk_overlap, chunker.overlap),
            (manifest.chunk_strategy, chunker.strategy),
        ]
        return any(recorded is not None and recorded != wanted for recorded, wanted in pairs)


class Reader:
    """Runs ``prepare`` for every file, in order, in a background thread, ahead of the embedder.

    Items come out in file order; an unexpected exception is re-raised in the consuming thread.

    Args:
        count: the number of files.
        prepare: prepares file ``index``.
        depth: files prepared ahead.
    """

    def __init__(self, count: int, prepare: Callable[[int], Prepared], depth: int = PREFETCH_FILES) -> None:
        self._count = count
        self._prepare = prepare
        self._queue: queue.Queue[Prepared | BaseException | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="ingest-reader", daemon=True)
        self._thread.start()

    def _put(self, item: Prepared | BaseException | None) -> None:
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

    def __iter__(self) -> Iterator[Prepared]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading and wait for the thread (at most 30 s)."""
        self._stop.set()
        self._thread.join(timeout=30)
