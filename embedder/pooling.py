"""Pooling and normalisation in numpy, step for step as sentence-transformers' ``Pooling`` and ``Normalize``.

The torch-free ONNX path (:mod:`embedder.onnx_native`) runs the transformer in ONNX Runtime and
pools here. Each mode follows ``Pooling._forward_padded`` of sentence-transformers 6 line by line,
including how the prompt (instruction) tokens are taken out of the attention mask before
pooling (``Pooling._exclude_prompt_from_mask``, right and left padding), so the vectors are the
ones the torch path pools; tests compare every mode with the torch module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from embedder.errors import EmbedderError

#: The modes of ``sentence_transformers...Pooling.POOLING_MODES``, all reproduced here.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]


def exclude_prompt(attention_mask: IntArray, prompt_length: int) -> IntArray:
    """A copy of the mask with the prompt's positions (after any left padding) set to 0.

    Args:
        attention_mask: ``(batch, sequence)`` of 0/1.
        prompt_length: tokens of the prompt, its leading special token included.

    Returns:
        The new mask.
    """
    mask = attention_mask.copy()
    pad_lengths = mask.astype(np.int32).argmax(axis=1)
    if int(pad_lengths.sum()) == 0:
        mask[:, :prompt_length] = 0
    else:
        positions = np.arange(mask.shape[1])[None, :]
        mask[positions < (pad_lengths + prompt_length)[:, None]] = 0
    result: IntArray = mask
    return result


def _mean(embeddings: FloatArray, mask: IntArray, sqrt: bool) -> FloatArray:
    weights = mask[:, :, None].astype(embeddings.dtype)
    total = (embeddings * weights).sum(axis=1, dtype=np.float32)
    count = np.maximum(weights.sum(axis=1, dtype=np.float32), np.float32(1e-9))
    result: FloatArray = (total / (np.sqrt(count) if sqrt else count)).astype(embeddings.dtype)
    return result


def _weighted_mean(embeddings: FloatArray, mask: IntArray, original: IntArray) -> FloatArray:
    weights = np.arange(1, embeddings.shape[1] + 1, dtype=np.float32)[None, :, None]
    if original.size:
        weights = weights - original.astype(np.int32).argmax(axis=1)[:, None, None].astype(np.float32)
    weighted = mask[:, :, None].astype(np.float32) * weights
    total = (embeddings * weighted).sum(axis=1)
    result: FloatArray = (total / np.maximum(weighted.sum(axis=1), np.float32(1e-9))).astype(embeddings.dtype)
    return result


def _last_token(embeddings: FloatArray, mask: IntArray) -> FloatArray:
    length = embeddings.shape[1]
    flipped = mask[:, ::-1]
    values, indices = flipped.max(axis=1), flipped.argmax(axis=1)
    indices = np.where(values == 0, length - 1, indices)
    gather = length - indices - 1
    masked = embeddings * mask[:, :, None].astype(embeddings.dtype)
    result: FloatArray = masked[np.arange(embeddings.shape[0]), gather]
    return result


def pool(
    token_embeddings: FloatArray,
    attention_mask: IntArray,
    modes: Sequence[str],
    prompt_length: int | None = None,
) -> FloatArray:
    """Sentence embeddings from token embeddings, the modes' outputs concatenated in order.

    Args:
        token_embeddings: ``(batch, sequence, hidden)`` (the transformer's last hidden state).
        attention_mask: ``(batch, sequence)`` of 0/1, as the tokenizer padded the batch.
        modes: pooling modes (see :data:`POOLING_MODES`).
        prompt_length: prompt tokens to leave out (``None`` or 0: none).

    Returns:
        ``(batch, hidden * len(modes))``.

    Raises:
        EmbedderError: a mode is not one of :data:`POOLING_MODES`.
    """
    original = attention_mask
    mask = exclude_prompt(attention_mask, prompt_length) if prompt_length else attention_mask
    rows = np.arange(token_embeddings.shape[0])
    outputs: list[FloatArray] = []
    for mode in modes:
        if mode == "cls":
            outputs.append(token_embeddings[rows, mask.astype(np.int32).argmax(axis=1)])
        elif mode == "max":
            hidden = np.where(mask[:, :, None] == 0, np.float32(-np.inf), token_embeddings)
            outputs.append(hidden.max(axis=1))
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            outputs.append(_mean(token_embeddings, mask, sqrt=mode == "mean_sqrt_len_tokens"))
        elif mode == "weightedmean":
            outputs.append(_weighted_mean(token_embeddings, mask, original))
        elif mode == "lasttoken":
            outputs.append(_last_token(token_embeddings, mask))
        else:
            raise EmbedderError(f"unknown pooling mode {mode!r}; use one of {', '.join(POOLING_MODES)}")
    return np.concatenate(outputs, axis=-1).astype(np.float32, copy=False)


def l2_normalize(vectors: FloatArray) -> FloatArray:
    """Rows divided by their L2 norm (at least 1e-12), as ``torch.nn.functional.normalize``."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: FloatArray = (vectors / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)
    return result


__all__ = ["POOLING_MODES", "exclude_prompt", "l2_normalize", "pool"]
