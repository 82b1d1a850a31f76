"""The scale measurement at small sizes: what it stores, what it reports, and the store it leaves behind.

Behaviour only (counts, keys, searchability after reopening, the outgrown note); no timing is
asserted. The real curve is run by ``scripts/scale.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from config import load_settings
from embedder import make_embedder
from evaluation.scale import COLLECTION, Corpus, measure_scale, scale_settings, summary
from retrieval.engine import search
from store.client import open_client
from store.core import store_for

FIGURES = {
    "size",
    "ingest_chunks_per_s",
    "ingest_last_step_chunks_per_s",
    "ingest_cpu_ms_per_chunk",
    "process_import_s",
    "process_open_s",
    "process_first_search_s",
    "process_peak_rss_mb",
    "process_s",
    "open_s",
    "first_search_s",
    "first_dense_ms",
    "dense_p50_ms",
    "dense_p95_ms",
    "first_hybrid_ms",
    "hybrid_p50_ms",
    "hybrid_p95_ms",
    "rss_mb",
    "peak_rss_mb",
    "load_average",
}


def test_the_corpus_is_deterministic_and_one_paragraph_is_one_chunk(tmp_path: Path) -> None:
    first = Corpus(seed=3).write_files(tmp_path / "a", 0, 3)
    again = Corpus(seed=3).write_files(tmp_path / "b", 0, 3)
    assert [p.read_text() for p in first] == [p.read_text() for p in again]
    assert all(p.read_text().count("\n\n") == 9 for p in first)  # 10 paragraphs
    assert len(set(Corpus(seed=3).queries(20))) == 20


def test_the_store_grows_to_each_size_and_stays_searchable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = load_settings(model={"backend": "fake"}, qdrant={"local_max_points": 1500})
    caplog.set_level(logging.WARNING, logger="store.core")
    result = measure_scale(base, (1000, 2000), folder=tmp_path, step_chunks=400, queries=5)
    points, steps = result["points"], result["steps"]
    assert [point["size"] for point in points] == [1000, 2000]
    assert all(set(point) == FIGURES for point in points)
    assert sum(step["step_chunks"] for step in steps) == 2000
    assert [step["chunks"] for step in steps] == [400, 800, 1000, 1400, 1800, 2000]
    assert all(step["chunks_per_s"] > 0 and step["cpu_ms_per_chunk"] > 0 for step in steps)
    assert result["settings"]["model"] == "fake-hashing-embedder"
    headline = summary(result)
    assert headline["size"] == 2000 and headline["rate_ratio"] > 0
    assert not (tmp_path / "files").exists()  # each call's files are removed after it

    # Past the tiny limit (1500), each of the two ingest calls after it said so once.
    notes = [r.getMessage() for r in caplog.records if "serves well" in r.getMessage()]
    assert len(notes) == 2 and "holds 1,800 chunks" in notes[0] and "holds 2,000 chunks" in notes[1]

    settings = scale_settings(base, tmp_path)
    store = store_for(settings, COLLECTION, client=open_client(settings))
    assert store.count() == 2000 and len(store.documents()) == 200
    query = " ".join(Corpus().text(123).split()[:12])  # file 123's first words, as stored
    hits = search(query, store=store, embedder=make_embedder(settings.model), mode="hybrid").hits
    assert hits[0].file_name == "doc-0000123.txt"
    store.client.close()


def test_a_real_model_store_is_grown_in_its_name_and_its_own_rate_measured(tmp_path: Path) -> None:
    """The filler grows the store for the "real" model (here a fake of another dimension), which ingests a call at 0 and at each size."""
    from embedder.backends import FakeEmbedder
    from evaluation.scale import FillerEmbedder

    real = FakeEmbedder(dimension=32, max_seq_length=200)
    filler = FillerEmbedder(real)
    assert (filler.model_id, filler.dimension, filler.max_seq_length) == (real.model_id, 32, 200)
    assert filler.token_budget("Represent the document:") == real.token_budget("Represent the document:")
    assert filler.embed(["a b c"], None).shape == (1, 32)

    base = load_settings(model={"backend": "fake"})
    result = measure_scale(
        base,
        (600,),
        folder=tmp_path,
        embedder=real,
        step_chunks=300,
        queries=4,
        fresh=False,
        filler=True,
        real_step_chunks=40,
    )
    point = result["points"][0]
    assert {"real_chunks_per_s", "real_step_chunks", "real_cpu_ms_per_chunk"} <= set(point)
    zero = result["real_at_zero"]
    assert 0 < zero["size"] <= 20 and zero["real_step_chunks"] > 0  # after one warm call of one file
    real_steps = [step for step in result["steps"] if step.get("real")]
    assert len(real_steps) == 3  # warm, at 0 and at 600
    assert point["size"] == sum(step["step_chunks"] for step in result["steps"])  # the real call first
    headline = summary(result)
    assert headline["real_rate_ratio"] > 0 and "process_open_plus_first_search_s" not in headline

    settings = scale_settings(base, tmp_path)
    store = store_for(settings, COLLECTION, client=open_client(settings))
    assert store.count() == point["size"]
    record = store.require_record()
    assert (record.model, record.dimension) == (real.model_id, 32)  # recorded in the real model's name
    store.client.close()


def test_the_bench_scale_part_measures_the_real_model_in_a_fresh_process_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bench``'s scale part at tiny sizes: the fresh process loads the store's model (here the fake one)."""
    import json

    from app.cli import main

    skip = "latency,throughput,reingest,memory,cold,footprint,accuracy"
    scale = ["--scale-sizes", "300,600", "--scale-real-chunks", "20"]
    data = ["--data", str(tmp_path / "no-shared-data")]
    status = main(["bench", "--backend", "fake", "--skip", skip, *scale, *data, "--json"])
    assert status == 0
    figures = json.loads(capsys.readouterr().out)
    points = figures["scale"]["points"]
    # grown to each size, then the real call
    assert [point["size"] for point in points] == [300 + 20, 600 + 20]
    assert all(point["process_peak_rss_mb"] > 0 for point in points)
    assert figures["scale_size"] == points[-1]["size"] and figures["scale_real_rate_ratio"] > 0
    assert figures["scale_process_open_plus_first_search_s"] > 0
