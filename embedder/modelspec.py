"""What a sentence-transformers model folder says about its pipeline, read without sentence-transformers.

The torch-free ONNX path (:mod:`embedder.onnx_native`) applies only to models whose whole
pipeline it reproduces exactly: a ``Transformer`` (run from its ONNX export), a ``Pooling`` and
an optional ``Normalize``, in that order. :func:`read_spec` reads ``modules.json``,
``sentence_bert_config.json``, ``1_Pooling/config.json``, ``config_sentence_transformers.json``
(its prompts), the Normalize module's config and the tokenizer's files, and returns a
:class:`ModelSpec`, or raises :class:`NativeUnsupportedError` naming what it cannot reproduce
(a ``Dense`` layer, an unknown module or config key, a tokenizer without ``tokenizer.json``).
:func:`build_tokenizers` makes the ``tokenizers`` tokenizers that encode like the
transformers tokenizer sentence-transformers uses: the same ``tokenizer.json``, the same
lowercasing rule, truncation (``longest_first`` at ``max_seq_length``) and padding.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedder.errors import EmbedderError
from embedder.pooling import POOLING_MODES

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: The ``pooling_mode_*`` flags of older Pooling configs, in sentence-transformers' order.
_LEGACY_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
#: Transformer config keys other than max_seq_length and do_lower_case, with the only values
#: the torch-free path reproduces (what sentence-transformers 6 writes for a text encoder).
_TRANSFORMER_DEFAULTS: dict[str, Any] = {
    "transformer_task": "feature-extraction",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
    "processing_kwargs": {},
    "unpad_inputs": None,
    "query_length": None,
    "document_length": None,
    "query_expansion": None,
}
_MODEL_CONFIG_KEYS = {"__version__", "prompts", "default_prompt_name", "similarity_fn_name", "model_type"}
#: transformers' stand-in for "no limit" (``VERY_LARGE_INTEGER``) and anything near it.
_NO_LIMIT = 10**9


class NativeUnsupportedError(EmbedderError):
    """The torch-free path cannot reproduce this model exactly (the message says what); use torch's."""


@dataclass(frozen=True)
class ModelSpec:
    """A model's pipeline as the torch-free path runs it.

    Attributes:
        folder: the transformer's folder (``tokenizer.json``, ``config.json``).
        max_seq_length: the model's own token limit (before any ``model.max_seq_length`` override).
        do_lower_case: sentence-transformers' ``do_lower_case`` (adds a Lowercase normaliser).
        pooling_modes: pooling modes, concatenated in this order.
        word_dimension: the transformer's hidden size.
        normalize_module: the pipeline ends with a Normalize module.
        default_prompt: the prompt used when none is given (``prompts[default_prompt_name]``).
        pad_token: the padding token; ``padding_side``, ``truncation_side``: ``right`` or ``left``.
        pad_token_type_id: the token type id of padding.
    """

    folder: str
    max_seq_length: int
    do_lower_case: bool
    pooling_modes: tuple[str, ...]
    word_dimension: int
    normalize_module: bool
    default_prompt: str | None
    pad_token: str
    padding_side: str
    truncation_side: str
    pad_token_type_id: int

    @property
    def dimension(self) -> int:
        """Length of the pooled vectors."""
        return self.word_dimension * len(self.pooling_modes)

    def describe(self) -> dict[str, Any]:
        """The spec as JSON-able values (recorded with the check that it reproduces the model)."""
        values = asdict(self)
        values["pooling_modes"] = list(self.pooling_modes)
        return values


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NativeUnsupportedError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc


def _optional_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    value = _json(path)
    if not isinstance(value, dict):
        raise NativeUnsupportedError(f"{path} is not a JSON object")
    return value


def _modules(folder: Path) -> tuple[Path, Path, Path | None]:
    """The folders of the Transformer, the Pooling and the optional Normalize module."""
    path = folder / "modules.json"
    if not path.is_file():
        raise NativeUnsupportedError(f"{folder} has no modules.json (not a sentence-transformers folder)")
    entries = _json(path)
    if not isinstance(entries, list):
        raise NativeUnsupportedError(f"{path} is not a list of modules")
    kinds = [str(entry.get("type", "")).rsplit(".", 1)[-1] for entry in entries]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise NativeUnsupportedError(
            f"the modules of {folder} are {' -> '.join(kinds) or 'none'}; the torch-free path runs "
            "Transformer -> Pooling (-> Normalize) only"
        )
    for entry in entries:
        if not str(entry.get("type", "")).startswith("sentence_transformers."):
            raise NativeUnsupportedError(
                f"module {entry.get('type')!r} of {folder} is not sentence-transformers'"
            )
        if set(entry) - {"idx", "name", "path", "type", "kwargs"} or entry.get("kwargs"):
            raise NativeUnsupportedError(
                f"module {entry.get('name')!r} of {folder} has extra settings: {entry}"
            )
    paths = [folder / str(entry.get("path", "")) for entry in entries]
    return paths[0], paths[1], paths[2] if len(paths) == 3 else None


def _transformer_config(transformer: Path) -> tuple[int | None, bool]:
    """``max_seq_length`` (``None``: not given) and ``do_lower_case`` of sentence_bert_config.json."""
    config = _optional_json(transformer / "sentence_bert_config.json")
    for key, value in config.items():
        if key in ("max_seq_length", "do_lower_case"):
            continue
        if key not in _TRANSFORMER_DEFAULTS or value != _TRANSFORMER_DEFAULTS[key]:
            raise NativeUnsupportedError(
                f"sentence_bert_config.json of {transformer} sets {key}={value!r}, which the torch-free path "
                "does not reproduce"
            )
    limit = config.get("max_seq_length")
    return (int(limit) if limit is not None else None), bool(config.get("do_lower_case", False))


def _pooling(folder: Path) -> tuple[tuple[str, ...], int]:
    """Pooling modes and the word-embedding dimension, legacy flags converted as sentence-transformers does."""
    config = dict(_json(folder / "config.json"))
    flags = [key for key in _LEGACY_POOLING_FLAGS if key in config]
    if flags and "pooling_mode" not in config:
        active = [mode for key, mode in _LEGACY_POOLING_FLAGS.items() if config.get(key, False)]
        config["pooling_mode"] = active or ["mean"]
    for key in flags:
        del config[key]
    dimension = config.pop("embedding_dimension", config.pop("word_embedding_dimension", None))
    raw = config.pop("pooling_mode", "mean")
    config.pop("include_prompt", None)  # the loader excludes prompts from pooling whatever this says
    if config or not isinstance(dimension, int):
        raise NativeUnsupportedError(
            f"Pooling config of {folder} has settings the torch-free path lacks: {config}"
        )
    modes = (raw,) if isinstance(raw, str) else tuple(str(mode) for mode in raw)
    unknown = [mode for mode in modes if mode not in POOLING_MODES]
    if unknown or not modes:
        raise NativeUnsupportedError(f"unknown pooling modes {unknown} in {folder}")
    return modes, dimension


def _default_prompt(folder: Path) -> str | None:
    config = _optional_json(folder / "config_sentence_transformers.json")
    extra = set(config) - _MODEL_CONFIG_KEYS
    if extra or config.get("model_type", "SentenceTransformer") != "SentenceTransformer":
        raise NativeUnsupportedError(
            f"config_sentence_transformers.json of {folder} has settings the torch-free path lacks: "
            f"{sorted(extra) or config.get('model_type')}"
        )
    name = config.get("default_prompt_name")
    return None if name is None else (config.get("prompts") or {}).get(name)


def _normalize(folder: Path | None) -> bool:
    if folder is None:
        return False
    config = _optional_json(folder / "config.json")
    source = config.get("module_input_name", "sentence_embedding")
    if source != "sentence_embedding" or config.get("module_output_name") not in (None, source):
        raise NativeUnsupportedError(
            f"the Normalize module of {folder} does not normalise the sentence embedding"
        )
    return True


def _token_name(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _model_limit(transformer: Path, tokenizer_config: dict[str, Any]) -> int:
    """The limit sentence-transformers sets when sentence_bert_config.json names none."""
    limit = int(tokenizer_config.get("model_max_length") or 10**30)
    positions = _optional_json(transformer / "config.json").get("max_position_embeddings")
    if isinstance(positions, int) and positions != -1:
        limit = min(limit, positions)
    if limit >= _NO_LIMIT:
        raise NativeUnsupportedError(f"the model in {transformer} names no token limit")
    return limit


def read_spec(folder: Path) -> ModelSpec:
    """Read a local sentence-transformers model folder into a :class:`ModelSpec`.

    Args:
        folder: the model folder (``modules.json`` at its top).

    Returns:
        The spec.

    Raises:
        NativeUnsupportedError: the folder describes something the torch-free path cannot reproduce.
    """
    transformer, pooling, normalize = _modules(folder)
    if not (transformer / "tokenizer.json").is_file():
        raise NativeUnsupportedError(f"{transformer} has no tokenizer.json")
    limit, lower = _transformer_config(transformer)
    tokenizer_config = _optional_json(transformer / "tokenizer_config.json")
    pad = _token_name(tokenizer_config.get("pad_token"))
    if pad is None:
        raise NativeUnsupportedError(f"tokenizer_config.json of {transformer} names no pad_token")
    modes, dimension = _pooling(pooling)
    return ModelSpec(
        folder=str(transformer),
        max_seq_length=limit if limit is not None else _model_limit(transformer, tokenizer_config),
        do_lower_case=lower,
        pooling_modes=modes,
        word_dimension=dimension,
        normalize_module=_normalize(normalize),
        default_prompt=_default_prompt(folder),
        pad_token=pad,
        padding_side=str(tokenizer_config.get("padding_side", "right")),
        truncation_side=str(tokenizer_config.get("truncation_side", "right")),
        pad_token_type_id=int(tokenizer_config.get("pad_token_type_id", 0)),
    )


def _add_lowercase(tokenizer: Tokenizer) -> None:
    """sentence-transformers' ``do_lower_case``: a Lowercase normaliser first unless one is there."""
    from tokenizers.normalizers import Lowercase, Sequence

    normalizer = tokenizer.normalizer
    if isinstance(normalizer, Lowercase):
        return
    if isinstance(normalizer, Sequence):
        if any(isinstance(item, Lowercase) for item in normalizer):  # type: ignore[attr-defined]
            return
        tokenizer.normalizer = Sequence([Lowercase(), *normalizer])  # type: ignore[misc]
        return
    tokenizer.normalizer = Sequence([Lowercase()] if normalizer is None else [Lowercase(), normalizer])


def build_tokenizers(spec: ModelSpec, max_seq_length: int) -> tuple[Tokenizer, Tokenizer]:
    """A counting tokenizer (no truncation, no padding) and a batch tokenizer, as sentence-transformers encodes.

    Args:
        spec: the model.
        max_seq_length: the token limit in force (the model's own or the settings' override).

    Returns:
        ``(counter, batcher)``: the batcher truncates ``longest_first`` at ``max_seq_length`` and
        pads each batch to its longest member.

    Raises:
        NativeUnsupportedError: the pad token is not in the vocabulary, or tokenizer.json is unreadable.
    """
    from tokenizers import Tokenizer

    try:
        counter = Tokenizer.from_file(str(Path(spec.folder) / "tokenizer.json"))
    except Exception as exc:  # the Rust library raises its own exception types for a bad file
        raise NativeUnsupportedError(f"cannot load {spec.folder}/tokenizer.json: {exc}") from exc
    if spec.do_lower_case:
        _add_lowercase(counter)
    counter.no_truncation()
    counter.no_padding()
    batcher = Tokenizer.from_str(counter.to_str())
    pad_id = batcher.token_to_id(spec.pad_token)
    if pad_id is None:
        raise NativeUnsupportedError(
            f"the pad token {spec.pad_token!r} is not in {spec.folder}/tokenizer.json"
        )
    batcher.enable_truncation(max_seq_length, strategy="longest_first", direction=spec.truncation_side)
    batcher.enable_padding(
        direction=spec.padding_side,
        pad_id=pad_id,
        pad_type_id=spec.pad_token_type_id,
        pad_token=spec.pad_token,
    )
    return counter, batcher


def special_ids(tokenizer: Tokenizer) -> frozenset[int]:
    """Ids of the tokenizer's special tokens (``all_special_ids`` of transformers)."""
    return frozenset(index for index, token in tokenizer.get_added_tokens_decoder().items() if token.special)


__all__ = ["ModelSpec", "NativeUnsupportedError", "build_tokenizers", "read_spec", "special_ids"]
