"""The embedding queue of an ingest run: chunks in, length-sorted batches with little padding out.

Chunks of several files wait in one queue. A window of ``model.sort_window`` batches is taken
from it once it is full (or whatever is left at the end of the run), sorted by token count and
cut into batches of at most ``model.batch_size`` that pad at most :data:`MAX_PADDING` of their
positions (a batch of :data:`MIN_BATCH` or fewer is never cut); the window bounds the chunks
held. ``sort_window=1`` keeps arrival order and fixed-size batches.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

#: Most padding a length-sorted batch may have (share of its token positions) before it is cut.
MAX_PADDING = 0.08
#: Batches this small are never cut for padding (tiny batches waste more than padding does).
MIN_BATCH = 4

T = TypeVar("T")


class BatchQueue(Generic[T]):
    """Items waiting to be embedded, handed out in batches.

    Args:
        batch_size: most items a batch (``model.batch_size``).
        sort_window: batches per length-sorted window (``model.sort_window``; 1: arrival order).
        tokens: the token count of an item (the embedder's count of its text).
    """

    def __init__(self, batch_size: int, sort_window: int, tokens: Callable[[T], int]) -> None:
        self.batch_size = batch_size
        self.sort_window = sort_window
        self.tokens = tokens
        self._items: deque[T] = deque()
        #: The window whose batches are being handed out, in arrival order (before sorting).
        self.window: list[T] = []

    def extend(self, items: Iterable[T]) -> None:
        """Queue items (in arrival order)."""
        self._items.extend(items)

    def batches(self, *, final: bool = False) -> Iterator[list[T]]:
        """The batches of every full window (with ``final``: of everything left), taken off the queue.

        A window is taken off the queue as a whole when its first batch is handed out.
        """
        batch_size = self.batch_size
        window = batch_size * self.sort_window
        while len(self._items) >= window or (final and self._items):
            taken = [self._items.popleft() for _ in range(min(window, len(self._items)))]
            self.window = list(taken)
            if self.sort_window == 1:
                yield from (taken[start : start + batch_size] for start in range(0, len(taken), batch_size))
            else:
                yield from padding_bounded(taken, batch_size, self.tokens)


def padding_bounded(items: list[T], batch_size: int, tokens: Callable[[T], int]) -> list[list[T]]:
    """Sort by tokens and cut where the next, longer item would pad the batch beyond MAX_PADDING.

    Args:
        items: the items (sorted in place).
        batch_size: most items a batch.
        tokens: the token count of an item.

    Returns:
        The batches, shortest items first.
    """
    lengths = {id(item): tokens(item) for item in items}
    items.sort(key=lambda item: lengths[id(item)])
    batches: list[list[T]] = []
    current: list[T] = []
    total = 0
    for item in items:
        length = lengths[id(item)] + 2  # special tokens; the instruction only adds a constant
        full = len(current) == batch_size
        padding = 1 - (total + length) / (length * (len(current) + 1))
        if current and (full or (len(current) >= MIN_BATCH and padding > MAX_PADDING)):
            batches.append(current)
            current, total = [], 0
        current.append(item)
        total += length
    if current:
        batches.append(current)
    return batches
