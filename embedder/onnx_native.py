"""The torch-free ONNX path: a cached export, ``tokenizers`` and numpy pooling, no torch and no sentence-transformers.

Today's ONNX runtime (:mod:`embedder.runtime`) loads the whole sentence-transformers model in torch
and swaps only its transformer for an ONNX Runtime session, so torch, its copy of the weights and
ONNX Runtime all sit in memory. Once a model's export is cached, :class:`NativeOnnxEmbedder`
runs the same computation without them: the tokenizer of the model folder through the
``tokenizers`` library (:func:`embedder.modelspec.build_tokenizers`), the exported graph in ONNX
Runtime (session options of :func:`embedder.runtime.session_options`), pooling that leaves the
prompt (instruction) tokens out and the normalisation in numpy (:mod:`embedder.pooling`).

When it applies: the resolved model is a local folder with a cached export for the runtime, its
pipeline is one :func:`embedder.modelspec.read_spec` reproduces, and a *check stamp*
(``native.json`` beside the export) says that this spec was compared with the torch pipeline and
matched. The first process (the one that exports) builds the model through sentence-transformers
as before and then runs :func:`check_native`: it embeds probe texts (with and without an
instruction, truncated, empty, several scripts, padded batches) both ways and compares the token
ids, the prompt lengths, the token counts and the vectors (cosine >= 0.99999). The stamp
records the result with the versions of sentence-transformers, transformers and tokenizers, so an
upgrade of either is checked again. Every later process takes this path (:func:`load_native`).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedder.base import Vectors, check_texts
from embedder.errors import EmbedderError, ModelNotFoundError
from embedder.instructions import prompt_text
from embedder.loading import resolve_model
from embedder.modelspec import ModelSpec, NativeUnsupportedError, build_tokenizers, read_spec, special_ids
from embedder.pooling import IntArray, l2_normalize, pool
from embedder.runtime import INT8_FILE, ONNX_FILE, default_cache_root, export_folder, session_options
from embedder.tokens import TokenAccounting

if TYPE_CHECKING:
    from config import ModelSettings, Runtime
    from embedder.backends import SentenceTransformerEmbedder
    from embedder.loading import ResolvedModel

logger = logging.getLogger(__name__)

STAMP_FILE = "native.json"
#: Bump when the torch-free computation changes (every stamp is checked again).
STAMP_FORMAT = 1
_STAMP_PACKAGES = ("sentence-transformers", "transformers", "tokenizers")
#: Vectors of the two paths must agree this closely (cosine, and largest absolute difference).
MIN_COSINE = 0.99999
MAX_ABS_DIFF = 1e-5
PROBE_INSTRUCTIONS: tuple[str | None, ...] = (None, "Represent the Medicine document for retrieval:")
PROBE_TEXTS: tuple[str, ...] = (
    "Aspirin reduces fever and relieves mild pain.",
    "",
    "   ",
    "?!",
    "Café naïve résumé: Ærøskøbing, Straße, İstanbul, ǅemal.",
    "東京は日本の首都です。 Москва — столица России. القاهرة عاصمة مصر",
    "Tabs\tand\nnew lines\r\n and [CLS] [SEP] [PAD] written out, emoji 🙂 and 3.14159e-3 digits.",
    " ".join(f"word{index} of a long passage that runs past the model's token limit" for index in range(120)),
)


class NativeOnnxEmbedder(TokenAccounting):
    """A sentence-transformers model run from its ONNX export without torch (see the module docstring).

    Args:
        onnx_file: the exported transformer (``model.onnx`` or ``model_qint8.onnx``).
        spec: the model's pipeline (:func:`embedder.modelspec.read_spec`).
        model_id: the name recorded in collection metadata.
        runtime: ``onnx`` or ``onnx-int8`` (part of the embedding cache's key).
        batch_size: default batch size.
        normalize: L2-normalise outputs.
        max_seq_length: override of the model's token limit.
        spinning: whether the session's idle threads spin (see
            :func:`embedder.runtime.session_options`).

    Raises:
        NativeUnsupportedError: the tokenizer or the graph does not fit the spec.
    """

    def __init__(
        self,
        onnx_file: Path,
        spec: ModelSpec,
        model_id: str,
        *,
        runtime: str = "onnx",
        batch_size: int = 32,
        normalize: bool = True,
        max_seq_length: int | None = None,
        spinning: bool = True,
    ) -> None:
        import onnxruntime as ort

        self.onnx_file = onnx_file
        self.spec = spec
        self.model_id = model_id
        self.runtime = runtime
        self.batch_size = batch_size
        self.normalize = normalize
        self.max_seq_length = int(max_seq_length or spec.max_seq_length)
        self.dimension = spec.dimension
        self.counter, self.batcher = build_tokenizers(spec, self.max_seq_length)
        self.special_ids = special_ids(self.counter)
        self.session = ort.InferenceSession(
            str(onnx_file),
            sess_options=session_options(spinning=spinning),
            providers=["CPUExecutionProvider"],
        )
        self.input_names = [item.name for item in self.session.get_inputs()]
        hidden = self.session.get_outputs()[0].shape[-1]
        if isinstance(hidden, int) and hidden != spec.word_dimension:
            raise NativeUnsupportedError(
                f"{onnx_file} returns {hidden}-dimensional token embeddings, the Pooling config of "
                f"{spec.folder} expects {spec.word_dimension}"
            )
        self._prompt_lengths: dict[str, int] = {}
        super().__init__()

    def _count_uncached(self, text: str) -> int:
        return len(self.counter.encode(text, add_special_tokens=False).ids)

    def _special_uncached(self) -> int:
        return len(self.counter.encode("", add_special_tokens=True).ids)

    def prompt(self, instruction: str | None) -> str | None:
        """The prompt put in front of every text: the instruction's, else the model's default prompt."""
        prompt = prompt_text(instruction)
        return self.spec.default_prompt if prompt is None else prompt

    def prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt alone, leading special token included, trailing special token excluded."""
        if prompt not in self._prompt_lengths:
            ids = self.batcher.encode(prompt).ids
            self._prompt_lengths[prompt] = len(ids) - (1 if ids and ids[-1] in self.special_ids else 0)
        return self._prompt_lengths[prompt]

    def features(self, texts: Sequence[str], prompt: str | None) -> tuple[dict[str, IntArray], int | None]:
        """The model inputs of one batch (prompt in front, truncated, padded) and the prompt length."""
        full = [prompt + text for text in texts] if prompt else list(texts)
        encodings = self.batcher.encode_batch(full)
        inputs = {
            "input_ids": np.array([item.ids for item in encodings], dtype=np.int64),
            "attention_mask": np.array([item.attention_mask for item in encodings], dtype=np.int64),
            "token_type_ids": np.array([item.type_ids for item in encodings], dtype=np.int64),
        }
        return inputs, (self.prompt_length(prompt) if prompt else None)

    def _forward(self, texts: Sequence[str], prompt: str | None) -> Vectors:
        inputs, prompt_length = self.features(texts, prompt)
        feeds = {name: inputs.get(name, np.zeros_like(inputs["input_ids"])) for name in self.input_names}
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        vectors = pool(
            np.asarray(hidden, dtype=np.float32),
            inputs["attention_mask"],
            self.spec.pooling_modes,
            prompt_length,
        )
        if self.spec.normalize_module:
            vectors = l2_normalize(vectors)
        return l2_normalize(vectors) if self.normalize else vectors

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Vectors:
        """Embed texts under the instruction (a prompt whose tokens the pooling leaves out).

        As sentence-transformers does: texts sorted by length (longest first), cut into batches,
        each padded to its longest; texts over the limit are truncated, logged and counted in
        :attr:`stats`.
        """
        items = check_texts(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        size = batch_size or self.batch_size
        truncated = self._count_truncated(items, instruction)
        prompt = self.prompt(instruction)
        order = np.argsort([-len(text) for text in items])
        out = np.empty((len(items), self.dimension), dtype=np.float32)
        starts = range(0, len(items), size)
        if show_progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="Batches")
        for start in starts:
            rows = order[start : start + size]
            out[rows] = self._forward([items[row] for row in rows], prompt)
        self._record(items, instruction, truncated, size)
        return out


def _versions() -> dict[str, str]:
    versions = {}
    for name in _STAMP_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "none"
    return versions


def read_stamp(folder: Path) -> dict[str, Any] | None:
    """The check stamp of an export folder, or ``None`` when there is none (or it is unreadable)."""
    try:
        value = json.loads((folder / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _stamp_matches(stamp: dict[str, Any] | None, spec: ModelSpec | None) -> bool:
    return (
        stamp is not None
        and stamp.get("format") == STAMP_FORMAT
        and stamp.get("versions") == _versions()
        and stamp.get("spec") == (spec.describe() if spec is not None else None)
    )


def _write_stamp(folder: Path, spec: ModelSpec | None, reason: str | None) -> None:
    stamp = {
        "format": STAMP_FORMAT,
        "versions": _versions(),
        "spec": spec.describe() if spec is not None else None,
        "verified": reason is None,
        "reason": reason,
    }
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=folder, prefix=".stamp-", suffix=".json", delete=False
    ) as handle:
        json.dump(stamp, handle, indent=2)
    os.replace(handle.name, folder / STAMP_FILE)


def _onnx_file(folder: Path, runtime: Runtime) -> Path:
    return folder / (ONNX_FILE if runtime == "onnx" else INT8_FILE)


def load_native(
    settings: ModelSettings, runtime: Runtime, export_root: Path | None, *, spinning: bool = True
) -> NativeOnnxEmbedder | None:
    """The torch-free embedder for these settings, or ``None`` where it does not apply (the reason logged).

    Args:
        settings: the model settings.
        runtime: ``onnx`` or ``onnx-int8`` (``torch`` never applies).
        export_root: ``<data_dir>/models``; ``None``: :func:`embedder.runtime.default_cache_root`.
        spinning: whether the session's idle threads spin (see
            :func:`embedder.runtime.session_options`).

    Returns:
        The embedder, or ``None``: another backend or runtime, a device other than the CPU, a hub
        model, no cached export yet, no matching check stamp, or a model it cannot reproduce.
    """
    device = settings.device
    if (
        runtime == "torch"
        or settings.backend != "sentence-transformers"
        or not (device or "cpu").startswith("cpu")
    ):
        return None
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("tokenizers") is None:
        return None
    try:
        resolved = resolve_model(settings.name)
    except ModelNotFoundError:
        return None  # the torch path raises the full message
    if not resolved.local:
        return None
    folder = export_folder(resolved, export_root or default_cache_root())
    onnx_file = _onnx_file(folder, runtime)
    if not onnx_file.is_file():
        logger.info(
            "no ONNX export of %s in %s yet: loading it through sentence-transformers",
            resolved.model_id,
            folder,
        )
        return None
    try:
        spec = read_spec(Path(resolved.location))
        stamp = read_stamp(folder)
        if not _stamp_matches(stamp, spec) or not (stamp or {}).get("verified"):
            logger.info(
                "the torch-free path is not checked for %s (%s)",
                resolved.model_id,
                (stamp or {}).get("reason"),
            )
            return None
        return NativeOnnxEmbedder(
            onnx_file,
            spec,
            resolved.model_id,
            runtime=runtime,
            batch_size=settings.batch_size,
            normalize=settings.normalize,
            max_seq_length=settings.max_seq_length,
            spinning=spinning,
        )
    except NativeUnsupportedError as exc:
        logger.info("%s runs through sentence-transformers: %s", resolved.model_id, exc)
        return None


def _close(want: Vectors, got: Vectors) -> bool:
    if want.shape != got.shape:
        return False
    norms = np.linalg.norm(want, axis=1) * np.linalg.norm(got, axis=1)
    cosine = np.sum(want * got, axis=1) / np.maximum(norms, 1e-12)
    zero = (np.linalg.norm(want, axis=1) == 0) & (np.linalg.norm(got, axis=1) == 0)
    return bool(np.all((cosine >= MIN_COSINE) | zero) and np.max(np.abs(want - got)) <= MAX_ABS_DIFF)


def _compare_inputs(
    reference: SentenceTransformerEmbedder, native: NativeOnnxEmbedder, prompt: str | None
) -> str | None:
    """Token ids, mask and prompt length of one padded probe batch, both ways (``None``: equal)."""
    preprocess = getattr(reference.model, "preprocess", None)
    if preprocess is None:  # older sentence-transformers: the vectors are still compared
        return None
    want = preprocess(list(PROBE_TEXTS), prompt=prompt)
    got, length = native.features(PROBE_TEXTS, prompt)
    for name in ("input_ids", "attention_mask"):
        if not np.array_equal(want[name].numpy(), got[name]):
            return f"{name} differ for prompt {prompt!r}"
    if want.get("prompt_length") != length:
        return f"prompt length {length} differs from sentence-transformers' {want.get('prompt_length')}"
    return None


@contextmanager
def _quiet_truncation() -> Iterator[None]:
    """No truncation warnings from the probes (the long probe is truncated on purpose)."""
    loggers = [logging.getLogger(name) for name in ("embedder.backends", __name__)]
    levels = [item.level for item in loggers]
    for item in loggers:
        item.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for item, level in zip(loggers, levels, strict=True):
            item.setLevel(level)


def compare(reference: SentenceTransformerEmbedder, native: NativeOnnxEmbedder) -> str | None:
    """Where the torch-free embedder differs from the sentence-transformers one on the probes (``None``: nowhere).

    Args:
        reference: the model through sentence-transformers.
        native: the torch-free embedder of the same model, export and settings.

    Neither embedder's ``stats`` change.

    Returns:
        ``None`` when they agree, else what differs.
    """
    saved = dataclasses.replace(native.stats)
    try:
        return _compare(reference, native)
    finally:
        native.stats = saved


def _compare(reference: SentenceTransformerEmbedder, native: NativeOnnxEmbedder) -> str | None:
    from embedder.backends import SentenceTransformerEmbedder

    fresh = SentenceTransformerEmbedder(
        reference.model,
        reference.model_id,
        batch_size=3,
        normalize=reference.normalize,
        runtime=reference.runtime,
    )
    for name in ("dimension", "max_seq_length"):
        if getattr(fresh, name) != getattr(native, name):
            return (
                f"{name} {getattr(native, name)} differs from sentence-transformers' {getattr(fresh, name)}"
            )
    if set(reference.model.tokenizer.all_special_ids) != native.special_ids:
        return "the special tokens differ"
    for text in PROBE_TEXTS:
        if fresh.count_tokens(text) != native.count_tokens(text):
            return f"token counts differ for {text[:40]!r}: {native.count_tokens(text)} vs sentence-transformers' {fresh.count_tokens(text)}"
    for instruction in PROBE_INSTRUCTIONS:
        if fresh.token_budget(instruction) != native.token_budget(instruction):
            return f"token budgets differ for instruction {instruction!r}"
        reason = _compare_inputs(fresh, native, native.prompt(instruction))
        if reason is not None:
            return reason
        if not _close(
            fresh.embed(list(PROBE_TEXTS), instruction),
            native.embed(list(PROBE_TEXTS), instruction, batch_size=3),
        ):
            return f"vectors differ for instruction {instruction!r}"
    return None


def check_native(
    reference: SentenceTransformerEmbedder,
    resolved: ResolvedModel,
    runtime: Runtime,
    export_root: Path | None,
    max_seq_length: int | None = None,
) -> bool:
    """Compare the torch-free path with a freshly loaded model once, and stamp the export with the result.

    Nothing is done when the stamp is there and current. A failure never reaches the caller:
    the model keeps working through sentence-transformers, and the reason is logged.

    Args:
        reference: the embedder just built through sentence-transformers with ``runtime``.
        resolved: where its model came from.
        runtime: ``onnx`` or ``onnx-int8``.
        export_root: ``<data_dir>/models``; ``None``: :func:`embedder.runtime.default_cache_root`.
        max_seq_length: the settings' token-limit override.

    Returns:
        Whether later processes will take the torch-free path.
    """
    if runtime == "torch" or not resolved.local:
        return False
    folder = export_folder(resolved, export_root or default_cache_root())
    try:
        spec: ModelSpec | None = read_spec(Path(resolved.location))
        reason: str | None = None
    except NativeUnsupportedError as exc:
        spec, reason = None, str(exc)
    stamp = read_stamp(folder)
    if _stamp_matches(stamp, spec):
        return bool((stamp or {}).get("verified"))
    try:
        if spec is not None:
            native = NativeOnnxEmbedder(
                _onnx_file(folder, runtime),
                spec,
                resolved.model_id,
                runtime=runtime,
                normalize=reference.normalize,
                max_seq_length=max_seq_length,
            )
            with _quiet_truncation():
                reason = compare(reference, native)
        _write_stamp(folder, spec, reason)
    except (
        EmbedderError,
        OSError,
        ValueError,
        RuntimeError,
    ) as exc:  # ONNX Runtime raises RuntimeError subclasses
        logger.info(
            "could not check the torch-free path for %s: %s: %s", resolved.model_id, type(exc).__name__, exc
        )
        return False
    if reason is not None:
        logger.info("%s stays on sentence-transformers: %s", resolved.model_id, reason)
    return reason is None


__all__ = ["STAMP_FILE", "NativeOnnxEmbedder", "check_native", "compare", "load_native", "read_stamp"]
