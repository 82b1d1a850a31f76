"""Speed features that must stay correct: the embedding cache, runtimes, length-sorted batching.

Timings are measured by ``instructor-search bench`` (docs/benchmarks.md), never here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pdfgen import TOPICS, long_text, write_pdf

from config import Settings, load_settings
from embedder import FakeEmbedder, make_embedder
from embedder.base import Vectors, unwrap
from embedder.cache import CachedEmbedder, EmbeddingCache, text_key
from embedder.runtime import RuntimeUnavailableError, export_folder
from ingest import discover, ingest_files
from store.client import open_client
from store.core import VectorStore

FIXTURE_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "tiny-instructor" / "model"
DOC = "Represent the document for retrieval:"
QUERY = "Represent the question for retrieving supporting documents:"


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, recording every text it actually encodes."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[str] = []
        self.calls: list[list[str]] = []

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Vectors:
        self.encoded += list(texts)
        self.calls.append(list(texts))
        return super().embed(texts, instruction, batch_size=batch_size)


def _cached(tmp_path: Path, max_entries: int = 1000) -> tuple[CachedEmbedder, CountingEmbedder]:
    inner = CountingEmbedder()
    return CachedEmbedder(inner, EmbeddingCache(tmp_path / "c.sqlite", max_entries)), inner


# -- the cache ----------------------------------------------------------------------------------------


def test_hit_returns_the_identical_vector_and_encodes_nothing(tmp_path: Path) -> None:
    cached, inner = _cached(tmp_path)
    texts = ["alpha beta", "gamma delta", "alpha beta"]
    first = cached.embed(texts, DOC)
    assert inner.encoded == ["alpha beta", "gamma delta"]  # a repeated text is encoded once
    second = cached.embed(list(reversed(texts)), DOC)
    assert inner.encoded == ["alpha beta", "gamma delta"]
    assert first.tobytes() == second[::-1].tobytes()  # bitwise
    assert first.tobytes() == FakeEmbedder().embed(texts, DOC).tobytes()  # and what the model gives
    assert cached.stats.cache_hits == 4  # one in-call repeat, three on the second call


def test_a_different_instruction_model_or_runtime_never_hits(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, cache)
    cached.embed(["same text"], DOC)
    for instruction in (QUERY, None, ""):
        cached.embed(["same text"], instruction)
    assert inner.encoded == ["same text"] * 4  # None and "" are different instructions too
    other_runtime = CachedEmbedder(inner, cache, runtime="onnx")
    other_runtime.embed(["same text"], DOC)
    other_model = CountingEmbedder()
    other_model.model_id = "another-model"
    CachedEmbedder(other_model, cache).embed(["same text"], DOC)
    assert inner.encoded == ["same text"] * 5 and other_model.encoded == ["same text"]
    keys = {
        text_key("m", "torch", DOC, "t"),
        text_key("m", "onnx", DOC, "t"),
        text_key("m2", "torch", DOC, "t"),
        text_key("m", "torch", QUERY, "t"),
        text_key("m", "torch", None, "t"),
        text_key("m", "torch", "", "t"),
        text_key("m", "torch", DOC, "t2"),
    }
    assert len(keys) == 7


def test_cache_survives_reopening(tmp_path: Path) -> None:
    cached, _ = _cached(tmp_path)
    vectors = cached.embed(["kept across restarts"], DOC)
    cached.cache.close()
    reopened, inner = _cached(tmp_path)
    again = reopened.embed(["kept across restarts"], DOC)
    assert inner.encoded == []
    assert again.tobytes() == vectors.tobytes()


def test_cache_is_bounded_and_evicts_least_recently_used(tmp_path: Path) -> None:
    cached, inner = _cached(tmp_path, max_entries=20)
    cached.embed([f"old {i}" for i in range(10)], DOC)
    cached.embed(["old 0"], DOC)  # used again: recent
    cached.embed([f"new {i}" for i in range(15)], DOC)
    assert len(cached.cache) <= 20
    inner.encoded.clear()
    cached.embed(["old 0"], DOC)
    assert inner.encoded == []  # recently used survived
    cached.embed(["old 5"], DOC)
    assert inner.encoded == ["old 5"]  # least recently used was evicted


def test_cache_is_safe_for_threads(tmp_path: Path) -> None:
    cached, _ = _cached(tmp_path, max_entries=10_000)
    reference = FakeEmbedder()
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for round_ in range(20):
                texts = [f"text {(worker * 7 + round_ + i) % 40}" for i in range(5)]
                got = cached.embed(texts, DOC)
                assert got.tobytes() == reference.embed(texts, DOC).tobytes()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cached.cache) == 40


def test_factory_applies_the_cache_per_settings(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    ingest_embedder = make_embedder(settings)
    assert isinstance(ingest_embedder, CachedEmbedder)
    assert ingest_embedder.cache.path == tmp_path / "data" / "cache" / "embeddings.sqlite"
    assert not isinstance(make_embedder(settings, purpose="query"), CachedEmbedder)
    assert not isinstance(make_embedder(settings.model), CachedEmbedder)
    off = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"}, cache={"ingest": False})
    assert isinstance(make_embedder(off), FakeEmbedder)


# -- ingest: cache hits, only changed chunks re-embedded, length-sorted batches -------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake", "batch_size": 4, "sort_window": 3},
        chunk={"size": 40, "overlap": 0},
    )


def _ingest(paths: list[Path], settings: Settings, embedder: Any) -> Any:
    client = open_client(settings)
    try:
        sources, failures = discover(paths)
        assert not failures
        return ingest_files(sources, settings=settings, embedder=embedder, store=VectorStore(client, "docs"))
    finally:
        client.close()


def _stored(settings: Settings) -> list[dict[str, Any]]:
    client = open_client(settings)
    try:
        points, _ = client.scroll("docs", limit=10_000, with_payload=True)
        return [dict(point.payload or {}) for point in points]
    finally:
        client.close()


def test_reingesting_an_edited_document_embeds_only_its_changed_chunks(
    tmp_path: Path, settings: Settings
) -> None:
    pages = [f"Page {n}.\n\n" + long_text(topic, 2) for n, topic in enumerate(sorted(TOPICS))]
    path = write_pdf(tmp_path / "book.pdf", pages)
    inner = CountingEmbedder()
    embedder = CachedEmbedder(inner, EmbeddingCache(settings.data_dir / "cache.sqlite"))
    first = _ingest([path], settings, embedder)
    assert first.cache_hits == 0 and first.chunks_embedded == len(inner.encoded) > len(pages)
    first_texts = {p["page_content"] for p in _stored(settings)}

    pages[1] = "Page 1, edited.\n\nA completely new paragraph about lighthouses and their keepers."
    write_pdf(path, pages)
    inner.encoded.clear()
    second = _ingest([path], settings, embedder)
    assert second.files[0].status == "replaced"
    stored = _stored(settings)
    new_texts = {p["page_content"] for p in stored} - first_texts
    assert new_texts and set(inner.encoded) == new_texts  # only the edited page's chunks
    assert second.cache_hits == len(stored) - len(new_texts)
    assert second.to_json()["cache_hits"] == second.cache_hits
    assert all(p["metadata"]["page"] == 2 for p in stored if p["page_content"] in new_texts)


def test_length_sorted_batches_keep_every_chunk_once_in_its_file(tmp_path: Path, settings: Settings) -> None:
    paths = [
        write_pdf(tmp_path / f"{i:02d}.pdf", [f"Doc {i}.\n\n" + long_text(topic, 1 + i % 3)])
        for i, topic in enumerate(sorted(TOPICS) * 2)
    ]
    inner = CountingEmbedder()
    report = _ingest(paths, settings, inner)
    stored = _stored(settings)
    assert report.chunks_embedded == len(stored) == sum(f.chunks for f in report.files)
    # Every chunk exactly once, under its own file, with its text at the recorded page offsets.
    assert sorted(inner.encoded) == sorted(p["page_content"] for p in stored)
    keys = [(p["metadata"]["source"], p["metadata"]["chunk_index"]) for p in stored]
    assert len(set(keys)) == len(keys)
    by_source = {result.source: result for result in report.files}
    for payload in stored:
        meta = payload["metadata"]
        assert meta["file_name"] == by_source[meta["source"]].file_name
        assert 0 <= meta["chunk_index"] < by_source[meta["source"]].chunks
        assert f"Doc {int(meta['file_name'][:2])}." in "".join(
            p["page_content"] for p in stored if p["metadata"]["source"] == meta["source"]
        )
    # Batches span files, are cut from windows sorted by tokens, and pad little.
    from ingest.batching import MAX_PADDING, MIN_BATCH

    window = settings.model.batch_size * settings.model.sort_window
    calls = inner.calls
    assert all(len(call) <= settings.model.batch_size for call in calls)
    flat = [inner.count_tokens(text) for call in calls for text in call]
    for start in range(0, len(flat) - len(flat) % window, window):
        assert flat[start : start + window] == sorted(flat[start : start + window])
    for call in calls:
        lengths = [inner.count_tokens(text) + 2 for text in call]
        if len(call) > MIN_BATCH:
            assert 1 - sum(lengths) / (max(lengths) * len(lengths)) <= MAX_PADDING


def test_fake_embedder_counts_instruction_tokens_without_padding() -> None:
    embedder = FakeEmbedder()
    embedder.embed(["one two three", "four"], "Represent the text:")
    assert embedder.stats.instruction_tokens == 2 * 3
    assert embedder.stats.tokens == 4 + 6
    assert embedder.stats.padding_overhead == 0.0


# -- runtimes ---------------------------------------------------------------------------------------------


def test_unknown_runtime_is_refused_with_the_choices() -> None:
    from config import ConfigError

    with pytest.raises(ConfigError, match=r"model\.runtime"):
        load_settings(model={"runtime": "tensorrt"})


def test_missing_onnxruntime_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a)
    )
    settings = load_settings(
        data_dir=str(tmp_path), model={"name": str(FIXTURE_MODEL), "runtime": "onnx", "device": "cpu"}
    )
    with pytest.raises(RuntimeUnavailableError, match=r"pip install onnxruntime.*runtime='torch'"):
        make_embedder(settings)


def test_cli_runtime_option_sets_both_paths() -> None:
    from app.cli import build_parser, settings_from_args

    args = build_parser().parse_args(["search", "q", "--runtime", "onnx-int8", "--backend", "fake"])
    settings = settings_from_args(args)
    assert settings.model.runtime == settings.model.query_runtime == "onnx-int8"


@pytest.fixture(scope="module")
def fixture_texts() -> list[tuple[str, str]]:
    return [
        (
            "Represent the Science title:",
            "3D ActionSLAM: wearable person tracking in multi-floor environments",
        ),
        ("Represent the Wikipedia document for retrieval: ", "Tokyo is the capital of Japan."),
        ("Represent the question:", "why is the sky blue"),
    ]


@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8"])
def test_onnx_export_of_the_t5_fixture_keeps_parity_and_masking(
    tmp_path: Path, runtime: str, fixture_texts: list[tuple[str, str]]
) -> None:
    """The tiny INSTRUCTOR (T5 encoder) exported to ONNX gives the torch vectors, prompt excluded."""
    base = {"name": str(FIXTURE_MODEL), "device": "cpu", "normalize": False}
    torch_embedder = make_embedder(load_settings(data_dir=str(tmp_path), model=base), cache=False)
    onnx_settings = load_settings(data_dir=str(tmp_path), model={**base, "runtime": runtime})
    onnx_embedder = unwrap(make_embedder(onnx_settings, cache=False))
    assert onnx_embedder.runtime == runtime  # type: ignore[attr-defined]
    files = list((tmp_path / "models").glob("*/onnx/*.onnx"))
    assert files, "the export is cached under <data_dir>/models"
    tolerance = 1e-5 if runtime == "onnx" else 0.05
    for instruction, text in fixture_texts:
        want = torch_embedder.embed([text], instruction)
        got = onnx_embedder.embed([text], instruction)
        np.testing.assert_allclose(got, want, atol=tolerance * float(np.abs(want).max()), rtol=0)
        # Masking: a different instruction changes the vector only through attention, as in torch.
        assert not np.allclose(onnx_embedder.embed([text], None), got, atol=1e-7)
    pooling = [m for m in onnx_embedder.model if type(m).__name__ == "Pooling"]  # type: ignore[attr-defined]
    assert [m.include_prompt for m in pooling] == [False]


def test_export_is_reused_and_keyed_by_model(tmp_path: Path) -> None:
    from embedder.loading import resolve_model

    resolved = resolve_model(str(FIXTURE_MODEL))
    folder = export_folder(resolved, tmp_path / "models")
    assert folder == export_folder(resolved, tmp_path / "models")
    assert folder.parent.name.startswith("model-") or "tiny-instructor" in folder.parent.name
    settings = load_settings(
        data_dir=str(tmp_path), model={"name": str(FIXTURE_MODEL), "runtime": "onnx", "device": "cpu"}
    )
    make_embedder(settings, cache=False)
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    make_embedder(settings, cache=False)
    assert (folder / "model.onnx").stat().st_mtime_ns == stamp  # exported once


@pytest.mark.real_model
def test_default_model_onnx_matches_torch_and_excludes_the_instruction(tmp_path: Path) -> None:
    """all-MiniLM-L6-v2 under ONNX Runtime: same vectors as torch, and the prompt stays out of the mean."""
    texts = ["Nutrition and diabetes in older adults.", "Vitamin D deficiency is common in winter. " * 8]
    base = load_settings(data_dir=str(tmp_path))
    torch_embedder = make_embedder(base, runtime="torch", cache=False)
    onnx_embedder = make_embedder(base, runtime="onnx", cache=False)
    instruction = "Represent the Medicine document for retrieval:"
    want = torch_embedder.embed(texts, instruction)
    got = onnx_embedder.embed(texts, instruction)
    assert float(np.min(np.sum(want * got, axis=1))) > 0.99999
    # Prompt tokens excluded from pooling: the vector differs from mean pooling over the prompt too.
    model: Any = onnx_embedder.model  # type: ignore[attr-defined]
    model.set_pooling_include_prompt(include_prompt=True)
    with_prompt = onnx_embedder.embed(texts, instruction)
    model.set_pooling_include_prompt(include_prompt=False)
    assert float(np.max(np.sum(with_prompt * got, axis=1))) < 0.9999


# -- the bench's own arithmetic and a smoke run ----------------------------------------------------------


def test_padding_share_and_top_k_overlap_by_hand() -> None:
    from evaluation.accuracy import top_k_overlap
    from evaluation.throughput import padding_share

    # Batches of 2: [4, 2] pads to 8 (2 padding), [3, 3] to 6 (none): 2 of 14 positions.
    assert padding_share([4, 2, 3, 3], 2) == pytest.approx(2 / 14)
    reference = np.array([[0.9, 0.8, 0.1, 0.0], [0.0, 0.1, 0.2, 0.3]])
    other = np.array([[0.9, 0.1, 0.8, 0.0], [0.0, 0.1, 0.2, 0.3]])
    assert top_k_overlap(reference, other, k=2) == pytest.approx((0.5 + 1.0) / 2)


def test_bench_command_prints_the_headline_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from app.cli import main

    status = main(
        [
            "bench",
            "--backend",
            "fake",
            "--runtimes",
            "torch",
            "--sizes",
            "500",
            "--queries",
            "3",
            "--passages",
            "10",
            "--repeats",
            "1",
            "--pdfs",
            "1",
            "--skip",
            "cold,memory,footprint,scale,accuracy",
            "--data",
            str(tmp_path / "no-shared-data"),
            "--json",
        ]
    )
    assert status == 0
    figures = json.loads(capsys.readouterr().out)
    for key in ("query_p50_ms_500", "query_p95_ms_500", "ingest_ratio", "reingest_ratio", "padding_pipeline"):
        assert isinstance(figures[key], float), key
    assert figures["reingest"]["reingest_chunks_encoded"] <= 2  # only the edited page's chunks
    assert figures["latency"]["torch"]["vector_search_ms_500"] > 0


def test_an_eval_rerun_on_the_same_corpus_encodes_nothing(tmp_path: Path) -> None:
    from beirgen import make_folder

    from evaluation.beir import load_beir
    from evaluation.runner import InstructionChoice, run_beir

    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    dataset = load_beir(make_folder(tmp_path), "test")
    results, encoded = [], []
    for _ in range(2):  # two processes' worth: a fresh embedder over the same cache file each time
        embedder = make_embedder(settings)
        assert isinstance(embedder, CachedEmbedder)
        before = embedder.stats.texts
        results.append(
            run_beir(
                dataset, settings=settings, embedder=embedder, instructions=InstructionChoice.parse("default")
            )
        )
        encoded.append(embedder.stats.texts - before)
        embedder.cache.close()
    assert encoded[0] == 4 + 3  # documents and queries
    assert encoded[1] == 0
    assert results[0].ndcg_at_10 == results[1].ndcg_at_10


def test_a_gpu_device_falls_back_to_torch_unless_onnx_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import embedder.factory as factory

    seen: list[str] = []
    monkeypatch.setattr(
        factory, "_make_uncached", lambda settings, runtime, root, spinning: seen.append(runtime)
    )
    make_embedder(load_settings(model={"device": "cuda"}).model)
    make_embedder(load_settings(model={"device": "cuda", "runtime": "onnx"}).model)
    make_embedder(load_settings().model)
    assert seen == ["torch", "onnx", "onnx"]


def test_bench_without_ndcg_keeps_the_recorded_ndcg(tmp_path: Path) -> None:
    from app.commands.bench import _with_previous_ndcg
    from evaluation.record import save_result

    docs = tmp_path / "docs"
    measured = {"runtime": "onnx-int8", "min_cosine": 0.98, "ndcg_at_10": 0.3137, "ndcg_drop": 0.0022}
    save_result("accuracy", "runtime-onnx-int8", measured, command="bench --ndcg ...", docs=docs)
    rerun = {"runtime": "onnx-int8", "min_cosine": 0.99, "ndcg_at_10": None}
    merged = _with_previous_ndcg(rerun, docs, "runtime-onnx-int8")
    assert merged["min_cosine"] == 0.99  # the new measurement
    assert (merged["ndcg_at_10"], merged["ndcg_drop"]) == (0.3137, 0.0022)  # kept
    assert merged["ndcg_from"].startswith("bench --ndcg ...")
    assert _with_previous_ndcg(rerun, docs, "runtime-torch") == rerun  # nothing recorded: unchanged
