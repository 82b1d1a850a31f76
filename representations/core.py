"""Extra representations of a chunk, built during ingestion next to its dense vector.

Every chunk point always has the dense chunk vector (Qdrant's unnamed default vector, which
``langchain_qdrant`` reads). A collection may also have, as named vectors of the same point:

* ``bm25`` (sparse): BM25 term-frequency weights of the chunk's stemmed terms; Qdrant's IDF
  modifier supplies the IDF at query time, so a sparse dot product is a BM25 score.
* ``sentences`` (multivector, MaxSim): one embedding per sentence of the chunk.
* ``keywords``: ``normalize(w0 * e(chunk) + w1 * normalize(mean(e(key phrases))))``, key phrases extracted by
  YAKE and embedded under the keyword instruction (arXiv 2409.16497); ``keywords_mean`` keeps the
  raw mean so the weights can be changed without embedding again.
* ``questions``: the same with questions written by a user-configured generator model.

Which of them a collection has is part of its :class:`RepresentationsRecord`.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from representations.errors import RepresentationError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from config import IndexSettings
    from embedder import Embedder

logger = logging.getLogger(__name__)

SPARSE_VECTOR = "bm25"
SENTENCE_VECTOR = "sentences"
KEYWORD_VECTOR = "keywords"
KEYWORD_MEAN_VECTOR = "keywords_mean"
QUESTION_VECTOR = "questions"


# -- records ------------------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class SparseRecord(_Record):
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


class SentenceRecord(_Record):
    """How the sentence multivectors were built."""

    vector: str = SENTENCE_VECTOR
    splitter: str = "pysbd"
    max_sentences: int
    comparator: str = "max_sim"


class KeywordRecord(_Record):
    """How the keyword-augmented vectors were built."""

    vector: str = KEYWORD_VECTOR
    extractor: str = "yake"
    top_n: int
    max_ngram: int
    chunk_weight: float
    keyword_weight: float
    instruction: str | None = None


class QuestionRecord(_Record):
    """How the question-augmented vectors were built."""

    vector: str = QUESTION_VECTOR
    generator: str
    count: int
    max_new_tokens: int
    chunk_weight: float
    question_weight: float
    instruction: str | None = None


class RepresentationsRecord(_Record):
    """Which representations a collection has besides the dense chunk vector (``None``: absent)."""

    sparse: SparseRecord | None = None
    sentences: SentenceRecord | None = None
    keywords: KeywordRecord | None = None
    questions: QuestionRecord | None = None

    def available(self) -> list[str]:
        """Names of the representations present, ``dense`` first."""
        names = ["dense"]
        names += [name for name in ("sparse", "sentences", "keywords", "questions") if getattr(self, name)]
        return names


def representations_record(
    index: IndexSettings,
    *,
    keyword_instruction: str | None,
    question_instruction: str | None,
) -> RepresentationsRecord:
    """The record of the representations these settings build.

    Args:
        index: the ``index`` settings section.
        keyword_instruction: the instruction key phrases are embedded under.
        question_instruction: the instruction generated questions are embedded under.

    Returns:
        The record; questions are absent when no generator is configured.
    """
    sparse = index.sparse
    sentences = index.sentences
    keywords = index.keywords
    questions = index.questions
    return RepresentationsRecord(
        sparse=(
            SparseRecord(k1=sparse.k1, b=sparse.b, avg_length=sparse.avg_length, language=sparse.language)
            if sparse.enabled
            else None
        ),
        sentences=SentenceRecord(max_sentences=sentences.max_sentences) if sentences.enabled else None,
        keywords=(
            KeywordRecord(
                top_n=keywords.top_n,
                max_ngram=keywords.max_ngram,
                chunk_weight=keywords.chunk_weight,
                keyword_weight=keywords.keyword_weight,
                instruction=keyword_instruction,
            )
            if keywords.enabled
            else None
        ),
        questions=(
            QuestionRecord(
                generator=questions.generator,
                count=questions.count,
                max_new_tokens=questions.max_new_tokens,
                chunk_weight=questions.chunk_weight,
                question_weight=questions.question_weight,
                instruction=question_instruction,
            )
            if questions.generator
            else None
        ),
    )


# -- sparse -------------------------------------------------------------------------------------


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
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

        try:
            self._stemmer = Stemmer.Stemmer(language)
        except KeyError as exc:
            raise RepresentationError(
                f"no Snowball stemmer for language {language!r}; use one of {sorted(Stemmer.algorithms())}"
            ) from exc
        self._tokenize: Callable[[str], list[str]] = CountVectorizer().build_tokenizer()
        self._stop_words = frozenset(ENGLISH_STOP_WORDS)
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


def with_sparse_avg_length(
    representations: RepresentationsRecord, texts: Sequence[str]
) -> RepresentationsRecord:
    """The record with a BM25 average length estimated from ``texts`` if its sparse part has none.

    Args:
        representations: a collection's representations.
        texts: sample documents (e.g. the first batch of an ingest).

    Returns:
        ``representations`` itself when there is nothing to estimate, else an updated copy.
    """
    sparse = representations.sparse
    if sparse is None or sparse.avg_length is not None:
        return representations
    estimate = round(SparseEncoder.from_record(sparse).estimate_avg_length(texts), 2)
    return representations.model_copy(update={"sparse": sparse.model_copy(update={"avg_length": estimate})})


# -- sentences ----------------------------------------------------------------------------------


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


# -- keywords -----------------------------------------------------------------------------------


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


# -- questions ----------------------------------------------------------------------------------


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


# -- building -----------------------------------------------------------------------------------


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


@dataclass
class BuildStats:
    """Cost of the extra representations during one ingest run.

    Attributes:
        seconds: wall time spent per representation (extraction and embedding).
        items: what was produced per representation (sparse non-zeros, sentences, key phrases,
            questions).
    """

    seconds: dict[str, float] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, seconds: float, items: int) -> None:
        """Count the cost of one batch of a representation."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.items[name] = self.items.get(name, 0) + items

    def to_json(self) -> dict[str, Any]:
        """``{"seconds": {...}, "items": {...}}``."""
        return {"seconds": {k: round(v, 2) for k, v in self.seconds.items()}, "items": dict(self.items)}


class RepresentationBuilder:
    """Builds a batch's extra named vectors, as a collection's record says.

    Args:
        record: the collection's representations.
        embedder: the embedder (the same one as for the dense vectors).
        document_instruction: instruction of chunks (and their sentences).
        batch_size: texts per forward pass.
        generator: an already loaded question generator (``None``: loaded on first use).
    """

    def __init__(
        self,
        record: RepresentationsRecord,
        embedder: Embedder,
        document_instruction: str | None,
        *,
        batch_size: int = 32,
        generator: QuestionGenerator | None = None,
    ) -> None:
        self.record = record
        self.embedder = embedder
        self.document_instruction = document_instruction
        self.batch_size = batch_size
        self.stats = BuildStats()
        if generator is not None:
            self.generator = generator

    @cached_property
    def sparse(self) -> SparseEncoder | None:
        """The sparse encoder (``None`` when the collection has no sparse vectors)."""
        return SparseEncoder.from_record(self.record.sparse) if self.record.sparse else None

    @cached_property
    def splitter(self) -> SentenceSplitter | None:
        """The sentence splitter."""
        rec = self.record.sentences
        return SentenceSplitter(rec.max_sentences) if rec else None

    @cached_property
    def keywords(self) -> KeywordExtractor | None:
        """The key-phrase extractor."""
        rec = self.record.keywords
        return KeywordExtractor(rec.top_n, rec.max_ngram) if rec else None

    @cached_property
    def generator(self) -> QuestionGenerator | None:
        """The question generator (loaded on first use)."""
        rec = self.record.questions
        return QuestionGenerator.from_record(rec) if rec else None

    def extra_keys(self) -> bool:
        """Whether points get named vectors (otherwise the dense vector alone, unnamed)."""
        return len(self.record.available()) > 1

    def build(
        self, texts: Sequence[str], dense: NDArray[np.float32]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The extra named vectors and payload fields of a batch of chunks.

        Args:
            texts: the chunks' texts.
            dense: their dense vectors, ``(len(texts), dimension)``.

        Returns:
            Per chunk: a ``{vector name: vector}`` dict (to merge with the dense vector under
            ``""``) and a dict of extra payload metadata (e.g. ``keywords``).
        """
        from qdrant_client import models

        vectors: list[dict[str, Any]] = [{} for _ in texts]
        payloads: list[dict[str, Any]] = [{} for _ in texts]
        if self.sparse is not None:
            started = time.perf_counter()
            nonzero = 0
            for row, text in enumerate(texts):
                indices, values = self.sparse.document(text)
                nonzero += len(indices)
                vectors[row][SPARSE_VECTOR] = models.SparseVector(indices=indices, values=values)
            self.stats.add("sparse", time.perf_counter() - started, nonzero)
        if self.splitter is not None:
            started = time.perf_counter()
            split = [self.splitter.split(text) for text in texts]
            flat = [s for sentences in split for s in sentences]
            embedded = self._embed(flat, self.document_instruction)
            start = 0
            for row, sentences in enumerate(split):
                vectors[row][SENTENCE_VECTOR] = embedded[start : start + len(sentences)].tolist()
                start += len(sentences)
            self.stats.add("sentences", time.perf_counter() - started, len(flat))
        if self.keywords is not None and self.record.keywords is not None:
            rec = self.record.keywords
            started = time.perf_counter()
            phrases = [self.keywords.extract(text) for text in texts]
            means = self._group_embed(phrases, rec.instruction, dense)
            mixed = augmented(dense, means, rec.chunk_weight, rec.keyword_weight)
            for row in range(len(texts)):
                vectors[row][KEYWORD_VECTOR] = mixed[row].tolist()
                vectors[row][KEYWORD_MEAN_VECTOR] = means[row].tolist()
                payloads[row]["keywords"] = phrases[row]
            self.stats.add("keywords", time.perf_counter() - started, sum(len(p) for p in phrases))
        if self.record.questions is not None and self.generator is not None:
            qrec = self.record.questions
            started = time.perf_counter()
            questions = self.generator.generate(texts)
            means = self._group_embed(questions, qrec.instruction, dense)
            mixed = augmented(dense, means, qrec.chunk_weight, qrec.question_weight)
            for row in range(len(texts)):
                vectors[row][QUESTION_VECTOR] = mixed[row].tolist()
                payloads[row]["questions"] = questions[row]
            self.stats.add("questions", time.perf_counter() - started, sum(len(q) for q in questions))
        return vectors, payloads

    def _embed(self, texts: Sequence[str], instruction: str | None) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.asarray(self.embedder.embed(list(texts), instruction, batch_size=self.batch_size))

    def _group_embed(
        self, groups: Sequence[Sequence[str]], instruction: str | None, fallback: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        flat = [item for group in groups for item in group]
        return _group_means(self._embed(flat, instruction), [len(g) for g in groups], fallback)
