"""Augmented chunk vectors: the chunk's embedding mixed with the mean embedding of extra text.

``normalize(chunk_weight * e(chunk) + extra_weight * normalize(mean(e(extra texts))))``, one
representation parameterised by its *source* of extra text:

* ``keywords``: key phrases extracted by YAKE and embedded under the keyword instruction
  (arXiv 2409.16497); the raw mean is kept as ``keywords_mean`` (never searched) so the weights
  can be changed without embedding again (:meth:`store.core.VectorStore.reweight_keywords`);
* ``questions``: questions written by a user-configured generator model, embedded under the
  query instruction.

The extra texts are stored in the payload's metadata under the representation's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

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

if TYPE_CHECKING:
    from numpy.typing import NDArray

KEYWORD_VECTOR = "keywords"
KEYWORD_MEAN_VECTOR = "keywords_mean"
QUESTION_VECTOR = "questions"


class KeywordRecord(RepresentationRecord):
    """How the keyword-augmented vectors were built."""

    vector: str = KEYWORD_VECTOR
    extractor: str = "yake"
    top_n: int
    max_ngram: int
    chunk_weight: float
    keyword_weight: float
    instruction: str | None = None


class QuestionRecord(RepresentationRecord):
    """How the question-augmented vectors were built."""

    vector: str = QUESTION_VECTOR
    generator: str
    count: int
    max_new_tokens: int
    chunk_weight: float
    question_weight: float
    instruction: str | None = None


# -- the arithmetic -----------------------------------------------------------------------------


def _normalize(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: NDArray[np.float32] = (vectors / norms).astype(np.float32)
    return out


def augmented(
    chunks: NDArray[np.float32], means: NDArray[np.float32], chunk_weight: float, extra_weight: float
) -> NDArray[np.float32]:
    """``normalize(chunk_weight * chunk + extra_weight * normalize(mean))`` row by row.

    The mean is normalised first (Qdrant stores cosine vectors normalised, so the stored
    ``keywords_mean`` gives the same result when the weights are changed later).
    """
    return _normalize(chunk_weight * chunks.astype(np.float32) + extra_weight * _normalize(means))


def _group_means(
    vectors: NDArray[np.float32], groups: Sequence[int], fallback: NDArray[np.float32]
) -> NDArray[np.float32]:
    """Mean vector of consecutive groups of rows; a group of size 0 takes its fallback row."""
    out = np.array(fallback, dtype=np.float32, copy=True)
    start = 0
    for row, size in enumerate(groups):
        if size:
            out[row] = vectors[start : start + size].mean(axis=0)
        start += size
    return out


# -- the sources of extra text ------------------------------------------------------------------


class KeywordExtractor:
    """Key phrases by YAKE (statistical, unsupervised; no generative model)."""

    def __init__(self, top_n: int = 8, max_ngram: int = 3) -> None:
        import yake

        self._yake = yake.KeywordExtractor(lan="en", n=max_ngram, top=top_n, dedupLim=0.9)
        self.top_n = top_n

    def extract(self, text: str) -> list[str]:
        """The text's key phrases, best first (may be empty for a very short text)."""
        phrases: list[str] = []
        seen: set[str] = set()
        for phrase, _score in self._yake.extract_keywords(text):
            key = phrase.lower()
            if key not in seen:
                seen.add(key)
                phrases.append(phrase)
        return phrases[: self.top_n]


class QuestionGenerator:
    """Questions a passage answers, from a user-configured sequence-to-sequence model.

    Args:
        model: hub name or local folder of the generator (e.g. a FLAN-T5 checkpoint).
        count: questions per passage.
        max_new_tokens: longest question.

    Raises:
        RepresentationError: the model cannot be loaded (missing folder, not in the local cache).
    """

    PROMPT = "Write a question that the following passage answers.\n\nPassage: {text}\n\nQuestion:"

    def __init__(self, model: str, count: int = 3, max_new_tokens: int = 48) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.model_name = model
        self.count = count
        self.max_new_tokens = max_new_tokens
        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(model)
            self._model: Any = AutoModelForSeq2SeqLM.from_pretrained(model)
        except (OSError, ValueError) as exc:
            raise RepresentationError(
                f"the question generator {model!r} could not be loaded ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). Fix: set "
                "INSTRUCTOR_SEARCH_INDEX__QUESTIONS__GENERATOR to a local folder with a "
                "sequence-to-sequence model (e.g. a FLAN-T5 checkpoint), or unset it to skip questions."
            ) from exc
        self._model.eval()

    @classmethod
    def from_record(cls, record: QuestionRecord) -> QuestionGenerator:
        """The generator a collection's question vectors are built with (loaded now)."""
        return cls(record.generator, record.count, record.max_new_tokens)

    def generate(self, texts: Sequence[str]) -> list[list[str]]:
        """``count`` distinct questions per text (beam search, so runs are repeatable)."""
        import torch

        prompts = [self.PROMPT.format(text=text) for text in texts]
        inputs = self._tokenizer(prompts, return_tensors="pt", padding=True, truncation=True, max_length=512)
        with torch.inference_mode():
            output = self._model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                num_beams=max(self.count, 2),
                num_return_sequences=self.count,
            )
        decoded = self._tokenizer.batch_decode(output, skip_special_tokens=True)
        out: list[list[str]] = []
        for i in range(len(texts)):
            group = [q.strip() for q in decoded[i * self.count : (i + 1) * self.count]]
            out.append(list(dict.fromkeys(q for q in group if q)))
        return out


A = TypeVar("A", bound=RepresentationRecord)
#: Extra texts of a batch of chunks: one list of texts per chunk.
Extract = Callable[[Sequence[str]], list[list[str]]]


class ExtraText(ABC, Generic[A]):
    """Where an augmented representation's extra text comes from.

    Attributes:
        name: the representation's name (also its payload key).
        record_type: its record type.
        vector: the searched augmented vector.
        mean_vector: the stored raw mean of the extra texts' embeddings (``None``: not kept).
        setting: how to build it, as an environment setting.
    """

    name: str
    record_type: type[A]
    vector: str
    mean_vector: str | None = None
    setting: str

    @abstractmethod
    def configure(self, context: RecordContext) -> A | None:
        """The record the settings build (``None``: not built)."""

    @abstractmethod
    def open(self, record: A, context: BuildContext) -> Extract:
        """The extractor of extra texts (loads its model)."""

    @abstractmethod
    def weights(self, record: A) -> tuple[float, float]:
        """``(chunk_weight, extra_weight)``."""

    @abstractmethod
    def instruction(self, record: A) -> str | None:
        """The instruction the extra texts are embedded under."""


class Keywords(ExtraText[KeywordRecord]):
    """Key phrases by YAKE, embedded under the keyword instruction."""

    name = "keywords"
    record_type = KeywordRecord
    vector = KEYWORD_VECTOR
    mean_vector = KEYWORD_MEAN_VECTOR
    setting = "INSTRUCTOR_SEARCH_INDEX__KEYWORDS__ENABLED=true"

    def configure(self, context: RecordContext) -> KeywordRecord | None:
        """From ``index.keywords`` (``None`` unless enabled)."""
        keywords = context.index.keywords
        if not keywords.enabled:
            return None
        return KeywordRecord(
            top_n=keywords.top_n,
            max_ngram=keywords.max_ngram,
            chunk_weight=keywords.chunk_weight,
            keyword_weight=keywords.keyword_weight,
            instruction=context.keyword_instruction,
        )

    def open(self, record: KeywordRecord, context: BuildContext) -> Extract:
        """YAKE with the recorded settings."""
        extractor = KeywordExtractor(record.top_n, record.max_ngram)
        return lambda texts: [extractor.extract(text) for text in texts]

    def weights(self, record: KeywordRecord) -> tuple[float, float]:
        """``(chunk_weight, keyword_weight)``."""
        return record.chunk_weight, record.keyword_weight

    def instruction(self, record: KeywordRecord) -> str | None:
        """The keyword instruction recorded."""
        return record.instruction


class Questions(ExtraText[QuestionRecord]):
    """Questions written by the configured generator, embedded under the query instruction."""

    name = "questions"
    record_type = QuestionRecord
    vector = QUESTION_VECTOR
    setting = "INSTRUCTOR_SEARCH_INDEX__QUESTIONS__GENERATOR=MODEL_FOLDER"

    def configure(self, context: RecordContext) -> QuestionRecord | None:
        """From ``index.questions`` (``None`` unless a generator is configured)."""
        questions = context.index.questions
        if not questions.generator:
            return None
        return QuestionRecord(
            generator=questions.generator,
            count=questions.count,
            max_new_tokens=questions.max_new_tokens,
            chunk_weight=questions.chunk_weight,
            question_weight=questions.question_weight,
            instruction=context.question_instruction,
        )

    def open(self, record: QuestionRecord, context: BuildContext) -> Extract:
        """The preloaded generator if the context has one, else the recorded one (loaded now)."""
        generator = context.preloaded.get(self.name)
        if not isinstance(generator, QuestionGenerator):
            generator = QuestionGenerator.from_record(record)
        return generator.generate

    def weights(self, record: QuestionRecord) -> tuple[float, float]:
        """``(chunk_weight, question_weight)``."""
        return record.chunk_weight, record.question_weight

    def instruction(self, record: QuestionRecord) -> str | None:
        """The question (query) instruction recorded."""
        return record.instruction


# -- the representation -------------------------------------------------------------------------


class _AugmentedBatches(Encoder, Generic[A]):
    def __init__(self, source: ExtraText[A], record: A, context: BuildContext) -> None:
        self.source = source
        self.record = record
        self.context = context
        self.extract = source.open(record, context)

    def build(self, texts: Sequence[str], dense: NDArray[np.float32]) -> Built:
        source = self.source
        extra = self.extract(texts)
        flat = [item for group in extra for item in group]
        embedded = self.context.embed(flat, source.instruction(self.record))
        means = _group_means(embedded, [len(group) for group in extra], dense)
        mixed = augmented(dense, means, *source.weights(self.record))
        vectors: list[dict[str, object]] = []
        for row in range(len(texts)):
            named: dict[str, object] = {source.vector: mixed[row].tolist()}
            if source.mean_vector is not None:
                named[source.mean_vector] = means[row].tolist()
            vectors.append(named)
        payloads: list[dict[str, Any]] = [{source.name: group} for group in extra]
        return Built(vectors=vectors, payloads=payloads, items=len(flat))


class AugmentedRepresentation(Representation[A]):
    """A chunk vector augmented with the mean embedding of extra text from ``source``.

    Args:
        source: where the extra text comes from (:class:`Keywords`, :class:`Questions`).
    """

    def __init__(self, source: ExtraText[A]) -> None:
        self.source = source
        self.name = source.name
        self.record_type = source.record_type
        self.vector = source.vector
        self.setting = source.setting

    def configure(self, context: RecordContext) -> A | None:
        """What the source's settings build."""
        return self.source.configure(context)

    def schema(self, record: A, dimension: int) -> VectorSchema:
        """The augmented vector (cosine) and, if kept, the raw mean (stored, not indexed)."""
        from qdrant_client import models

        vectors = {self.vector: models.VectorParams(size=dimension, distance=models.Distance.COSINE)}
        if self.source.mean_vector is not None:
            # The raw mean of the extra texts' embeddings, kept to re-weight without re-embedding;
            # never searched, so not indexed.
            vectors[self.source.mean_vector] = models.VectorParams(
                size=dimension, distance=models.Distance.COSINE, hnsw_config=models.HnswConfigDiff(m=0)
            )
        return VectorSchema(vectors=vectors)

    def encoder(self, record: A, context: BuildContext) -> Encoder:
        """Extract, embed, average, mix."""
        return _AugmentedBatches(self.source, record, context)

    def query(self, record: A, text: str, dense: list[float] | None) -> QueryVector:
        """The query's embedding against the augmented vector."""
        return QueryVector(kind="dense", using=self.vector, dense=dense)
