"""Inference runtimes: the transformer in torch, or exported once to ONNX and run by ONNX Runtime.

Only the transformer (token embeddings) moves to ONNX Runtime. Tokenisation, the prompt
bookkeeping of sentence-transformers, the pooling that leaves instruction tokens out, any Dense
layer and the normalisation stay the very modules of the loaded
:class:`~sentence_transformers.SentenceTransformer`, so instruction masking is unchanged by
construction: :class:`OrtTransformer` replaces ``model[0].model`` and returns the same
``last_hidden_state`` the torch model would.

Why not sentence-transformers' own ``backend="onnx"``: it loads through ``optimum-onnx``, whose
only release (0.1.0) requires ``transformers<4.58`` while sentence-transformers 6 requires
``transformers>=5``; the two cannot be installed together. The export here is therefore
``torch.onnx.export`` of the model's forward (the TorchScript exporter, dynamic batch and sequence
axes), and ``onnx-int8`` is ``onnxruntime.quantization.quantize_dynamic`` of that export.

Exports are cached under ``<data_dir>/models/<model-slug>-<key>/`` (the bundled default model
lives in read-only site-packages), keyed by the model's weights and the versions of torch,
transformers, onnx and onnxruntime, written atomically and guarded by a file lock so that two
processes never export into the same folder at once.

Once an export is cached (and checked), later processes run it without torch and without
sentence-transformers: :mod:`embedder.onnx_native`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from config import Runtime
from embedder.errors import EmbedderError
from embedder.loading import weights_fingerprint

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from embedder.loading import ResolvedModel

logger = logging.getLogger(__name__)

RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)
#: Bump when the export procedure changes (invalidates cached exports).
EXPORT_VERSION = "2"
ONNX_FILE = "model.onnx"
INT8_FILE = "model_qint8.onnx"
OPSET = 17
#: ONNX Runtime's session config key that lets idle intra-op threads spin (``"0"``: they sleep).
SPINNING_ENTRY = "session.intra_op.allow_spinning"


class RuntimeUnavailableError(EmbedderError):
    """The selected runtime cannot run here (a package is missing, or the export failed)."""


def default_cache_root() -> Path:
    """Where exports go when no data folder is given: ``$XDG_CACHE_HOME/instructor-search/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "instructor-search" / "models"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def export_folder(resolved: ResolvedModel, cache_root: Path) -> Path:
    """The cache folder of a model's ONNX export, keyed by model, weights and package versions.

    Args:
        resolved: the model (its id names the folder; its files and the package versions key it).
        cache_root: ``<data_dir>/models``.

    Returns:
        ``<cache_root>/<model-slug>-<12 hex digits>/onnx`` (not necessarily existing yet).
    """
    key_text = "\n".join(
        [
            EXPORT_VERSION,
            resolved.model_id,
            weights_fingerprint(resolved.location),
            *(f"{name}={_version(name)}" for name in ("torch", "transformers", "onnx", "onnxruntime")),
        ]
    )
    key = hashlib.sha256(key_text.encode("utf-8")).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", resolved.model_id).strip("-.")[-60:] or "model"
    return cache_root / f"{slug}-{key}" / "onnx"


def _require_onnx_packages(runtime: Runtime) -> None:
    missing = [name for name in ("onnxruntime", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise RuntimeUnavailableError(
            f"model.runtime={runtime!r} needs the package(s) {', '.join(missing)}, which are not installed; "
            f"fix: pip install {' '.join(missing)} (or `make setup`), or set model.runtime='torch' "
            "(--runtime torch, INSTRUCTOR_SEARCH_MODEL__RUNTIME=torch)"
        )


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder/.lock`` (one exporter at a time, across processes)."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _input_names(hf_model: Any, tokenizer: Any) -> list[str]:
    """Inputs the exported graph takes: those the tokenizer produces and the model's forward accepts."""
    accepted = set(inspect.signature(hf_model.forward).parameters)
    produced = list(getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"]))
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in accepted]
    return [name for name in names if name in produced or name == "input_ids"]


def _export(model: SentenceTransformer, target: Path) -> list[str]:
    """Export ``model[0].model`` to ``target`` (atomically); returns the graph's input names."""
    import torch

    transformer = model[0]
    hf_model: Any = transformer.model
    names = _input_names(hf_model, model.tokenizer)

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            output = self.inner(**dict(zip(names, args, strict=True)), return_dict=True)
            return output.last_hidden_state

    # A padded example, so that the traced graph keeps the attention-mask path.
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 2023, 102, 0, 0, 0]], dtype=torch.long)
    ids = ids.clamp(max=int(hf_model.config.vocab_size) - 1)
    mask = (ids != 0).long()
    mask[0, :] = 1
    example = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    args = tuple(example[name] for name in names)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        tmp_file = Path(tmp) / target.name
        wrapper = _LastHiddenState(hf_model).eval()
        with torch.no_grad(), warnings.catch_warnings():
            # Tracer and opset notes about branches and indexing that do not apply to an encoder.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                args,
                str(tmp_file),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(tmp_file, target)
    return names


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantize-") as tmp:
        tmp_file = Path(tmp) / target.name
        # Per-channel int8 weights: per-tensor scales cost MiniLM ~0.1 of cosine (0.90 vs 0.99).
        quantize_dynamic(str(source), str(tmp_file), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp_file, target)


def ensure_export(
    model: SentenceTransformer, resolved: ResolvedModel, runtime: Runtime, cache_root: Path
) -> Path:
    """The ONNX file for ``runtime``, exported (and quantised) on first use.

    Args:
        model: the loaded torch model (its transformer is exported).
        resolved: where the model came from (keys the cache folder).
        runtime: ``onnx`` or ``onnx-int8``.
        cache_root: ``<data_dir>/models``.

    Returns:
        Path of the ``.onnx`` file.

    Raises:
        RuntimeUnavailableError: the packages are missing or the export failed.
    """
    _require_onnx_packages(runtime)
    folder = export_folder(resolved, cache_root)
    fp32 = folder / ONNX_FILE
    wanted = fp32 if runtime == "onnx" else folder / INT8_FILE
    if wanted.is_file():
        return wanted
    try:
        with _folder_lock(folder):
            if not fp32.is_file():
                logger.warning("exporting %s to ONNX into %s (once)", resolved.model_id, folder)
                _export(model, fp32)
            if runtime == "onnx-int8" and not wanted.is_file():
                logger.warning("quantising the ONNX export of %s to int8 (once)", resolved.model_id)
                _quantize(fp32, wanted)
    except (RuntimeError, ValueError, TypeError, OSError) as exc:
        raise RuntimeUnavailableError(
            f"could not export {resolved.model_id!r} for model.runtime={runtime!r} into {folder}: "
            f"{type(exc).__name__}: {exc}. Fix: use model.runtime='torch' (--runtime torch), or make "
            f"{cache_root} writable"
        ) from exc
    return wanted


def session_options(*, spinning: bool = True) -> Any:
    """ONNX Runtime session options of both ONNX paths: all graph optimisations, one intra-op thread per usable core.

    Args:
        spinning: whether idle intra-op threads spin (ONNX Runtime's default). Sessions that embed
            search queries turn it off (see :func:`embedder.make_embedder`): after each query the
            spinning threads hold a core, and the dense scan that follows runs on the one left.
            With the default model on 2 cores, the scan of 200,000 x 384 vectors after a query
            took 21.3-21.8 ms spinning and 11.2-12.8 ms without (scripts/onnx_spin_scan.py), while
            the query embedding itself got 1-3 ms slower. Batches of documents keep spinning.

    Returns:
        ``onnxruntime.SessionOptions``.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = max(1, len(os.sched_getaffinity(0)))
    options.inter_op_num_threads = 1
    # The memory pattern pre-plans one arena per input shape; batches here change shape every
    # call (length-sorted, padded per batch), so it only holds the largest plans: off, the peak
    # RSS of embedding 600 NFCorpus documents fell from 1,046 to 781 MB at the same speed
    # (65.2 s against 64.2-64.5 s, interleaved runs in one session, scripts/onnx_mem_pattern.py).
    options.enable_mem_pattern = False
    if not spinning:
        options.add_session_config_entry(SPINNING_ENTRY, "0")
    return options


def make_ort_module(onnx_file: Path, hf_model: Any, *, spinning: bool = True) -> Any:
    """A torch module that runs the exported transformer in ONNX Runtime (see :class:`OrtTransformer`).

    Args:
        onnx_file: the exported transformer.
        hf_model: the Hugging Face model it stands in for (its ``config`` is kept).
        spinning: see :func:`session_options`.

    Returns:
        The module.
    """
    import onnxruntime as ort
    import torch

    class OrtTransformer(torch.nn.Module):
        """Stands in for the Hugging Face model inside sentence-transformers' Transformer module.

        It takes the same keyword inputs, runs the ONNX graph and returns ``last_hidden_state``
        as a torch tensor, so the pooling (instruction tokens excluded) and everything after it
        run unchanged. ``config`` is the original model's.
        """

        def __init__(self) -> None:
            super().__init__()
            self.config = hf_model.config
            self.session = ort.InferenceSession(
                str(onnx_file),
                sess_options=session_options(spinning=spinning),
                providers=["CPUExecutionProvider"],
            )
            self.input_names = [item.name for item in self.session.get_inputs()]
            self.onnx_file = onnx_file

        def forward(self, input_ids: Any = None, attention_mask: Any = None, **kwargs: Any) -> dict[str, Any]:
            given = {"input_ids": input_ids, "attention_mask": attention_mask, **kwargs}
            feeds = {}
            for name in self.input_names:
                value = given.get(name)
                if value is None:
                    value = torch.zeros_like(input_ids)  # token_type_ids the tokenizer left out
                feeds[name] = value.detach().cpu().numpy().astype("int64", copy=False)
            (hidden,) = self.session.run(["last_hidden_state"], feeds)
            return {"last_hidden_state": torch.from_numpy(hidden)}

    return OrtTransformer()


def apply_runtime(
    model: SentenceTransformer,
    resolved: ResolvedModel,
    runtime: Runtime,
    cache_root: Path | None,
    *,
    spinning: bool = True,
) -> None:
    """Switch a loaded model's transformer to ``runtime`` (``torch`` leaves it as it is).

    Args:
        model: a model loaded by :func:`embedder.loading.load_sentence_transformer`.
        resolved: where it came from.
        runtime: ``torch``, ``onnx`` or ``onnx-int8``.
        cache_root: folder for exports (``<data_dir>/models``); ``None``: :func:`default_cache_root`.
        spinning: whether the session's idle threads spin (see :func:`session_options`).

    Raises:
        RuntimeUnavailableError: ONNX Runtime is missing, the export failed, or the device is not
            the CPU.
    """
    if runtime == "torch":
        return
    if runtime not in RUNTIMES:
        raise RuntimeUnavailableError(f"unknown model.runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    if model.device.type != "cpu":
        raise RuntimeUnavailableError(
            f"model.runtime={runtime!r} runs on the CPU only, but the model is on {model.device}; "
            "fix: set model.device='cpu' or model.runtime='torch'"
        )
    transformer = model[0]
    if not hasattr(transformer, "model"):
        raise RuntimeUnavailableError(
            f"model.runtime={runtime!r}: the first module of {resolved.model_id!r} is "
            f"{type(transformer).__name__}, not a Transformer; use model.runtime='torch'"
        )
    onnx_file = ensure_export(model, resolved, runtime, cache_root or default_cache_root())
    transformer.model = make_ort_module(onnx_file, transformer.model, spinning=spinning)
