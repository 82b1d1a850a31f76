"""What the builders share: seeded randomness, sampling, the negatives option and per-task counts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

from training.errors import TrainingDataError
from training.medi import MediRecord, Pair

#: How hard negatives are found: BM25 (top-k minus the positives) or not at all.
NegativeSource = Literal["bm25", "none"]
NEGATIVE_SOURCES: tuple[str, ...] = get_args(NegativeSource)

T = TypeVar("T")


def seeded(seed: int, *parts: object) -> random.Random:
    """A random generator that depends only on ``seed`` and ``parts`` (never on call order).

    Args:
        seed: the run's seed.
        parts: what the choice is about (task, query id, ...).

    Returns:
        The generator (string seeds hash with SHA-512, the same in every process).
    """
    return random.Random("\x1f".join(str(part) for part in (seed, *parts)))


def check_negatives(negatives: str) -> NegativeSource:
    """The negatives option, checked.

    Raises:
        TrainingDataError: an unknown value; the message lists the valid ones.
    """
    if negatives not in NEGATIVE_SOURCES:
        raise TrainingDataError(f"negatives={negatives!r} is not known; use one of {list(NEGATIVE_SOURCES)}")
    return negatives  # type: ignore[return-value]  # checked against the literal's values above


def check_limit(name: str, value: int | None) -> int | None:
    """A record limit, checked (``None``: no limit).

    Raises:
        TrainingDataError: the limit is below 1.
    """
    if value is not None and value < 1:
        raise TrainingDataError(f"{name}={value} must be at least 1 (or None for no limit)")
    return value


def sample(items: Sequence[T], limit: int | None, seed: int, *parts: object) -> list[T]:
    """At most ``limit`` of ``items``, a seeded random sample kept in the items' order.

    Args:
        items: the items.
        limit: how many to keep (``None``: all).
        seed: the seed.
        parts: what is sampled (see :func:`seeded`).

    Returns:
        The sample.
    """
    if limit is None or len(items) <= limit:
        return list(items)
    chosen = sorted(seeded(seed, "sample", *parts).sample(range(len(items)), limit))
    return [items[index] for index in chosen]


def pair(instruction: str | None, text: str) -> Pair:
    """A MEDI pair (``""`` for no instruction), the text stripped as :func:`training.medi.read_medi` reads it."""
    return Pair(instruction=(instruction or "").strip(), text=text.strip())


@dataclass(frozen=True)
class TaskCount:
    """Records of one task.

    Attributes:
        records: how many records.
        with_negatives: how many carry a hard negative.
        query_instruction: the first record's query instruction.
        document_instruction: the first record's positive (document) instruction.
    """

    records: int
    with_negatives: int
    query_instruction: str
    document_instruction: str


def count_tasks(records: Sequence[MediRecord]) -> dict[str, TaskCount]:
    """Records and hard negatives per task, in the order the tasks first appear."""
    counts: dict[str, list[int]] = {}
    first: dict[str, MediRecord] = {}
    for record in records:
        row = counts.setdefault(record.task, [0, 0])
        row[0] += 1
        row[1] += record.neg is not None
        first.setdefault(record.task, record)
    return {
        task: TaskCount(
            records=row[0],
            with_negatives=row[1],
            query_instruction=first[task].query.instruction,
            document_instruction=first[task].pos.instruction,
        )
        for task, row in counts.items()
    }
