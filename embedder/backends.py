"""The embedding backends (:class:`~embedder.base.Embedder`), chosen by a ``Literal`` setting in :mod:`embedder.factory`.

* ``sentence-transformers``: the real model (bundled all-MiniLM-L6-v2, any sentence-transformers
  folder, or an INSTRUCTOR checkpoint), with instructions passed as prompts and their tokens left
  out of the mean pooling.
* ``fake``: a deterministic feature-hashing embedder. It is lexical, not semantic, but it is a
  complete backend (instruction-dependent, token counting, truncation), which makes the whole
  pipeline testable in milliseconds.

Imports of torch and sentence-transformers are lazy: importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from embedder.base import EncodeStats, Vectors, check_texts
from embedder.errors import InputError
from embedder.instructions import prompt_text
from embedder.loading import embedding_dimension
from embedder.tokens import TokenAccounting

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


logger = logging.getLogger(__name__)


class SentenceTransformerEmbedder(TokenAccounting):
    """The real model through sentence-transformers.

    Args:
        model: a loaded model whose pooling excludes prompt tokens.
        model_id: the name recorded in collection metadata.
        batch_size: default batch size.
        normalize: L2-normalise outputs.
        runtime: the inference runtime the model's transformer runs on (see :mod:`embedder.runtime`).
    """

    def __init__(
        self,
        model: SentenceTransformer,
        model_id: str,
        *,
        batch_size: int = 32,
        normalize: bool = True,
        runtime: str = "torch",
    ):
        self.model = model
        self.model_id = model_id
        self.runtime = runtime
        self.batch_size = batch_size
        self.normalize = normalize
        dimension = embedding_dimension(model)
        if not dimension:
            raise InputError(f"model {model_id!r} does not report an embedding dimension")
        self.dimension = int(dimension)
        self.max_seq_length = int(model.max_seq_length or 512)
        self._tokenizer: Any = model.tokenizer
        super().__init__()

    def _count_uncached(self, text: str) -> int:
        return len(
            self._tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        )

    def _special_uncached(self) -> int:
        return len(self._tokenizer("", add_special_tokens=True)["input_ids"])

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Vectors:
        """Embed texts with the instruction passed as the sentence-transformers prompt.

        Texts longer than the model's limit are truncated; how many is logged and counted in
        :attr:`stats`.
        """
        items = check_texts(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        truncated = self._count_truncated(items, instruction)
        vectors = self.model.encode(
            items,
            prompt=prompt_text(instruction),
            batch_size=batch_size or self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
        )
        self._record(items, instruction, truncated, batch_size or self.batch_size)
        return np.asarray(vectors, dtype=np.float32)


_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Deterministic feature-hashing embedder (lexical, instruction-aware, dependency-free).

    Each lower-cased word token adds a signed unit to one of ``dimension`` buckets (by a stable
    hash); the instruction adds a small fixed offset, so different instructions give different
    vectors. Texts are truncated at ``max_seq_length`` words, like a real model.

    Args:
        dimension: vector size.
        max_seq_length: token limit (words).
        normalize: L2-normalise outputs.
    """

    model_id = "fake-hashing-embedder"
    runtime = "fake"

    def __init__(self, dimension: int = 64, max_seq_length: int = 128, normalize: bool = True):
        self.dimension = dimension
        self.max_seq_length = max_seq_length
        self.normalize = normalize
        self.stats = EncodeStats()

    @staticmethod
    def _tokens(text: str) -> list[str]:
        return [token.lower() for token in _WORD.findall(text)]

    def count_tokens(self, text: str) -> int:
        """Word tokens of ``text``."""
        return len(self._tokens(text))

    def instruction_tokens(self, instruction: str | None) -> int:
        """Word tokens of the instruction."""
        prompt = prompt_text(instruction)
        return 0 if prompt is None else self.count_tokens(prompt)

    def token_budget(self, instruction: str | None) -> int:
        """Words that fit together with the instruction."""
        return self.max_seq_length - self.instruction_tokens(instruction)

    def _bucket(self, token: str) -> tuple[int, float]:
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dimension, 1.0 if (value >> 63) else -1.0

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Vectors:
        """Hash each text's words into a vector; the instruction shifts it slightly."""
        items = check_texts(texts)
        budget = self.token_budget(instruction)
        out = np.zeros((len(items), self.dimension), dtype=np.float32)
        offset = np.zeros(self.dimension, dtype=np.float32)
        for token in self._tokens(prompt_text(instruction) or ""):
            bucket, sign = self._bucket("instruction:" + token)
            offset[bucket] += 0.05 * sign
        truncated = 0
        for row, text in enumerate(items):
            tokens = self._tokens(text)
            if len(tokens) > budget:
                truncated += 1
                tokens = tokens[:budget]
            for token in tokens:
                bucket, sign = self._bucket(token)
                out[row, bucket] += sign
            out[row] += offset
            if not tokens:
                out[row, 0] += 1.0  # the empty text still gets a valid, non-zero vector
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.where(norms == 0, 1.0, norms)
        self.stats.texts += len(items)
        self.stats.truncated += truncated
        instruction_tokens = self.instruction_tokens(instruction)
        used = sum(min(budget, self.count_tokens(text)) + instruction_tokens for text in items)
        self.stats.tokens += used
        self.stats.padded_tokens += used  # no batches, no padding
        self.stats.instruction_tokens += instruction_tokens * len(items)
        if truncated:
            logger.warning(
                "%d of %d texts exceed %d tokens and were truncated", truncated, len(items), budget
            )
        return out
