"""Opening Qdrant: one client per process, an embedded store repaired on open, server errors named.

Names: ``NAME__documents`` is internal (a manifest collection); :func:`list_collections` leaves
it out, and a :class:`~store.core.VectorStore` is never opened on it.
"""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from config.names import is_internal_collection
from store.errors import StoreConnectionError, StoreLockedError
from store.journal import enable_wal, remember
from store.manifest import Manifests, repair
from store.points import ChunkPoints

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from config import Settings

logger = logging.getLogger(__name__)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (if it runs) while an embedded store is read.

    Opening unpickles every point into a few Python objects each, none of them garbage; the
    collector's passes over that growing heap are a third of the time to open (measured with
    :mod:`evaluation.scale`: 4.4 s against 3.1 s for 50,000 chunks of 384 dimensions).
    Reference counting still frees everything as usual; the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def open_client(settings: Settings) -> QdrantClient:
    """Open the Qdrant client the settings point at (embedded folder, ``:memory:`` or server).

    Args:
        settings: the settings.

    Returns:
        The client. Open one per process and share it: the embedded store is single-process.
        An embedded store left half written by a killed run is repaired before it is returned
        (see :func:`repair_interrupted`), and its SQLite files are put in WAL mode
        (:mod:`store.journal`).

    Raises:
        StoreLockedError: the embedded folder is already open in another process.
        StoreConnectionError: the server URL is unusable.
    """
    from qdrant_client import QdrantClient  # lazy: qdrant_client takes about a second to import

    mode = settings.qdrant_mode
    if mode != "server":
        silence_size_warning()
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
        with collector_paused():
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
        remember(client, path)
        enable_wal(path)  # the folder lock is ours; see store.journal (one cheap sync per point)
        repair_interrupted(client, settings)  # the folder lock is ours: a write mark left is a dead run's
    except BaseException:
        client.close()  # release the folder lock
        raise
    return client


#: The start of qdrant-client's warning past 20,000 points in local mode (at open and on upsert).
LOCAL_SIZE_WARNING = r"Local mode is not recommended for collections with more than"


def silence_size_warning() -> None:
    """Hide qdrant-client's "not recommended" warning for local collections past 20,000 points.

    Our own numbers (:mod:`evaluation.scale`, all-MiniLM-L6-v2 with BM25, idle 2-core machine,
    ``docs/notes/scale.md``) show the embedded store fine well past it: at 20,000 chunks the
    model ingests at 42-52 chunks/s (as fast as into an empty store), a fresh process opens the
    store and answers its first search in 1.8-3.4 s, and dense queries take 6.7-11.5 ms p50. Past
    ``qdrant.local_max_points`` we say so ourselves, once per ingest and in ``collections info``
    (:mod:`store.capacity`), with how to move the collection to a server.
    """
    warnings.filterwarnings("ignore", message=LOCAL_SIZE_WARNING, category=UserWarning)


def wrap_server_errors(exc: Exception, action: str) -> StoreConnectionError:
    """A :class:`StoreConnectionError` for a failure of the Qdrant client while doing ``action``."""
    return StoreConnectionError(f"Qdrant failed while {action}: {type(exc).__name__}: {exc}")


def list_collections(client: QdrantClient) -> list[str]:
    """Names of the user collections (internal manifest collections left out)."""
    names: Iterable[str] = (c.name for c in client.get_collections().collections)
    return sorted(name for name in names if not is_internal_collection(name))


def repair_interrupted(client: QdrantClient, settings: Settings) -> dict[str, int]:
    """Repair every collection of an embedded store that a killed run left half written.

    :func:`open_client` calls it: the embedded store's folder lock guarantees that
    no other process is writing, so a write mark (see :meth:`store.core.VectorStore.begin_write`)
    left in place can only be a dead run's, and its leftovers are removed now rather than at
    the next write. A server may have a concurrent ingest by another process, so nothing is
    done there (the next write repairs, see :meth:`store.core.VectorStore.repair`).

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
        manifests = Manifests(client, name, local=True)
        if manifests.write_interrupted():
            repaired[name] = repair(ChunkPoints(client, name, local=True), manifests)
    if repaired:
        logger.warning("repaired collections left half written by an interrupted run: %s", repaired)
    return repaired
