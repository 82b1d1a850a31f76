"""Write-ahead logging for the embedded store's SQLite files: one cheap sync per point written.

qdrant-client's local mode keeps each collection in ``<folder>/collection/<name>/storage.sqlite``
and commits every point on its own: one transaction per point upserted, and one per point whose
payload changes (clearing a chunk's pending flag is one more). In SQLite's default rollback-journal
mode each commit creates, syncs and deletes a journal file; measured on this project's shared
machine, 5 to 18 ms per commit, which held an ingest with the fake embedder at 18 chunks/s
(:mod:`evaluation.scale`). In WAL mode a commit appends to the log and syncs it once: 0.2 ms
there, and the same ingest ran at 125 to 150 chunks/s.

WAL is a property of the database file (set once, it stays), as durable as before (qdrant-client's
connections keep SQLite's default ``synchronous=FULL``) and as atomic; whatever reads the file
(qdrant-client, ``sqlite3``) needs nothing else. Its limits are SQLite's: the folder must be on a
file system of the machine that opens it (not a network share used from several hosts), and the
``-wal`` and ``-shm`` files beside ``storage.sqlite`` are part of the store (copy the folder whole,
with the store closed).

:func:`remember` records the folder of a client :func:`store.client.open_client` opened;
:func:`use_wal` switches the storage files of that folder that are still in rollback-journal
mode (those of collections created since) to WAL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: The storage file of each collection of an embedded store, under its folder.
STORAGE_GLOB = "collection/**/storage.sqlite"
#: Offset of SQLite's "file format write version" byte in the header: 1 rollback journal, 2 WAL.
_WRITE_VERSION_OFFSET = 18

_FOLDERS: weakref.WeakKeyDictionary[Any, Path] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def remember(client: Any, folder: Path) -> None:
    """Record that ``client`` is the embedded store in ``folder`` (for :func:`use_wal`)."""
    with _LOCK:
        _FOLDERS[client] = folder


def in_wal_mode(path: Path) -> bool:
    """Whether the SQLite file ``path`` is in WAL mode (read from its header, no connection)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(_WRITE_VERSION_OFFSET + 1)
    except OSError:
        return False
    return len(header) > _WRITE_VERSION_OFFSET and header[_WRITE_VERSION_OFFSET] == 2


def enable_wal(folder: Path) -> int:
    """Switch every collection's storage file under ``folder`` that is not in WAL mode to it.

    A file that is busy (a write of another thread under way) is left as it is and switched the
    next time; it works either way, only slower.

    Args:
        folder: the embedded store's folder.

    Returns:
        The number of files switched.
    """
    switched = 0
    for path in sorted(folder.glob(STORAGE_GLOB)):
        if in_wal_mode(path):
            continue
        try:
            connection = sqlite3.connect(str(path), timeout=0.5)
            try:
                mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()
            finally:
                connection.close()
        except sqlite3.Error as exc:
            logger.debug("%s stays in rollback-journal mode for now: %s", path, exc)
            continue
        if mode and str(mode[0]).lower() == "wal":
            switched += 1
    return switched


def use_wal(client: Any) -> int:
    """:func:`enable_wal` on the folder of ``client`` (0 if it is not an embedded store we opened)."""
    with _LOCK:
        folder = _FOLDERS.get(client)
    return enable_wal(folder) if folder is not None else 0


__all__ = ["enable_wal", "in_wal_mode", "remember", "use_wal"]
