"""Semantic textual similarity (STS) evaluation: is the model wired right?

The MTEB way: embed both sentences of every pair, take the cosine similarity, and report the
Spearman rank correlation between those similarities and the human scores. With no instruction,
all-MiniLM-L6-v2 scores 0.8203 on the STS-benchmark test split (published MTEB result).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedder.base import Embedder
from embedder.errors import InputError

__all__ = ["StsPair", "load_sts_benchmark", "sts_spearman"]

# Columns of the STS-benchmark files: genre, file, year, id, score, sentence1, sentence2[, sources].
_SCORE, _FIRST, _SECOND = 4, 5, 6


@dataclass(frozen=True)
class StsPair:
    """One scored sentence pair.

    Attributes:
        first: the first sentence.
        second: the second sentence.
        score: the human similarity score (0 to 5 in STS-benchmark).
    """

    first: str
    second: str
    score: float


def load_sts_benchmark(path: str | Path) -> list[StsPair]:
    """Read an STS-benchmark file (``sts-test.csv``, ``sts-dev.csv`` or ``sts-train.csv``).

    The files are tab-separated without quoting (sentences contain ``"``), with the score in
    column 5 and the sentences in columns 6 and 7; some rows carry two extra source columns.

    Args:
        path: the file.

    Returns:
        The pairs in file order.

    Raises:
        InputError: the file is missing or a row is malformed (the message names the line).
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(
            f"STS file {str(file)!r} does not exist; pass the path of stsbenchmark/sts-test.csv "
            "(tab-separated: genre, file, year, id, score, sentence1, sentence2)"
        )
    pairs: list[StsPair] = []
    with file.open(encoding="utf-8", newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) <= _SECOND:
                raise InputError(
                    f"{file}:{line_number}: expected at least 7 tab-separated columns "
                    f"(genre, file, year, id, score, sentence1, sentence2), got {len(row)}"
                )
            try:
                score = float(row[_SCORE])
            except ValueError:
                raise InputError(
                    f"{file}:{line_number}: score {row[_SCORE]!r} in column 5 is not a number"
                ) from None
            pairs.append(StsPair(first=row[_FIRST], second=row[_SECOND], score=score))
    if not pairs:
        raise InputError(f"STS file {str(file)!r} has no pairs")
    return pairs


def sts_spearman(
    embedder: Embedder,
    pairs: Sequence[tuple[str, str]] | Sequence[StsPair],
    scores: Sequence[float] | None = None,
    instruction: str | None = None,
    *,
    batch_size: int | None = None,
) -> float:
    """Spearman correlation between cosine similarities and human scores.

    Each distinct sentence is embedded once, under ``instruction`` (``None``: no instruction,
    as MTEB evaluates plain sentence-transformers models).

    Args:
        embedder: the model to evaluate.
        pairs: ``(sentence1, sentence2)`` tuples, or :class:`StsPair` items.
        scores: the human scores, one per pair; taken from the pairs when they are
            :class:`StsPair` and ``scores`` is ``None``.
        instruction: the instruction for both sides, e.g.
            ``InstructionSet.symmetric("sts").query``.
        batch_size: texts per forward pass (``None``: the embedder's default).

    Returns:
        Spearman's rho.

    Raises:
        InputError: pairs and scores do not match, or there are fewer than two pairs.
    """
    from scipy.stats import spearmanr

    texts: list[tuple[str, str]] = []
    gold: list[float] = []
    for pair in pairs:
        if isinstance(pair, StsPair):
            texts.append((pair.first, pair.second))
            gold.append(pair.score)
        else:
            texts.append((pair[0], pair[1]))
    if scores is not None:
        gold = [float(score) for score in scores]
    if len(gold) != len(texts):
        raise InputError(f"{len(texts)} pairs but {len(gold)} scores; pass one score per pair")
    if len(texts) < 2:
        raise InputError("a correlation needs at least two pairs")

    unique = list(dict.fromkeys(sentence for pair in texts for sentence in pair))
    index = {sentence: row for row, sentence in enumerate(unique)}
    vectors = np.asarray(embedder.embed(unique, instruction, batch_size=batch_size), dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.where(norms == 0.0, 1.0, norms)
    first = vectors[[index[a] for a, _ in texts]]
    second = vectors[[index[b] for _, b in texts]]
    cosine = np.sum(first * second, axis=1)
    result = spearmanr(cosine, np.asarray(gold, dtype=np.float64))
    return float(result.statistic)
