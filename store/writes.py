"""Which collections were written, and when: how readers above the store learn their copies are stale.

:class:`store.core.VectorStore` calls :func:`note_write` after every write to a collection's
chunks. A reader that keeps a copy of a collection (the in-process index of
:mod:`retrieval.local_index`) remembers the :func:`write_state` it built from and rebuilds when
the generation has moved on. The store knows nothing of its readers: the dependency points down.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WriteState:
    """A collection's write counter.

    Attributes:
        generation: how many writes this process has made to the collection.
        last_write: ``time.monotonic()`` of the latest one (0.0: never written here).
    """

    generation: int = 0
    last_write: float = 0.0


_STATES: weakref.WeakKeyDictionary[Any, dict[str, WriteState]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def note_write(client: Any, collection: str) -> None:
    """Record a write to ``collection`` through ``client`` (the object the writes went through)."""
    with _LOCK:
        per_client = _STATES.setdefault(client, {})
        previous = per_client.get(collection, WriteState())
        per_client[collection] = WriteState(previous.generation + 1, time.monotonic())


def write_state(client: Any, collection: str) -> WriteState:
    """The current :class:`WriteState` of ``collection`` through ``client``."""
    with _LOCK:
        return _STATES.get(client, {}).get(collection, WriteState())


__all__ = ["WriteState", "note_write", "write_state"]
