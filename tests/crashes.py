"""Test helpers that make a process look killed to the store: it can no longer clean up."""

from __future__ import annotations

import threading

import pytest

from store.core import VectorStore


class Crash(Exception):
    """Stands in for the process dying half-way through the big file."""


def killable(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """An event that, once set, makes the process "dead" for the store: it can no longer clean up.

    A failing run rolls back (removes its uncommitted chunks through ``VectorStore.repair``);
    a killed process cannot. While the event is set, ``repair`` raises, so a run that raises
    :class:`Crash` leaves what a ``kill -9`` leaves: its chunks and its write mark. Clear the
    event to bring the store back to life.
    """
    dead = threading.Event()
    repair = VectorStore.repair

    def repair_unless_dead(self: VectorStore, *, force: bool = False) -> int:
        if dead.is_set():
            raise Crash("the process is dead: nothing runs any more")
        return repair(self, force=force)

    monkeypatch.setattr(VectorStore, "repair", repair_unless_dead)
    return dead
