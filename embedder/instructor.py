"""A drop-in replacement for ``InstructorEmbedding.INSTRUCTOR`` (version 1.0.1).

The original package no longer loads with current sentence-transformers. This class is built on
stock sentence-transformers and reproduces the original computation exactly:

1. ``full = (instruction + text.strip()).strip()``;
2. ``full`` is tokenized, truncated at 512 tokens;
3. ``n`` = token count of ``instruction.strip()`` without the final special token, and
   ``n = 0`` when ``n <= 1`` (a one-token instruction is pooled with the text);
4. the encoder attends to all tokens; 5. the mean skips the first ``n`` tokens.

It does so through sentence-transformers prompts: the stripped instruction is the prompt (so its
token count is exactly ``n``), and the instruction's trailing whitespace is moved to the front of
the text, so that ``prompt + text`` is exactly ``full``. Pairs are grouped by instruction, since a
prompt applies to a whole ``encode`` call, and the results are put back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from embedder.errors import InputError
from embedder.loading import embedding_dimension, resolve_model, try_load

#: InstructorEmbedding 1.0.1 truncates at 512 tokens whatever the model's config says.
INSTRUCTOR_MAX_LENGTH = 512


def _model_position_limit(model: SentenceTransformer) -> int | None:
    """The largest sequence the model's position embeddings allow (None: no absolute limit)."""
    config = getattr(model[0], "auto_model", None)
    config = getattr(config, "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else None


class INSTRUCTOR(SentenceTransformer):
    """INSTRUCTOR embedder with the ``InstructorEmbedding`` 1.0.1 interface.

    Example:
        >>> model = INSTRUCTOR("hkunlp/instructor-large")  # doctest: +SKIP
        >>> model.encode([["Represent the Science title:", "3D ActionSLAM"]])  # doctest: +SKIP

    Args:
        model_name_or_path: a hub name, a local folder, or ``None``/``"default"`` for the
            bundled all-MiniLM-L6-v2.
        device: torch device.
        **kwargs: passed on to :class:`sentence_transformers.SentenceTransformer`.
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        device: str | None = None,
        **kwargs: Any,
    ) -> None:
        resolved = resolve_model(model_name_or_path or "default")
        try_load(
            model_name_or_path or "default",
            resolved,
            lambda extra: SentenceTransformer.__init__(
                self, resolved.location, device=device, **extra, **kwargs
            ),
        )
        self.set_pooling_include_prompt(include_prompt=False)
        limit = _model_position_limit(self)
        self.max_seq_length = min(INSTRUCTOR_MAX_LENGTH, limit) if limit else INSTRUCTOR_MAX_LENGTH
        self.model_id = resolved.model_id

    def _instruction_token_count(self, instruction: str) -> int:
        """Tokens of the stripped instruction without a trailing special token (1.0.1's ``n``)."""
        tokenizer = self.tokenizer
        ids = tokenizer(instruction, add_special_tokens=True)["input_ids"]
        count = len(ids)
        if ids and ids[-1] in set(tokenizer.all_special_ids):
            count -= 1
        return count

    def _split_pair(self, pair: Sequence[Any]) -> tuple[str | None, str]:
        """Turn ``[instruction, text]`` into the (prompt, text) that rebuild 1.0.1's input."""
        if isinstance(pair, str) or len(pair) < 2:
            raise InputError(
                f"expected [instruction, text] pairs, got {pair!r}; pass a list of two-element lists"
            )
        instruction, text = pair[0], pair[1]
        if not isinstance(instruction, str) or not isinstance(text, str):
            raise InputError(
                f"instruction and text must be strings, got {type(instruction).__name__} and "
                f"{type(text).__name__} in {pair!r}"
            )
        stripped_text = text.strip()
        prompt = instruction.strip()
        # (instruction + text.strip()).strip() == instruction.lstrip() + text.strip(), or
        # instruction.strip() when the text is blank.
        rest = instruction.lstrip()[len(prompt) :] + stripped_text if stripped_text else ""
        if not prompt or self._instruction_token_count(prompt) <= 1:
            return None, prompt + rest
        return prompt, rest

    def encode(  # type: ignore[override]
        self,
        sentences: Sequence[Sequence[Any]] | Sequence[str] | str,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: Literal["sentence_embedding", "token_embeddings"] | None = "sentence_embedding",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
        normalize_embeddings: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Encode ``[instruction, text]`` pairs exactly as InstructorEmbedding 1.0.1 did.

        Args:
            sentences: a list of ``[instruction, text]`` pairs; a third element in a pair is
                ignored. Plain strings (a list of them, or one string) are encoded without an
                instruction, so a bare pair ``["instr", "text"]`` is two texts: wrap it in a list.
            batch_size: texts per forward pass.
            show_progress_bar: show a progress bar.
            output_value: ``"sentence_embedding"`` or ``"token_embeddings"`` (instruction
                tokens included, as in 1.0.1).
            convert_to_numpy: return a numpy array (sentence embeddings).
            convert_to_tensor: return one stacked tensor (wins over ``convert_to_numpy``).
            device: torch device for this call.
            normalize_embeddings: L2-normalise the sentence embeddings once more.
            **kwargs: passed on to :meth:`SentenceTransformer.encode`.

        Returns:
            Embeddings in input order: an array ``(n, dim)``, a tensor, or a list of tensors for
            token embeddings. A single string gives a single embedding.
        """
        single = isinstance(sentences, str)
        items: list[Any] = [sentences] if single else list(sentences)
        splits: list[tuple[str | None, str]] = [
            (None, item) if isinstance(item, str) else self._split_pair(item) for item in items
        ]
        groups: dict[str | None, list[int]] = {}
        for index, (prompt, _) in enumerate(splits):
            groups.setdefault(prompt, []).append(index)

        results: list[Any] = [None] * len(items)
        for prompt, indices in groups.items():
            out = super().encode(
                [splits[i][1] for i in indices],
                prompt=prompt,
                batch_size=batch_size,
                show_progress_bar=show_progress_bar,
                output_value=output_value,
                convert_to_numpy=False,
                convert_to_tensor=False,
                device=device,
                normalize_embeddings=normalize_embeddings,
                **kwargs,
            )
            for i, vector in zip(indices, out, strict=True):
                results[i] = vector

        if output_value == "token_embeddings":
            tensors = [r.detach().cpu() for r in results]
            return tensors[0] if single else tensors
        if not results:
            return (
                torch.empty(0)
                if convert_to_tensor
                else np.zeros((0, embedding_dimension(self) or 0), dtype=np.float32)
            )
        stacked = torch.stack([r.detach().cpu() for r in results])
        if convert_to_tensor:
            return stacked[0] if single else stacked
        if convert_to_numpy:
            array = stacked.float().numpy()
            return array[0] if single else array
        return stacked[0] if single else list(stacked)
