"""The torch-free ONNX path: the same vectors, counts and stats as today's ONNX path, without torch.

The reference everywhere is the current ONNX path: the sentence-transformers model with its
transformer replaced by the ONNX Runtime session (embedder.runtime), built by the first
``make_embedder`` call of a fresh data folder, which exports. The second call of the same folder
builds the torch-free embedder from that export.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from config import Settings, load_settings
from embedder import InstructionSet, SentenceTransformerEmbedder, make_embedder
from embedder.base import unwrap
from embedder.cache import CachedEmbedder
from embedder.loading import resolve_model
from embedder.modelspec import NativeUnsupportedError, read_spec
from embedder.onnx_native import STAMP_FILE, NativeOnnxEmbedder, compare, load_native, read_stamp
from embedder.pooling import POOLING_MODES, pool
from embedder.runtime import ONNX_FILE, SPINNING_ENTRY, export_folder, make_ort_module

pytestmark = pytest.mark.real_model

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_MODEL = ROOT / "tests" / "fixtures" / "tiny-instructor" / "model"
DOC = InstructionSet.for_retrieval().document
QUERY = InstructionSet.for_retrieval().query
INSTRUCTIONS = [None, DOC, QUERY, "Represent the Medicine sentence:"]
LONG = " ".join(f"pharmacology term{index} dosage" for index in range(200))  # far past 256 tokens
TEXTS = [
    "Aspirin reduces fever and relieves mild pain.",
    LONG,
    "",
    " ",
    "\n\t",
    ".",
    "Vitamin D deficiency is common in winter. " * 6,
    "Café naïve résumé, Straße; 東京 and Москва.",
    "[CLS] literal special tokens [SEP] in a text [PAD]",
    "short",
    LONG + " a different tail that is truncated away",
]


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    cosine = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert float(cosine.min()) >= 0.99999


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(data_dir=str(tmp_path_factory.mktemp("native") / "data"))


@pytest.fixture(scope="module")
def old(settings: Settings) -> SentenceTransformerEmbedder:
    """Today's ONNX path, from the first make_embedder of a fresh data folder (which exports)."""
    embedder = make_embedder(settings, cache=False)
    assert isinstance(embedder, SentenceTransformerEmbedder) and embedder.runtime == "onnx"
    return embedder


@pytest.fixture(scope="module")
def new(settings: Settings, old: SentenceTransformerEmbedder) -> NativeOnnxEmbedder:
    embedder = make_embedder(settings, cache=False)
    assert isinstance(embedder, NativeOnnxEmbedder)
    return embedder


def _fresh_pair(old: SentenceTransformerEmbedder, new: NativeOnnxEmbedder, **kwargs: Any) -> tuple[Any, Any]:
    """Both paths with zeroed stats and the given batch size / normalisation."""
    reference = SentenceTransformerEmbedder(old.model, old.model_id, runtime="onnx", **kwargs)
    native = NativeOnnxEmbedder(new.onnx_file, new.spec, new.model_id, **kwargs)
    return reference, native


# -- when it applies ---------------------------------------------------------------------------------


def test_the_first_run_exports_and_stamps_the_check_the_next_one_is_torch_free(
    settings: Settings, old: SentenceTransformerEmbedder, new: NativeOnnxEmbedder
) -> None:
    folder = export_folder(resolve_model("default"), settings.data_dir / "models")
    stamp = read_stamp(folder)
    assert stamp is not None and stamp["verified"] is True and stamp["reason"] is None
    assert stamp["spec"]["pooling_modes"] == ["mean"] and stamp["spec"]["normalize_module"] is True
    assert new.onnx_file == folder / ONNX_FILE
    assert (new.model_id, new.dimension, new.max_seq_length, new.normalize, new.runtime) == (
        old.model_id,
        old.dimension,
        old.max_seq_length,
        old.normalize,
        old.runtime,
    )


def test_without_a_current_verified_stamp_the_torch_path_is_used(
    settings: Settings, new: NativeOnnxEmbedder
) -> None:
    folder = export_folder(resolve_model("default"), settings.data_dir / "models")
    original = (folder / STAMP_FILE).read_text(encoding="utf-8")
    try:
        for change in ({"verified": False, "reason": "vectors differ"}, {"versions": {"tokenizers": "0.0"}}):
            (folder / STAMP_FILE).write_text(json.dumps({**json.loads(original), **change}), encoding="utf-8")
            assert load_native(settings.model, "onnx", settings.data_dir / "models") is None
        (folder / STAMP_FILE).unlink()
        assert load_native(settings.model, "onnx", settings.data_dir / "models") is None
    finally:
        (folder / STAMP_FILE).write_text(original, encoding="utf-8")
    assert isinstance(load_native(settings.model, "onnx", settings.data_dir / "models"), NativeOnnxEmbedder)


def test_torch_runtime_gpu_hub_models_and_fresh_folders_do_not_apply(
    settings: Settings, tmp_path: Path
) -> None:
    root = settings.data_dir / "models"
    model = settings.model
    assert load_native(model, "torch", root) is None
    assert load_native(model.model_copy(update={"device": "cuda"}), "onnx", root) is None
    assert load_native(model.model_copy(update={"name": "hkunlp/instructor-large"}), "onnx", root) is None
    assert load_native(model, "onnx", tmp_path / "models") is None  # no export there yet
    assert load_native(model.model_copy(update={"backend": "fake"}), "onnx", root) is None


def _spins(session: Any) -> bool:
    """Whether an ONNX Runtime session lets its idle intra-op threads spin (its default)."""
    options = session.get_session_options()
    try:
        return bool(options.get_session_config_entry(SPINNING_ENTRY) != "0")
    except RuntimeError:  # the entry is absent: ONNX Runtime's default, spinning
        return True


def test_query_sessions_do_not_spin_document_sessions_do_and_vectors_agree(
    settings: Settings, old: SentenceTransformerEmbedder, new: NativeOnnxEmbedder
) -> None:
    query = make_embedder(settings, purpose="query", cache=False)
    assert isinstance(query, NativeOnnxEmbedder)
    assert _spins(new.session) and not _spins(query.session)
    ort_module: Any = old.model[0].model
    assert _spins(ort_module.session)
    quiet = make_ort_module(new.onnx_file, ort_module, spinning=False)
    assert not _spins(quiet.session)
    _assert_same(query.embed(TEXTS, QUERY), new.embed(TEXTS, QUERY))


def test_a_model_with_a_dense_layer_stays_on_sentence_transformers(tmp_path: Path) -> None:
    with pytest.raises(NativeUnsupportedError, match=r"Transformer -> Pooling -> Dense -> Normalize"):
        read_spec(FIXTURE_MODEL)
    settings = load_settings(data_dir=str(tmp_path), model={"name": str(FIXTURE_MODEL), "device": "cpu"})
    for _ in range(2):
        assert isinstance(make_embedder(settings, cache=False), SentenceTransformerEmbedder)
    stamp = read_stamp(export_folder(resolve_model(str(FIXTURE_MODEL)), tmp_path / "models"))
    assert stamp is not None and stamp["verified"] is False and "Dense" in stamp["reason"]


# -- same results ------------------------------------------------------------------------------------


@pytest.mark.parametrize("instruction", INSTRUCTIONS)
@pytest.mark.parametrize("batch_size", [3, 32])
def test_vectors_equal_the_current_onnx_path(
    old: SentenceTransformerEmbedder, new: NativeOnnxEmbedder, instruction: str | None, batch_size: int
) -> None:
    """Mixed lengths, truncated and empty-ish texts, with and without an instruction, padded batches."""
    want = old.embed(TEXTS, instruction, batch_size=batch_size)
    got = new.embed(TEXTS, instruction, batch_size=batch_size)
    _assert_same(got, want)
    assert np.allclose(got[1], got[-1], atol=1e-6)  # what lies past the limit does not count
    one_by_one = np.vstack([new.embed([text], instruction) for text in TEXTS])
    _assert_same(one_by_one, want)  # a text's vector does not depend on its batch


def test_the_instruction_is_a_prompt_left_out_of_the_pooling(
    old: SentenceTransformerEmbedder, new: NativeOnnxEmbedder
) -> None:
    prompt = new.prompt(DOC)
    assert prompt == DOC + " "
    inputs, length = new.features([TEXTS[0]], prompt)
    want = old.model.preprocess([TEXTS[0]], prompt=prompt)
    np.testing.assert_array_equal(inputs["input_ids"], want["input_ids"].numpy())
    assert length == want["prompt_length"] == 1 + new.instruction_tokens(DOC)  # [CLS] and the instruction
    # Pooled over the prompt too, the vector would differ; glued text is not what runs.
    model: Any = old.model
    model.set_pooling_include_prompt(include_prompt=True)
    try:
        with_prompt = old.embed([TEXTS[0]], DOC)
    finally:
        model.set_pooling_include_prompt(include_prompt=False)
    got = new.embed([TEXTS[0]], DOC)
    assert float(np.sum(with_prompt * got)) < 0.9999
    _assert_same(got, old.embed([TEXTS[0]], DOC))


def test_token_counts_budgets_and_stats_are_equal(
    old: SentenceTransformerEmbedder, new: NativeOnnxEmbedder
) -> None:
    reference, native = _fresh_pair(old, new, batch_size=4)
    for text in [*TEXTS, DOC, "hello world"]:
        assert native.count_tokens(text) == reference.count_tokens(text)
    for instruction in [*INSTRUCTIONS, "", "   "]:
        assert native.instruction_tokens(instruction) == reference.instruction_tokens(instruction)
        assert native.token_budget(instruction) == reference.token_budget(instruction)
        reference.embed(TEXTS, instruction)
        native.embed(TEXTS, instruction)
    assert native.stats == reference.stats
    assert native.stats.truncated == 2 * 6 and native.stats.padded_tokens > native.stats.tokens


def test_a_max_seq_length_override_and_unnormalised_vectors_match(
    old: SentenceTransformerEmbedder, new: NativeOnnxEmbedder
) -> None:
    model: Any = old.model
    model.max_seq_length = 32
    try:
        reference = SentenceTransformerEmbedder(model, old.model_id, runtime="onnx", normalize=False)
        native = NativeOnnxEmbedder(new.onnx_file, new.spec, new.model_id, normalize=False, max_seq_length=32)
        assert native.max_seq_length == reference.max_seq_length == 32
        assert native.token_budget(DOC) == reference.token_budget(DOC)
        for instruction in (None, DOC):
            _assert_same(native.embed(TEXTS, instruction), reference.embed(TEXTS, instruction))
        assert native.stats == reference.stats
        assert compare(reference, native) is None
    finally:
        model.max_seq_length = 256


def test_compare_names_what_differs(old: SentenceTransformerEmbedder, new: NativeOnnxEmbedder) -> None:
    wrong = NativeOnnxEmbedder(new.onnx_file, new.spec, new.model_id, max_seq_length=128)
    assert compare(old, wrong) == "max_seq_length 128 differs from sentence-transformers' 256"
    assert compare(old, new) is None


def test_int8_matches_the_current_int8_path(settings: Settings, new: NativeOnnxEmbedder) -> None:
    first = make_embedder(settings, runtime="onnx-int8", cache=False)  # quantises, through torch
    second = make_embedder(settings, runtime="onnx-int8", cache=False)
    assert isinstance(first, SentenceTransformerEmbedder) and isinstance(second, NativeOnnxEmbedder)
    assert second.runtime == "onnx-int8" and second.onnx_file.name == "model_qint8.onnx"
    for instruction in (None, DOC):
        _assert_same(second.embed(TEXTS, instruction), first.embed(TEXTS, instruction))


# -- the embedding cache and LangChain ---------------------------------------------------------------


def test_the_embedding_cache_wraps_the_torch_free_embedder(
    settings: Settings, new: NativeOnnxEmbedder
) -> None:
    cached = make_embedder(settings)
    assert isinstance(cached, CachedEmbedder) and isinstance(unwrap(cached), NativeOnnxEmbedder)
    assert cached.runtime == "onnx"
    first = cached.embed(TEXTS[:3], DOC)
    second = cached.embed(TEXTS[:3], DOC)
    assert first.tobytes() == second.tobytes() and cached.stats.cache_hits == 3
    _assert_same(first, new.embed(TEXTS[:3], DOC))


def test_langchain_embeddings_run_on_it(old: SentenceTransformerEmbedder, new: NativeOnnxEmbedder) -> None:
    from embedder.langchain import InstructorEmbeddings

    on_new = InstructorEmbeddings(embedder=new, domain="medicine")
    on_old = InstructorEmbeddings(embedder=old, domain="medicine")

    def both(call: str, *args: Any) -> tuple[np.ndarray, np.ndarray]:
        return tuple(
            np.array(getattr(each, call)(*args), dtype=np.float32, ndmin=2) for each in (on_new, on_old)
        )  # type: ignore[return-value]

    _assert_same(*both("embed_documents", TEXTS[:4]))
    _assert_same(*both("embed_query", "which drug lowers a fever?"))


# -- no torch ----------------------------------------------------------------------------------------

_TORCH_FREE = """
import json, sys
from config import load_settings
from embedder import make_embedder
from embedder.base import unwrap
embedder = make_embedder(load_settings(data_dir=sys.argv[1]))
vectors = embedder.embed(["Aspirin reduces fever and relieves mild pain.", ""], sys.argv[2])
heavy = [name for name in ("torch", "transformers", "sentence_transformers") if name in sys.modules]
print(json.dumps({"type": type(unwrap(embedder)).__name__, "heavy": heavy, "vectors": vectors.tolist()}))
"""


def test_the_torch_free_path_never_imports_torch(
    settings: Settings, old: SentenceTransformerEmbedder
) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _TORCH_FREE, str(settings.data_dir), DOC],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["type"] == "NativeOnnxEmbedder"
    assert result["heavy"] == []
    want = old.embed(["Aspirin reduces fever and relieves mild pain.", ""], DOC)
    _assert_same(np.array(result["vectors"], dtype=np.float32), want)


def test_no_embedder_module_imports_torch_at_import_time() -> None:
    """Every module of embedder/ but the INSTRUCTOR drop-in (a SentenceTransformer subclass)."""
    modules = sorted(
        f"embedder.{path.stem}"
        for path in (ROOT / "embedder").glob("*.py")
        if path.stem not in ("__init__", "instructor")
    )
    code = f"import sys\nfor name in {modules!r}: __import__(name)\nprint([m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules])"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True
    )
    assert run.stdout.strip() == "[]"


# -- other pipelines -----------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["right", "left"])
@pytest.mark.parametrize("prompt_length", [None, 0, 3])
@pytest.mark.parametrize("modes", [*[(mode,) for mode in POOLING_MODES], ("cls", "mean", "max")])
def test_numpy_pooling_equals_the_sentence_transformers_module(
    modes: tuple[str, ...], prompt_length: int | None, padding: str
) -> None:
    import torch
    from sentence_transformers.sentence_transformer.modules import Pooling

    rng = np.random.default_rng(7)
    lengths = [9, 5, 4, 1]
    embeddings = rng.normal(size=(4, 9, 6)).astype(np.float32)
    mask = np.zeros((4, 9), dtype=np.int64)
    for row, length in enumerate(lengths):
        if padding == "right":
            mask[row, :length] = 1
        else:
            mask[row, 9 - length :] = 1
    module = Pooling(6, pooling_mode=modes[0] if len(modes) == 1 else modes, include_prompt=False)
    features: dict[str, Any] = {
        "token_embeddings": torch.from_numpy(embeddings),
        "attention_mask": torch.from_numpy(mask),
    }
    if prompt_length is not None:
        features["prompt_length"] = prompt_length
    want = module(features)["sentence_embedding"].numpy()
    got = pool(embeddings, mask, modes, prompt_length)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def _variant(source: Path, target: Path, edit: dict[str, Any]) -> Path:
    """A copy of a model folder (weights linked) with some JSON files replaced or removed (None)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.safetensors", "*.md"))
    for weights in source.glob("*.safetensors"):
        (target / weights.name).symlink_to(weights)
    for name, content in edit.items():
        path = target / name
        if content is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content), encoding="utf-8")
    return target


def _cased(source: Path, *, config_says_lower: bool = False) -> dict[str, Any]:
    """A cased tokenizer: tokenizer.json's normaliser keeps case; tokenizer_config.json agrees unless told not to."""
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["normalizer"]["lowercase"] = False
    config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    return {
        "tokenizer.json": tokenizer,
        "tokenizer_config.json": {**config, "do_lower_case": config_says_lower},
    }


#: Pipelines the torch-free path reproduces: the edits of the default model's folder that make them.
VARIANTS: dict[str, Any] = {
    "cls pooling (legacy flags), no Normalize": lambda source, pooling, modules: {
        "1_Pooling/config.json": {
            **pooling,
            "pooling_mode_mean_tokens": False,
            "pooling_mode_cls_token": True,
        },
        "modules.json": modules[:2],
    },
    "cased tokenizer, do_lower_case, a default prompt, limit 128": lambda source, pooling, modules: {
        **_cased(source),
        "sentence_bert_config.json": {"max_seq_length": 128, "do_lower_case": True},
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: "},
            "default_prompt_name": "query",
        },
    },
    "cased, the limit from the tokenizer and the positions, max and mean pooling": lambda source, pooling, modules: {
        **_cased(source),
        "sentence_bert_config.json": {"do_lower_case": False},
        "1_Pooling/config.json": {"embedding_dimension": 384, "pooling_mode": ["max", "mean"]},
    },
}


def _make_variant(name: str, target: Path, edits: Any) -> Path:
    source = Path(resolve_model("default").location)
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    modules = json.loads((source / "modules.json").read_text(encoding="utf-8"))
    return _variant(source, target, edits(source, pooling, modules))


def _reference_and_native(
    folder: Path, onnx_file: Path
) -> tuple[SentenceTransformerEmbedder, NativeOnnxEmbedder]:
    """The folder's model through sentence-transformers on the ONNX export of the same weights, and torch-free."""
    from embedder.loading import load_sentence_transformer

    model, resolved = load_sentence_transformer(str(folder), device="cpu")
    model[0].model = make_ort_module(onnx_file, model[0].model)
    reference = SentenceTransformerEmbedder(model, resolved.model_id, runtime="onnx", batch_size=4)
    return reference, NativeOnnxEmbedder(onnx_file, read_spec(folder), resolved.model_id, batch_size=4)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_other_pipelines_read_from_their_folders_match_sentence_transformers(
    new: NativeOnnxEmbedder, tmp_path: Path, name: str
) -> None:
    reference, native = _reference_and_native(
        _make_variant(name, tmp_path / "model", VARIANTS[name]), new.onnx_file
    )
    assert compare(reference, native) is None
    for instruction in (None, DOC):
        _assert_same(native.embed(TEXTS, instruction), reference.embed(TEXTS, instruction))
    assert native.stats == reference.stats
    assert native.max_seq_length == reference.max_seq_length


def test_a_folder_whose_tokenizer_files_disagree_fails_the_check(
    new: NativeOnnxEmbedder, tmp_path: Path
) -> None:
    """transformers lowercases by tokenizer_config.json where tokenizer.json does not: the check says so."""
    folder = _make_variant(
        "contradicting",
        tmp_path / "model",
        lambda source, pooling, modules: _cased(source, config_says_lower=True),
    )
    reference, native = _reference_and_native(folder, new.onnx_file)
    reason = compare(reference, native)
    assert reason is not None and reason.startswith("token counts differ")


def test_a_folder_saved_by_sentence_transformers_6_reads_the_same(
    new: NativeOnnxEmbedder, tmp_path: Path
) -> None:
    from embedder.loading import load_sentence_transformer

    model, _ = load_sentence_transformer("default", device="cpu")
    model.save(str(tmp_path / "saved"))
    spec = read_spec(tmp_path / "saved")
    assert {**spec.describe(), "folder": None} == {**new.spec.describe(), "folder": None}
