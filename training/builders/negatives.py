"""BM25 hard negatives: the product's own BM25 terms and weights, scored by one sparse matrix product.

The documents are weighted as :class:`representations.sparse.SparseEncoder` weights a chunk
(BM25 term frequency with the corpus's average length), times the IDF that Qdrant's IDF modifier
uses, ``ln((N - n + 0.5) / (n + 0.5) + 1)``; a query term weighs 1. A query's scores against the
whole corpus are then one row of ``queries @ documents.T``, as Qdrant's sparse search would give.

A hard negative is drawn at random, with a seed, from the ranks just below the top of the
non-positive candidates (:data:`SKIP` and :data:`DEPTH`): the very first ranks are the likeliest
to be relevant documents nobody judged.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np

from representations.sparse import SparseEncoder

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from scipy.sparse import csr_matrix

#: Candidates kept per query (the BM25 top-k, positives and excluded documents left out).
DEPTH = 30
#: Top candidates never drawn as negatives (when there are more than this many).
SKIP = 2
#: Queries scored per matrix product.
_QUERY_BATCH = 256


class Bm25Index:
    """BM25 over a fixed list of texts, with the product's tokeniser, stemmer and weights.

    Args:
        texts: the documents; results are their positions in this list.
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
        language: Snowball stemmer language.
    """

    def __init__(self, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75, language: str = "english"):
        from scipy.sparse import csr_matrix

        self.encoder = SparseEncoder(k1=k1, b=b, language=language)
        self.encoder.avg_length = self.encoder.estimate_avg_length(texts) if texts else 1.0
        vectors = [self.encoder.document(text) for text in texts]
        lengths = np.array([len(indices) for indices, _ in vectors], dtype=np.int64)
        hashed = np.array([i for indices, _ in vectors for i in indices], dtype=np.uint64)
        values = np.array([v for _, weights in vectors for v in weights], dtype=np.float64)
        self._terms, columns = np.unique(hashed, return_inverse=True)
        size = len(texts)
        frequency = np.bincount(columns, minlength=len(self._terms)).astype(np.float64)
        idf = np.log((size - frequency + 0.5) / (frequency + 0.5) + 1.0)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        matrix = csr_matrix((values * idf[columns], columns, indptr), shape=(size, len(self._terms)))
        self._documents_t = matrix.T.tocsc()
        self.size = size

    def _queries(self, texts: Sequence[str]) -> csr_matrix:
        from scipy.sparse import csr_matrix

        rows: list[int] = []
        columns: list[int] = []
        for row, text in enumerate(texts):
            hashed = np.array(self.encoder.query(text)[0], dtype=np.uint64)
            slots = np.searchsorted(self._terms, hashed)
            inside = slots < len(self._terms)
            slots, hashed = slots[inside], hashed[inside]
            known = slots[self._terms[slots] == hashed]  # terms no document has are left out
            rows.extend([row] * len(known))
            columns.extend(known.tolist())
        data = np.ones(len(rows), dtype=np.float64)
        return csr_matrix((data, (rows, columns)), shape=(len(texts), len(self._terms)))

    def scores(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """BM25 scores of some queries against every document (``len(texts) x size``)."""
        product = self._queries(texts) @ self._documents_t
        dense: NDArray[np.float64] = np.asarray(product.toarray(), dtype=np.float64)
        return dense

    def search(
        self, queries: Sequence[str], exclude: Sequence[Collection[int]], depth: int = DEPTH
    ) -> list[list[int]]:
        """The best-scoring documents of each query, the excluded ones left out.

        Args:
            queries: the query texts.
            exclude: per query, the documents it must not return (its positives, ...).
            depth: documents per query at most; only documents sharing a term with the query
                (score above zero) are returned.

        Returns:
            Per query, document positions, best first (ties by position).
        """
        ranked: list[list[int]] = []
        for start in range(0, len(queries), _QUERY_BATCH):
            block = self.scores(queries[start : start + _QUERY_BATCH])
            for row, scores in enumerate(block):
                banned = [i for i in exclude[start + row] if 0 <= i < self.size]
                scores[banned] = 0.0
                top = min(depth, self.size)
                best = np.argpartition(-scores, top - 1)[:top] if top < self.size else np.arange(self.size)
                best = best[scores[best] > 0]
                order = sorted(best.tolist(), key=lambda i: (-scores[i], i))
                ranked.append(order[:depth])
        return ranked


#: Word-set overlap (Jaccard) from which two texts count as copies of each other.
COPY_OVERLAP = 0.7


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def near_copy(first: str, second: str) -> bool:
    """Whether two texts are (nearly) the same; such a text is never a hard negative of the other.

    Two texts are near copies when one holds the other, or when their word sets overlap by
    :data:`COPY_OVERLAP` (Jaccard) or more.
    """
    a, b = " ".join(first.lower().split()), " ".join(second.lower().split())
    if a in b or b in a:
        return True
    words_a, words_b = _words(a), _words(b)
    union = len(words_a | words_b)
    return union > 0 and len(words_a & words_b) / union >= COPY_OVERLAP


def pick_negative(
    candidates: Sequence[int],
    rng: random.Random,
    skip: int = SKIP,
    reject: Callable[[int], bool] | None = None,
) -> int | None:
    """One hard negative among the ranked candidates, at random below the first ``skip`` ranks.

    Args:
        candidates: document positions, best first (positives already left out).
        rng: the record's seeded generator.
        skip: top ranks left out when there are more candidates than that.
        reject: a candidate that must not be taken (e.g. a near copy of the positive, see
            :func:`near_copy`); the next random one is tried.

    Returns:
        A position, or ``None`` when no candidate is left.
    """
    window = list(candidates[skip:]) if len(candidates) > skip else list(candidates)
    rng.shuffle(window)
    return next((c for c in window if reject is None or not reject(c)), None)
