"""Uploads ingested in a background thread: what the Streamlit page starts, follows and cancels.

A job only calls the service and records progress; it never touches Streamlit, so a rerun of
the page (any click) never interrupts it. Files over ``app.max_upload_mb`` are refused before
anything is ingested. The password of encrypted PDFs lives in the job only while it runs: it
is handed to the ingest, then dropped, and never logged, shown or written anywhere.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.errors import DETAILS_IN_LOG, log_unexpected, user_message
from app.wording import for_the_page
from ingest import FileResult, SourceFile, upload_source

if TYPE_CHECKING:
    from app.service import SearchService
    from ingest.report import IngestReport, ProgressEvent

logger = logging.getLogger(__name__)


@dataclass
class UploadOutcome:
    """What an upload did, kept in the session so it survives the rerun after the upload."""

    collection: str
    results: list[FileResult]
    seconds: float
    error: str | None = None


@dataclass
class UploadJob:
    """An upload being ingested in a background thread of the session.

    The thread only calls the service and records progress here; it never touches Streamlit.
    Set :attr:`cancel` to stop it (files not yet stored are rolled back).

    Attributes:
        collection: the target collection.
        sources: the files to ingest.
        too_big: results of the files refused for their size (never ingested).
        cancel: set by the Cancel button.
        done: set when the ingest has ended, whatever the outcome.
        events: the latest progress event of each file.
        report: the ingest report, once done (``None`` when it failed).
        error: the one-line message of the error that ended it, if any.
        started: ``time.monotonic()`` at the start.
        password: the password for encrypted PDFs, until the ingest ends (left out of ``repr``).
    """

    collection: str
    sources: list[SourceFile]
    too_big: list[FileResult] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    events: dict[int, ProgressEvent] = field(default_factory=dict)
    report: IngestReport | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    password: str | None = field(default=None, repr=False)

    def run(self, service: SearchService) -> None:
        """Ingest the files (call it in the job's thread); errors end up in :attr:`error`."""
        try:
            if self.sources:
                self.report = service.ingest(
                    self.sources,
                    collection=self.collection,
                    password=self.password,
                    on_progress=self._progress,
                    cancel=self.cancel,
                )
        except Exception as exc:  # noqa: BLE001 - reported on the page as one line
            log_unexpected(exc, logger)
            self.error = for_the_page(
                user_message(exc, url=service.settings.qdrant.url, details=DETAILS_IN_LOG)
            )
        finally:
            self.password = None  # used by this ingest only
            self.done.set()

    def _progress(self, event: ProgressEvent) -> None:
        self.events[event.file_index] = event

    def outcome(self) -> UploadOutcome:
        """The outcome to show (call it once :attr:`done` is set)."""
        report = self.report
        return UploadOutcome(
            collection=self.collection,
            results=self.too_big + (report.files if report is not None else []),
            seconds=report.seconds if report is not None else time.monotonic() - self.started,
            error=self.error,
        )


def start_upload(
    service: SearchService,
    collection: str,
    files: Sequence[tuple[str, bytes]],
    *,
    password: str | None = None,
) -> UploadJob:
    """Start ingesting uploaded files in a background thread.

    Args:
        service: the service.
        collection: the target collection.
        files: ``(uploaded name, bytes)`` pairs. The name only becomes a display name.
        password: the password of the encrypted PDFs among them (``None`` or ``""``: none).

    Returns:
        The running job (already done when no file is small enough to ingest).
    """
    limit_mb = service.settings.app.max_upload_mb
    job = UploadJob(collection=collection, sources=[], password=password or None)
    for name, data in files:
        source = upload_source(name, data)
        if len(data) > limit_mb * 1024 * 1024:
            job.too_big.append(
                FileResult(
                    path=source.source,
                    status="failed",
                    file_name=source.file_name,
                    source=source.source,
                    error=f"{len(data) / 1048576:.1f} MB is over the upload limit of {limit_mb} MB "
                    "(setting app.max_upload_mb)",
                )
            )
        else:
            job.sources.append(source)
    if not job.sources:
        job.password = None
        job.done.set()
        return job
    threading.Thread(target=job.run, args=(service,), name="instructor-search-upload", daemon=True).start()
    return job
