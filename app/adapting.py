"""Adaptations run in a background thread: what the Streamlit page starts, follows and cancels.

An :class:`AdaptJob` calls :meth:`app.service.SearchService.adapt` in a thread of its own and
records its progress; it never touches Streamlit, so no rerun of any page interrupts it, and
searches go on meanwhile (the job holds the write lock only while it writes the new collection).
Jobs are kept per store and collection for the whole process: every browser session sees the
job of a collection, and a collection is adapted by one job at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.errors import DETAILS_IN_LOG, log_unexpected, user_message
from training.errors import AdaptCancelledError

if TYPE_CHECKING:
    from app.service import SearchService
    from training.adapt import AdaptEvent, AdaptResult

logger = logging.getLogger(__name__)


@dataclass
class AdaptJob:
    """An adaptation running in a background thread.

    Attributes:
        collection: the collection being adapted.
        cancel: set by the Cancel button; the job stops after the current step or batch.
        done: set when the job has ended, whatever the outcome.
        stages: the latest progress event of each stage started.
        result: the result, once done (``None`` when it failed or was cancelled).
        error: the one-line message of the error that ended it, if any.
        cancelled: whether it ended because it was cancelled (running it again resumes).
        started: ``time.monotonic()`` at the start.
        ended: ``time.monotonic()`` at the end (``None`` while running).
    """

    collection: str
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    stages: dict[str, AdaptEvent] = field(default_factory=dict)
    result: AdaptResult | None = None
    error: str | None = None
    cancelled: bool = False
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    def run(self, service: SearchService) -> None:
        """Adapt the collection (call it in the job's thread); errors end up in :attr:`error`."""
        try:
            self.result = service.adapt(self.collection, progress=self._progress, cancel=self.cancel)
        except AdaptCancelledError:
            self.cancelled = True
        except Exception as exc:  # noqa: BLE001 - reported on the page as one line
            log_unexpected(exc, logger)
            self.error = user_message(exc, url=service.settings.qdrant.url, details=DETAILS_IN_LOG)
        finally:
            self.ended = time.monotonic()
            self.done.set()

    def _progress(self, event: AdaptEvent) -> None:
        self.stages[event.stage] = event

    @property
    def seconds(self) -> float:
        """How long it has run (or ran)."""
        return (self.ended if self.ended is not None else time.monotonic()) - self.started


_JOBS: dict[tuple[str, str], AdaptJob] = {}
_JOBS_LOCK = threading.Lock()


def _key(service: SearchService, collection: str) -> tuple[str, str]:
    settings = service.settings
    return f"{settings.qdrant_mode}:{settings.qdrant_location}", collection


def adapt_job(service: SearchService, collection: str) -> AdaptJob | None:
    """The job of a collection (running, or ended and not dismissed yet), if any."""
    with _JOBS_LOCK:
        return _JOBS.get(_key(service, collection))


def start_adapt(service: SearchService, collection: str) -> AdaptJob:
    """Start adapting a collection in a background thread (or return the job already running).

    An ended job of the collection is replaced: running it again resumes what it left.

    Args:
        service: the service.
        collection: the collection.

    Returns:
        The running job.
    """
    with _JOBS_LOCK:
        key = _key(service, collection)
        job = _JOBS.get(key)
        if job is not None and not job.done.is_set():
            return job
        job = AdaptJob(collection=collection)
        _JOBS[key] = job
    threading.Thread(target=job.run, args=(service,), name="instructor-search-adapt", daemon=True).start()
    return job


def dismiss_adapt(service: SearchService, collection: str) -> None:
    """Forget the ended job of a collection (a running one is kept)."""
    with _JOBS_LOCK:
        key = _key(service, collection)
        job = _JOBS.get(key)
        if job is not None and job.done.is_set():
            del _JOBS[key]
