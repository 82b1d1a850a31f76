"""What an ingest run tells its caller: progress events as it goes, one result per file, the report.

Statuses of a file (:data:`~ingest.sources.FILE_STATUSES`):

* ``unchanged``: the manifest has the file's sha256, the same chunking, and all its chunks are
  present; nothing is written.
* ``replaced``: the source was stored with other content (or other chunking); it is replaced.
* ``ingested``: new source (or a stored source whose chunks had gone missing).
* ``failed``: the file could not be read, no page of it yielded text (blank, OCR found nothing,
  OCR off), or it passes a limit of the ``ingest`` settings (``max_chars_per_file``,
  ``max_chunks_per_file``); the reason is in ``error``.

An ``ingested`` or ``replaced`` PDF lists its pages OCR'd (``ocr_pages``), its pages without text
(``empty_pages``) and its pages not read, with the reason (``skipped_pages``); when some pages
yielded nothing, ``warning`` names them in one line (:mod:`ingest.ocr.decide`).
* ``cancelled``: the run's ``cancel`` event was set before the file was stored; nothing of it
  is kept (a version stored before the run still is).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ingest.errors import IngestError
from ingest.sources import FILE_STATUSES, FileResult, FileStatus, SourceFile

if TYPE_CHECKING:
    from store.manifest import DocumentManifest

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


class FileResults:
    """The results of a run's files as they are decided, and the progress events that go with them.

    Used from the calling thread only, so ``on_progress`` is always called from there.

    Args:
        files: the run's files.
        on_progress: called with each :class:`ProgressEvent` (or ``None``).
        manifests: the stored manifests by source, at the start of the run.
    """

    def __init__(
        self,
        files: Sequence[SourceFile],
        on_progress: Callable[[ProgressEvent], None] | None,
        manifests: Mapping[str, DocumentManifest],
    ) -> None:
        self.files = files
        self.on_progress = on_progress
        self.manifests = manifests
        self.results: list[FileResult | None] = [None] * len(files)

    def emit(self, index: int, stage: ProgressStage, *, done: int = 0, total: int = 0) -> None:
        """Tell ``on_progress`` how file ``index`` advances."""
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
        """Record the result of file ``index``."""
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

    def mark_cancelled(self) -> int:
        """Every file without a result yet is ``cancelled`` (its chunks were rolled back).

        Returns:
            The number of files marked.
        """
        pending = [index for index, result in enumerate(self.results) if result is None]
        for index in pending:
            kept = self.manifests.get(self.files[index].source) is not None
            note = "the ingest was cancelled before this file was stored; " + (
                "its previously stored version is kept" if kept else "nothing of it was kept"
            )
            self.result(index, "cancelled", note=note)
        return len(pending)

    def collected(self) -> list[FileResult]:
        """Every file's result, in input order.

        Raises:
            IngestError: a file got no result (an internal error: every path sets one).
        """
        results = [result for result in self.results if result is not None]
        if len(results) != len(self.files):
            raise IngestError(f"internal error: {len(self.files) - len(results)} file(s) got no result")
        return results
