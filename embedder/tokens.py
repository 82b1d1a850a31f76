"""Token bookkeeping shared by the tokenizer-backed embedders (sentence-transformers and torch-free ONNX).

Both backends count tokens, instruction tokens and token budgets the same way, warn about and
count the texts they truncate, and replay the length-sorted, padded forward batches on token
counts for :class:`~embedder.base.EncodeStats`; this base class holds that once, so the two
report identical numbers for the same texts. A subclass supplies the two tokenizer calls.
"""

from __future__ import annotations

import functools
import logging

from embedder.base import EncodeStats
from embedder.instructions import prompt_text

#: Texts whose token count each embedder remembers (chunk pieces, queries).
COUNT_CACHE_SIZE = 65536


class TokenAccounting:
    """Token counts, budgets and stats of an embedder with a real tokenizer.

    Subclasses set ``model_id`` and ``max_seq_length`` and implement :meth:`_count_uncached`
    (tokens of a text without special tokens) and :meth:`_special_uncached` (special tokens a
    single text gets).
    """

    model_id: str
    max_seq_length: int

    def __init__(self) -> None:
        self.stats = EncodeStats()
        self._instruction_tokens: dict[str, int] = {}
        self._special: int | None = None
        self._counted = functools.lru_cache(maxsize=COUNT_CACHE_SIZE)(self._count_uncached)

    def _count_uncached(self, text: str) -> int:
        raise NotImplementedError

    def _special_uncached(self) -> int:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` without special tokens (memoised: re-chunking a file counts its pieces again)."""
        return self._counted(text)

    def _special_overhead(self) -> int:
        if self._special is None:
            self._special = self._special_uncached()
        return self._special

    def instruction_tokens(self, instruction: str | None) -> int:
        """Tokens the instruction prompt adds (prompt tokens; special tokens excluded)."""
        prompt = prompt_text(instruction)
        if prompt is None:
            return 0
        if prompt not in self._instruction_tokens:
            self._instruction_tokens[prompt] = self.count_tokens(prompt)
        return self._instruction_tokens[prompt]

    def token_budget(self, instruction: str | None) -> int:
        """Text tokens that fit the model together with the instruction and special tokens."""
        return self.max_seq_length - self._special_overhead() - self.instruction_tokens(instruction)

    def _count_truncated(self, items: list[str], instruction: str | None) -> int:
        """Texts longer than the budget under ``instruction`` (logged as a warning when any)."""
        budget = self.token_budget(instruction)
        truncated = sum(1 for text in items if len(text) > budget and self.count_tokens(text) > budget)
        if truncated:  # logged under the backend's own module
            logging.getLogger(type(self).__module__).warning(
                "%d of %d texts exceed the %d-token budget of %s (instruction included) and were truncated",
                truncated,
                len(items),
                budget,
                self.model_id,
            )
        return truncated

    def _count_padding(self, items: list[str], instruction: str | None, batch_size: int) -> None:
        """Add the real and the padded token counts of this call's forward batches to :attr:`stats`.

        Texts are sorted by length (longest first) and each batch is padded to its longest
        member, as sentence-transformers does; this replays that on token counts.
        """
        overhead = self._special_overhead() + self.instruction_tokens(instruction)
        lengths = [min(self.max_seq_length, overhead + self.count_tokens(text)) for text in items]
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        for start in range(0, len(order), batch_size):
            batch = [lengths[i] for i in order[start : start + batch_size]]
            self.stats.tokens += sum(batch)
            self.stats.padded_tokens += max(batch) * len(batch)
        self.stats.instruction_tokens += self.instruction_tokens(instruction) * len(items)

    def _record(self, items: list[str], instruction: str | None, truncated: int, batch_size: int) -> None:
        """Count one finished call in :attr:`stats`."""
        self.stats.texts += len(items)
        self.stats.truncated += truncated
        self._count_padding(items, instruction, batch_size)


__all__ = ["COUNT_CACHE_SIZE", "TokenAccounting"]
