"""Training records from STS-benchmark pairs: a symmetric task under the STS instruction on both sides.

A pair scored ``min_score`` or more (of 5) is a positive. A hard negative is given only where the
data itself says so: a sentence that annotators scored ``max_negative_score`` or less against the
same anchor sentence in another pair (and never one scored as similar to either side in another
pair). Most STS-benchmark sentences occur in one pair only, so
most records have no negative (the in-batch negatives remain).
"""

from __future__ import annotations

from pathlib import Path

from embedder.instructions import InstructionSet
from evaluation.sts import load_sts_benchmark
from training.builders.common import check_limit, pair, sample, seeded
from training.errors import TrainingDataError
from training.medi import MediRecord

#: The task name of STS-benchmark records.
STS_TASK = "stsb"


def sts_records(
    path: str | Path,
    *,
    min_score: float = 4.0,
    max_negative_score: float = 2.0,
    both_directions: bool = False,
    max_records: int | None = None,
    seed: int = 42,
    task: str = STS_TASK,
) -> list[MediRecord]:
    """MEDI records from an STS-benchmark file (``sts-train.csv``).

    Args:
        path: the file (tab-separated: genre, file, year, id, score, sentence1, sentence2).
        min_score: the lowest score of a positive pair.
        max_negative_score: the highest score of a pair whose second sentence may serve as the
            anchor's hard negative.
        both_directions: also write each positive with its sentences swapped.
        max_records: keep a seeded random sample of this many records (``None``: all).
        seed: the seed of the sample and of the choice among several negatives.
        task: the task name.

    Returns:
        The records, in file order.

    Raises:
        InputError: the file is missing or malformed.
        TrainingDataError: an option is invalid or no pair scores ``min_score``.
    """
    check_limit("max_records", max_records)
    if max_negative_score >= min_score:
        raise TrainingDataError(
            f"max_negative_score={max_negative_score} must be below min_score={min_score}: "
            "a negative must be scored lower than every positive"
        )
    pairs = [(p.first.strip(), p.second.strip(), p.score) for p in load_sts_benchmark(path)]
    low: dict[str, set[str]] = {}
    high: dict[str, set[str]] = {}
    for first, second, score in pairs:
        scored = low if score <= max_negative_score else high if score >= min_score else None
        if scored is not None and first and second:
            scored.setdefault(first, set()).add(second)
            scored.setdefault(second, set()).add(first)
    positives: list[tuple[str, str]] = []
    for first, second, score in pairs:
        if score < min_score or not first or not second or first == second:
            continue
        positives.append((first, second))
        if both_directions:
            positives.append((second, first))
    positives = list(dict.fromkeys(positives))
    if not positives:
        raise TrainingDataError(f"{path}: no pair scores {min_score} or more; lower min_score")
    instruction = InstructionSet.symmetric("sts").query
    records: list[MediRecord] = []
    for anchor, positive in sample(positives, max_records, seed, task):
        # never a sentence scored as similar to either side elsewhere in the file
        similar = high.get(anchor, set()) | high.get(positive, set()) | {anchor, positive}
        candidates = sorted(low.get(anchor, set()) - similar)
        negative = seeded(seed, "negative", anchor, positive).choice(candidates) if candidates else None
        records.append(
            MediRecord(
                query=pair(instruction, anchor),
                pos=pair(instruction, positive),
                neg=pair(instruction, negative) if negative is not None else None,
                task=task,
            )
        )
    return records
