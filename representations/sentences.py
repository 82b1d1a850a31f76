"""The ``sentences`` multivector: one embedding per sentence of the chunk, scored by MaxSim."""

from __future__ import annotations

from collections.abc import Sequence
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

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

SENTENCE_VECTOR = "sentences"


class SentenceRecord(RepresentationRecord):
    """How the sentence multivectors were built."""

    vector: str = SENTENCE_VECTOR
    splitter: str = "pysbd"
    max_sentences: int
    comparator: str = "max_sim"


class SentenceSplitter:
    """Sentence boundaries from pysbd (rule-based, pure Python; no data downloads)."""

    def __init__(self, max_sentences: int = 24) -> None:
        import pysbd

        self._segmenter = pysbd.Segmenter(language="en", clean=False)
        self.max_sentences = max_sentences

    def split(self, text: str) -> list[str]:
        """The text's sentences (at most ``max_sentences``; the whole text if none are found)."""
        sentences = [s.strip() for s in self._segmenter.segment(" ".join(text.split()))]
        sentences = [s for s in sentences if any(ch.isalnum() for ch in s)]
        return sentences[: self.max_sentences] or [text.strip()]


class _SentenceBatches(Encoder):
    def __init__(self, splitter: SentenceSplitter, context: BuildContext) -> None:
        self.splitter = splitter
        self.context = context

    def build(self, texts: Sequence[str], dense: NDArray[np.float32]) -> Built:
        split = [self.splitter.split(text) for text in texts]
        flat = [s for sentences in split for s in sentences]
        embedded = self.context.embed(flat, self.context.document_instruction)
        vectors: list[dict[str, object]] = []
        start = 0
        for sentences in split:
            vectors.append({SENTENCE_VECTOR: embedded[start : start + len(sentences)].tolist()})
            start += len(sentences)
        return Built(vectors=vectors, payloads=[], items=len(flat))


class SentenceRepresentation(Representation[SentenceRecord]):
    """The chunk's sentences embedded under the document instruction; a query scores its best sentence."""

    name = "sentences"
    record_type = SentenceRecord
    vector = SENTENCE_VECTOR
    kind = "multi"
    setting = "INSTRUCTOR_SEARCH_INDEX__SENTENCES__ENABLED=true"

    def configure(self, context: RecordContext) -> SentenceRecord | None:
        """From ``index.sentences`` (``None`` unless enabled)."""
        sentences = context.index.sentences
        return SentenceRecord(max_sentences=sentences.max_sentences) if sentences.enabled else None

    def schema(self, record: SentenceRecord, dimension: int) -> VectorSchema:
        """A cosine multivector compared by MaxSim."""
        from qdrant_client import models

        params = models.VectorParams(
            size=dimension,
            distance=models.Distance.COSINE,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
        )
        return VectorSchema(vectors={SENTENCE_VECTOR: params})

    def encoder(self, record: SentenceRecord, context: BuildContext) -> Encoder:
        """Split with pysbd, embed every sentence."""
        return _SentenceBatches(SentenceSplitter(record.max_sentences), context)

    def query(self, record: SentenceRecord, text: str, dense: list[float] | None) -> QueryVector:
        """The query's embedding as a one-vector multivector query (MaxSim)."""
        return QueryVector(kind="multi", using=SENTENCE_VECTOR, dense=dense)
