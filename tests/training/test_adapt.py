"""`adapt_collection` on the tiny INSTRUCTOR fixture: data, training and re-embedding, resumable.

The collection is ingested with the tiny fixture model (a real sentence-transformers model);
adapting it builds label-free records from its chunks, trains that model for a few steps and
re-embeds the collection into a new one. Every stage is real; a run takes seconds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pdfgen import TOPICS, long_text
from testdata import FIXTURES

from app.cli import main
from config import Settings, load_settings, override
from embedder import FakeEmbedder, make_embedder
from ingest import discover, ingest_files
from ingest.reembed import derived_from
from retrieval.engine import search
from store.client import open_client
from store.core import VectorStore
from training.adapt import STAGES, AdaptEvent, adapt_collection, default_work_dir
from training.errors import AdaptCancelledError, TrainingError
from training.medi import read_medi
from training.trainer import RECORD_FILE

BASE = FIXTURES / "tiny-instructor" / "model"
NAMES = ["volcano", "bread", "glacier", "chess", "photosynthesis"]


def tiny_settings(tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=str(tmp_path / "data"),
        model={"name": str(BASE), "device": "cpu", "runtime": "torch", "batch_size": 8},
        chunk={"size": 200, "overlap": 16},
        qdrant={"collection": "papers"},
        train={"batch_size": 4, "mini_batch_size": 2, "save_steps": 1, "logging_steps": 1, "max_steps": 2},
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return tiny_settings(tmp_path)


@pytest.fixture
def source(tmp_path: Path, settings: Settings) -> Iterator[VectorStore]:
    client = open_client(settings)
    store = VectorStore(client, "papers")
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in NAMES:
        assert name in TOPICS
        (folder / f"{name}.txt").write_text(f"# {name.title()}\n\n" + long_text(name, 3), encoding="utf-8")
    files, failures = discover([folder])
    assert not failures
    ingest_files(files, settings=settings, embedder=make_embedder(settings, cache=False), store=store)
    assert store.count() > 0
    yield store
    client.close()


def _snapshot(store: VectorStore) -> tuple[Any, ...]:
    records, _ = store.client.scroll(store.collection, limit=10_000, with_payload=True, with_vectors=True)
    points = {str(r.id): (r.payload, r.vector) for r in records}
    return store.require_record().model_dump(), points, [m.model_dump() for m in store.documents()]


def test_adapt_builds_data_trains_and_reembeds_then_resumes(settings: Settings, source: VectorStore) -> None:
    before = _snapshot(source)
    events: list[AdaptEvent] = []

    result = adapt_collection(settings, collection="papers", client=source.client, progress=events.append)

    assert _snapshot(source) == before  # the collection itself is untouched
    work = default_work_dir(settings, "papers")
    assert result.target == "papers-adapted" and result.work_dir == work and result.reused == ()
    assert result.base_model == str(BASE.resolve())
    records = read_medi(result.data)
    assert records and result.data == work / "data.jsonl"
    assert set(result.records) == {r.task for r in records} and "keywords" in result.records
    assert (result.model / RECORD_FILE).is_file() and result.train.steps == 2
    assert result.train.record["base_model"] == str(BASE.resolve())
    # Progress: every stage, in order, ending complete.
    stages = [event.stage for event in events]
    assert list(dict.fromkeys(stages)) == list(STAGES)
    last = {event.stage: event for event in events}
    assert last["train"].done == last["train"].total == 2
    assert last["reembed"].done == last["reembed"].total == source.count()

    target = VectorStore(source.client, "papers-adapted")
    record = target.require_record()
    adapted = make_embedder(override(settings, model={"name": str(result.model)}), cache=False)
    assert record.model == adapted.model_id == str(result.model.resolve())
    assert record.instructions == source.require_record().instructions
    origin = derived_from(record)
    assert origin is not None and origin["collection"] == "papers" and origin["model"] == str(BASE.resolve())
    assert result.reembed.complete and target.count() == source.count()
    hits = search("magma chamber eruption", store=target, embedder=adapted, top_k=3).hits
    assert hits
    assert "papers-adapted" in result.switch and str(result.model) in result.switch

    again = adapt_collection(settings, collection="papers", client=source.client)
    assert again.reused == STAGES  # every stage was complete: nothing built, trained or embedded
    assert again.train.seconds == 0.0 and again.reembed.chunks_embedded == 0
    assert _snapshot(source) == before


def test_cancel_in_training_then_resume(settings: Settings, source: VectorStore) -> None:
    cancel = threading.Event()

    def cancel_at_first_step(event: AdaptEvent) -> None:
        if event.stage == "train" and event.done >= 1:
            cancel.set()

    settings = override(settings, train={"max_steps": 3})
    with pytest.raises(AdaptCancelledError, match="run it again to resume"):
        adapt_collection(
            settings, collection="papers", client=source.client, progress=cancel_at_first_step, cancel=cancel
        )
    work = default_work_dir(settings, "papers")
    assert (work / "data.jsonl").is_file()
    assert list((work / "model" / "checkpoints").glob("checkpoint-*"))  # saved before stopping
    assert not VectorStore(source.client, "papers-adapted").exists()

    steps: list[int] = []
    result = adapt_collection(
        settings,
        collection="papers",
        client=source.client,
        progress=lambda e: steps.append(e.done) if e.stage == "train" else None,
    )
    assert result.reused == ("data",) and result.train.steps == 3
    assert steps[0] >= 2  # continued from the checkpoint, not from step 1
    assert result.reembed.complete


def test_no_resume_starts_over(settings: Settings, source: VectorStore) -> None:
    first = adapt_collection(settings, collection="papers", client=source.client, target="papers-v2")
    trained_at = first.train.record["created_at"]
    again = adapt_collection(
        settings, collection="papers", client=source.client, target="papers-v2", resume=False
    )
    assert again.reused == () and again.train.seconds > 0
    record = VectorStore(source.client, "papers-v2").require_record()
    origin = derived_from(record)
    assert origin is not None and origin["adapted_model"]["trained_at"] == again.train.record["created_at"]
    assert again.reembed.copied == again.reembed.documents  # rebuilt with the new weights
    assert trained_at <= again.train.record["created_at"]


def test_refusals(tmp_path: Path, settings: Settings, source: VectorStore) -> None:
    with pytest.raises(TrainingError, match="is the collection itself"):
        adapt_collection(settings, collection="papers", target="papers", client=source.client)
    fake = VectorStore(source.client, "fake")
    files, _ = discover([tmp_path / "docs"])
    ingest_files(files, settings=settings, embedder=FakeEmbedder(), store=fake)
    with pytest.raises(TrainingError, match="fake embedder"):
        adapt_collection(settings, collection="fake", client=source.client)
    work = default_work_dir(settings, "papers")
    work.mkdir(parents=True)
    (work / "adapt.json").write_text('{"collection": "other"}', encoding="utf-8")
    with pytest.raises(TrainingError, match="belongs to the adaptation of collection 'other'"):
        adapt_collection(settings, collection="papers", client=source.client)


def test_cli_adapt_prints_the_switch_and_resumes(
    tmp_path: Path, settings: Settings, source: VectorStore, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    source.client.close()  # the command opens the embedded store itself
    for key, value in {"BATCH_SIZE": "4", "MINI_BATCH_SIZE": "2", "SAVE_STEPS": "1"}.items():
        monkeypatch.setenv(f"INSTRUCTOR_SEARCH_TRAIN__{key}", value)
    common = ["--data-dir", str(settings.data_dir), "--model", str(BASE), "--runtime", "torch"]
    argv = ["adapt", "--collection", "papers", "--max-steps", "1", "--no-progress", *common]

    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] == "papers-adapted" and out["train"]["steps"] == 1 and out["reused"] == []
    assert out["reembed"]["copied"] == out["reembed"]["documents"] == len(NAMES)

    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "adapted papers -> papers-adapted" in text and "(kept from an earlier run)" in text
    assert "instructor-search search QUERY --collection papers-adapted (its fine-tuned model" in text

    # The adapted collection is searched with the model it records: no --model, nothing refused,
    # while the original collection still answers with the base model.
    for collection in ("papers-adapted", "papers"):
        assert main(["search", "how do glaciers form", "--collection", collection, "--json", *common]) == 0
        hits = json.loads(capsys.readouterr().out)
        assert hits["hits"], collection

    assert main(["adapt", "--collection", "nothing", *common]) == 1
    assert "does not exist" in capsys.readouterr().err
