"""The ``bm25`` sparse vector: BM25 term-frequency weights of the chunk's stemmed terms.

Qdrant's IDF modifier supplies the IDF at query time, so a sparse dot product is a BM25 score.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from representations.base import (
    BuildContext,
    Built,
    Encoder,
    QueryVector,
    RecordContext,
    Representation,
    RepresentationRecord,
    VectorSchema,
)
from representations.errors import RepresentationError
from representations.stopwords import ENGLISH_STOP_WORDS, TOKEN_PATTERN

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

SPARSE_VECTOR = "bm25"


class SparseRecord(RepresentationRecord):
    """How the sparse BM25 vectors were built."""

    vector: str = SPARSE_VECTOR
    k1: float
    b: float
    avg_length: float | None = None
    language: str = "english"
    tokenizer: str = "scikit-learn CountVectorizer token pattern, lower-cased, accents stripped"
    stop_words: str = "scikit-learn ENGLISH_STOP_WORDS"
    stemmer: str = "PyStemmer (Snowball)"
    hashing: str = "mmh3 32-bit unsigned"
    idf: str = "Qdrant IDF modifier"


class SparseEncoder:
    """BM25-style sparse vectors: tokenise, drop stop words, stem, hash, weight.

    A document term gets the BM25 term-frequency factor
    ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_length))``; a query term gets 1. With
    Qdrant's IDF modifier on the sparse vector, the dot product is then the BM25 score.

    Args:
        k1: term-frequency saturation.
        b: length normalisation.
        avg_length: average document length in terms (``None`` until estimated).
        language: Snowball stemmer language.
    """

    def __init__(
        self, k1: float = 1.2, b: float = 0.75, avg_length: float | None = None, language: str = "english"
    ):
        import Stemmer

        try:
            self._stemmer = Stemmer.Stemmer(language)
        except KeyError as exc:
            raise RepresentationError(
                f"no Snowball stemmer for language {language!r}; use one of {sorted(Stemmer.algorithms())}"
            ) from exc
        self._tokenize: Callable[[str], list[str]] = TOKEN_PATTERN.findall  # CountVectorizer's tokenizer
        self._stop_words = ENGLISH_STOP_WORDS
        self.k1 = k1
        self.b = b
        self.avg_length = avg_length

    @classmethod
    def from_record(cls, record: SparseRecord) -> SparseEncoder:
        """The encoder a collection's sparse vectors were built with."""
        return cls(k1=record.k1, b=record.b, avg_length=record.avg_length, language=record.language)

    def terms(self, text: str) -> list[str]:
        """The text's stemmed terms, stop words left out, in order (with repeats)."""
        folded = unicodedata.normalize("NFKD", text.lower())
        folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
        words = [word for word in self._tokenize(folded) if word not in self._stop_words]
        return list(self._stemmer.stemWords(words))

    @staticmethod
    def term_index(term: str) -> int:
        """The sparse index of a term: its unsigned 32-bit MurmurHash3."""
        import mmh3

        return int(mmh3.hash(term, signed=False))

    def _vector(self, weights: dict[str, float]) -> tuple[list[int], list[float]]:
        merged: dict[int, float] = {}
        for term, weight in weights.items():  # hash collisions add up
            index = self.term_index(term)
            merged[index] = merged.get(index, 0.0) + weight
        indices = sorted(merged)
        return indices, [merged[i] for i in indices]

    def document(self, text: str) -> tuple[list[int], list[float]]:
        """BM25 term-frequency weights of a document (a chunk).

        Returns:
            ``(indices, values)``; empty for a text without terms.
        """
        terms = self.terms(text)
        if not terms:
            return [], []
        counts = Counter(terms)
        avg = self.avg_length or float(len(terms))
        norm = self.k1 * (1.0 - self.b + self.b * len(terms) / avg)
        return self._vector({term: tf * (self.k1 + 1.0) / (tf + norm) for term, tf in counts.items()})

    def query(self, text: str) -> tuple[list[int], list[float]]:
        """Query weights: 1 per distinct term (the IDF comes from Qdrant)."""
        return self._vector(dict.fromkeys(self.terms(text), 1.0))

    def estimate_avg_length(self, texts: Sequence[str]) -> float:
        """Average length in terms of some texts (at least 1)."""
        lengths = [len(self.terms(text)) for text in texts]
        return max(1.0, sum(lengths) / max(1, len(lengths)))


@functools.lru_cache(maxsize=64)
def _query_encoder(k1: float, b: float, avg_length: float | None, language: str) -> SparseEncoder:
    """One encoder per recorded configuration, shared by every query (loading takes a while)."""
    return SparseEncoder(k1=k1, b=b, avg_length=avg_length, language=language)


class _SparseBatches(Encoder):
    def __init__(self, encoder: SparseEncoder) -> None:
        self.encoder = encoder

    def build(self, texts: Sequence[str], dense: NDArray[np.float32]) -> Built:
        from qdrant_client import models

        vectors: list[dict[str, object]] = []
        nonzero = 0
        for text in texts:
            indices, values = self.encoder.document(text)
            nonzero += len(indices)
            vectors.append({SPARSE_VECTOR: models.SparseVector(indices=indices, values=values)})
        return Built(vectors=vectors, payloads=[], items=nonzero)


class SparseRepresentation(Representation[SparseRecord]):
    """BM25 over the chunk's stemmed terms, as a Qdrant sparse vector with the IDF modifier."""

    name = "sparse"
    record_type = SparseRecord
    vector = SPARSE_VECTOR
    kind = "sparse"
    cosine = False
    needs_dense_query = False
    setting = "INSTRUCTOR_SEARCH_INDEX__SPARSE__ENABLED=true"

    def configure(self, context: RecordContext) -> SparseRecord | None:
        """From ``index.sparse`` (``None`` unless enabled)."""
        sparse = context.index.sparse
        if not sparse.enabled:
            return None
        return SparseRecord(k1=sparse.k1, b=sparse.b, avg_length=sparse.avg_length, language=sparse.language)

    def schema(self, record: SparseRecord, dimension: int) -> VectorSchema:
        """The ``bm25`` sparse vector with Qdrant's IDF modifier."""
        from qdrant_client import models

        return VectorSchema(sparse={SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)})

    def encoder(self, record: SparseRecord, context: BuildContext) -> Encoder:
        """The recorded BM25 encoder."""
        return _SparseBatches(SparseEncoder.from_record(record))

    def query(self, record: SparseRecord, text: str, dense: list[float] | None) -> QueryVector:
        """1 per distinct query term (empty: the query matches nothing lexically)."""
        encoder = _query_encoder(record.k1, record.b, record.avg_length, record.language)
        return QueryVector(kind="sparse", using=SPARSE_VECTOR, sparse=encoder.query(text))
