"""What every embedder is: the :class:`Embedder` protocol, its counters, the text checks, and one wrapper base.

The backends (:mod:`embedder.backends`) implement :class:`Embedder`. Wrappers that change how an
inner embedder is called, such as the embedding cache (:class:`embedder.cache.CachedEmbedder`)
or the app's lock (``app.service.SerializedEmbedder``), subclass :class:`EmbedderWrapper`, which
forwards the whole interface to the inner embedder, so that each overrides only what it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from embedder.errors import InputError

Vectors = NDArray[np.float32]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class EncodeStats:
    """Counters an embedder keeps across calls.

    Attributes:
        texts: texts embedded so far.
        truncated: texts that were longer than the model's limit and got truncated.
        cache_hits: texts answered by the embedding cache (not encoded; not in ``texts``).
        tokens: tokens the model ran over, instruction and special tokens included.
        padded_tokens: tokens including the padding of each forward batch; the padding
            overhead is ``1 - tokens / padded_tokens``.
        instruction_tokens: the instruction's share of ``tokens``.
    """

    texts: int = 0
    truncated: int = 0
    cache_hits: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    instruction_tokens: int = 0

    @property
    def padding_overhead(self) -> float:
        """Share of the computed token positions that were padding (0.0 when nothing ran)."""
        return 1.0 - self.tokens / self.padded_tokens if self.padded_tokens else 0.0


@runtime_checkable
class Embedder(Protocol):
    """What the rest of instructor-search needs from an embedding model."""

    @property
    def model_id(self) -> str:
        """The model's name, recorded with every collection built with it."""
        ...

    @property
    def dimension(self) -> int:
        """Length of the vectors."""
        ...

    @property
    def max_seq_length(self) -> int:
        """The model's token limit (instruction and special tokens included)."""
        ...

    @property
    def normalize(self) -> bool:
        """Whether the vectors are L2-normalised."""
        ...

    @property
    def stats(self) -> EncodeStats:
        """Counters across calls."""
        ...

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Vectors:
        """Embed texts under one instruction (``None``: no instruction); returns ``(n, dimension)``."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text`` alone, special tokens excluded."""
        ...

    def instruction_tokens(self, instruction: str | None) -> int:
        """Tokens an instruction adds in front of every text (0 for ``None``)."""
        ...

    def token_budget(self, instruction: str | None) -> int:
        """Largest text length in tokens that fits the model together with the instruction."""
        ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list, after checking that they are a sequence of strings.

    Raises:
        InputError: a single string was passed, or an item is not a string.
    """
    if isinstance(texts, str):
        raise InputError("expected a list of texts, got a single string; wrap it in a list: [text]")
    items = list(texts)
    for index, text in enumerate(items):
        if not isinstance(text, str):
            raise InputError(
                f"text #{index} is {type(text).__name__} ({text!r:.60}); every text must be a str"
            )
    return items


class EmbedderWrapper:
    """An :class:`Embedder` that forwards everything to an inner embedder.

    Subclasses override what they change: the embedding cache overrides :meth:`embed`; a
    wrapper that runs every model call under a lock overrides :meth:`_call`, through which the
    four methods reach the inner embedder. Other attributes of the inner embedder (``runtime``,
    ``model``, ``batch_size`` ...) are read through as they are.

    Args:
        inner: the wrapped embedder.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a copy under construction): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def model_id(self) -> str:
        """See :attr:`Embedder.model_id`."""
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        """See :attr:`Embedder.dimension`."""
        return self.inner.dimension

    @property
    def max_seq_length(self) -> int:
        """See :attr:`Embedder.max_seq_length`."""
        return self.inner.max_seq_length

    @property
    def normalize(self) -> bool:
        """See :attr:`Embedder.normalize`."""
        return self.inner.normalize

    @property
    def stats(self) -> EncodeStats:
        """The inner embedder's counters (shared, not copied)."""
        return self.inner.stats

    def _call(self, method: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one method of the inner embedder (the hook for wrappers that guard every call)."""
        return method(*args, **kwargs)

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Vectors:
        """See :meth:`Embedder.embed`."""
        return self._call(
            self.inner.embed, texts, instruction, batch_size=batch_size, show_progress=show_progress
        )

    def count_tokens(self, text: str) -> int:
        """See :meth:`Embedder.count_tokens`."""
        return self._call(self.inner.count_tokens, text)

    def instruction_tokens(self, instruction: str | None) -> int:
        """See :meth:`Embedder.instruction_tokens`."""
        return self._call(self.inner.instruction_tokens, instruction)

    def token_budget(self, instruction: str | None) -> int:
        """See :meth:`Embedder.token_budget`."""
        return self._call(self.inner.token_budget, instruction)


def unwrap(embedder: Embedder) -> Embedder:
    """The embedder under any :class:`EmbedderWrapper` (the cache, the app's lock)."""
    while isinstance(embedder, EmbedderWrapper):
        embedder = embedder.inner
    return embedder


__all__ = ["Embedder", "EmbedderWrapper", "EncodeStats", "Vectors", "check_texts", "unwrap"]
