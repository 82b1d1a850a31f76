"""The one factory of embedders: the backend, the runtime and the embedding cache the settings select.

It lives apart from :mod:`embedder.backends` so that the cache (which wraps a backend) and the
backends never import each other. Imports of torch and sentence-transformers stay lazy: with an
ONNX runtime and a checked, cached export, the model runs without them
(:mod:`embedder.onnx_native`); otherwise it is loaded through sentence-transformers, exported on
first use, and checked for the torch-free path of the next process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from config import Runtime, Settings
from embedder.backends import FakeEmbedder, SentenceTransformerEmbedder
from embedder.base import Embedder
from embedder.cache import CachedEmbedder, EmbeddingCache
from embedder.errors import InputError

if TYPE_CHECKING:
    from config import ModelSettings

logger = logging.getLogger(__name__)


def make_embedder(
    settings: ModelSettings | Settings,
    *,
    purpose: Literal["ingest", "query"] = "ingest",
    runtime: Runtime | None = None,
    cache: bool | None = None,
) -> Embedder:
    """The one factory: build the embedder that the settings select.

    Given the whole :class:`~config.Settings`, ONNX exports are cached under
    ``<data_dir>/models`` and the embedding cache (``<data_dir>/cache/embeddings.sqlite``) is
    applied as ``settings.cache`` says for the purpose. Given only the ``model`` section, exports
    go to ``~/.cache/instructor-search/models`` and nothing is cached.

    Args:
        settings: the settings, or only their ``model`` section.
        purpose: ``ingest`` (documents, evaluation; ``model.runtime``) or ``query`` (search
            queries; ``model.query_runtime``, falling back to ``model.runtime``). A query
            embedder's ONNX session does not spin its idle threads, so the search that follows
            each query has every core (see :func:`embedder.runtime.session_options`).
        runtime: overrides the runtime the settings select.
        cache: overrides whether the embedding cache is used (needs the whole settings).

    Returns:
        A ready embedder.

    Raises:
        ModelNotFoundError: the model could not be loaded.
        RuntimeUnavailableError: the runtime cannot run here (ONNX Runtime missing, export failed).
        CacheError: the embedding cache file cannot be opened.
    """
    full = settings if isinstance(settings, Settings) else None
    model_settings = settings.model if isinstance(settings, Settings) else settings
    chosen: Runtime = runtime or (
        (model_settings.query_runtime or model_settings.runtime)
        if purpose == "query"
        else model_settings.runtime
    )
    explicit = runtime is not None or bool({"runtime", "query_runtime"} & model_settings.model_fields_set)
    device = model_settings.device
    if chosen != "torch" and not explicit and device is not None and not device.startswith("cpu"):
        logger.info("model.device=%s: using the torch runtime (the ONNX runtimes run on the CPU)", device)
        chosen = "torch"
    export_root = full.data_dir / "models" if full is not None else None
    inner = _make_uncached(model_settings, chosen, export_root, spinning=purpose == "ingest")
    use_cache = cache
    if use_cache is None:
        use_cache = full is not None and (full.cache.ingest if purpose == "ingest" else full.cache.query)
    if not use_cache:
        return inner
    if full is None:
        raise InputError(
            "the embedding cache needs the whole settings (for data_dir); pass settings, not settings.model"
        )
    path = full.cache.path or full.data_dir / "cache" / "embeddings.sqlite"
    store = EmbeddingCache(path, max_entries=full.cache.max_entries)
    return CachedEmbedder(inner, store, runtime=getattr(inner, "runtime", chosen))


def _make_uncached(
    settings: ModelSettings, runtime: Runtime, export_root: Path | None, *, spinning: bool
) -> Embedder:
    if settings.backend == "fake":
        return FakeEmbedder(max_seq_length=settings.max_seq_length or 128, normalize=settings.normalize)
    if settings.backend == "sentence-transformers":
        from embedder.onnx_native import check_native, load_native

        native = load_native(settings, runtime, export_root, spinning=spinning)
        if native is not None:
            return native
        from embedder.loading import load_sentence_transformer
        from embedder.runtime import apply_runtime

        device = settings.device
        if runtime != "torch" and device is None:
            device = "cpu"
        model, resolved = load_sentence_transformer(
            settings.name, device=device, max_seq_length=settings.max_seq_length
        )
        apply_runtime(model, resolved, runtime, export_root, spinning=spinning)
        embedder = SentenceTransformerEmbedder(
            model,
            resolved.model_id,
            batch_size=settings.batch_size,
            normalize=settings.normalize,
            runtime=runtime,
        )
        check_native(embedder, resolved, runtime, export_root, settings.max_seq_length)
        return embedder
    raise InputError(f"unknown embedder backend {settings.backend!r}; use 'sentence-transformers' or 'fake'")


__all__ = ["make_embedder"]
