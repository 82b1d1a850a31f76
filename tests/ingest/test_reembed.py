"""Re-embedding a collection under another model: same payloads and manifests, new vectors, resumable.

The source is built with the fake embedder; the target is embedded with the tiny fixture model
(a real sentence-transformers model, so its vectors, dimension and id differ from the source's).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from crashes import Crash, killable
from pdfgen import long_text
from testdata import FIXTURES

from config import Settings, override
from embedder import Embedder, FakeEmbedder, make_embedder
from ingest import discover, ingest_files
from ingest.errors import IngestError
from ingest.reembed import derived_from, reembed_collection
from representations.dense import DENSE_VECTOR
from representations.sparse import SPARSE_VECTOR
from retrieval.engine import search
from store.core import VectorStore
from store.errors import CollectionMismatchError

TINY = FIXTURES / "tiny-instructor" / "model"
TOPICS = ["volcano", "bread", "glacier", "chess"]


@pytest.fixture(scope="module")
def tiny() -> Embedder:
    return make_embedder(
        override(
            Settings(), model={"backend": "sentence-transformers", "name": str(TINY), "runtime": "torch"}
        ),
        cache=False,
    )


def _source(tmp_path: Path, settings: Settings, store: VectorStore, topics: list[str] = TOPICS) -> None:
    folder = tmp_path / "docs"
    folder.mkdir(exist_ok=True)
    for topic in topics:
        (folder / f"{topic}.txt").write_text(long_text(topic, 2), encoding="utf-8")
    sources, failures = discover([folder])
    assert not failures
    report = ingest_files(sources, settings=settings, embedder=FakeEmbedder(), store=store)
    assert all(f.status == "ingested" for f in report.files)


def _points(store: VectorStore) -> dict[str, tuple[dict[str, Any], Any]]:
    records, _ = store.client.scroll(store.collection, limit=10_000, with_payload=True, with_vectors=True)
    return {str(r.id): (r.payload or {}, r.vector) for r in records}


def _snapshot(store: VectorStore) -> tuple[Any, ...]:
    record = store.require_record()
    return (record.model_dump(), _points(store), [m.model_dump() for m in store.documents()])


def _target(store: VectorStore, name: str = "adapted") -> VectorStore:
    return VectorStore(store.client, name)


def _dense(vector: Any) -> list[float]:
    return list(vector[DENSE_VECTOR] if isinstance(vector, dict) else vector)


def test_payloads_kept_vectors_new_record_names_model(
    tmp_path: Path, settings: Settings, store: VectorStore, tiny: Embedder
) -> None:
    _source(tmp_path, settings, store)
    before = _snapshot(store)
    target = _target(store)
    seen: list[tuple[int, int]] = []

    report = reembed_collection(
        store, target, settings=settings, embedder=tiny, progress=lambda d, t: seen.append((d, t))
    )

    assert _snapshot(store) == before  # the source is never written
    source_points, target_points = _points(store), _points(target)
    assert report.complete and report.copied == report.documents == len(TOPICS)
    assert report.points == target.count() == store.count() == len(target_points)
    assert target.count(pending=True) == target.count()  # nothing left pending
    assert set(target_points) == set(source_points)
    instruction = store.require_record().instruction_set.document
    for point_id, (payload, vector) in target_points.items():
        assert payload == source_points[point_id][0]  # identical payloads
        dense = _dense(vector)
        assert len(dense) == tiny.dimension != len(_dense(source_points[point_id][1]))
        expected = tiny.embed([payload["page_content"]], instruction)[0]
        np.testing.assert_allclose(dense, expected, atol=1e-5)
        source_vector = source_points[point_id][1]
        assert set(vector) == set(source_vector) == {DENSE_VECTOR, SPARSE_VECTOR}
        assert vector[SPARSE_VECTOR] == source_vector[SPARSE_VECTOR]  # BM25 needs no model: the same
    assert [m.model_dump() for m in target.documents()] == before[2]  # the same manifests
    record, source_record = target.require_record(), store.require_record()
    assert record.model == tiny.model_id and record.dimension == tiny.dimension
    assert record.instructions == source_record.instructions and record.domain == source_record.domain
    assert record.chunking == source_record.chunking
    assert record.representations == source_record.representations
    assert derived_from(record) == {"collection": store.collection, "model": "fake-hashing-embedder"}
    assert seen[0] == (0, store.count()) and seen[-1] == (store.count(), store.count())

    result = search("magma chamber volcano eruption", store=target, embedder=tiny, top_k=3)
    assert result.hits and result.model == tiny.model_id
    assert {hit.file_name for hit in result.hits} <= {f"{t}.txt" for t in TOPICS}


def test_killed_run_resumes_skipping_committed_documents(
    tmp_path: Path, settings: Settings, store: VectorStore, tiny: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _source(tmp_path, settings, store)
    total = store.count()
    settings = override(settings, model={"batch_size": 3})  # batches that end inside documents
    assert total > 2 * settings.model.batch_size
    target = _target(store)
    dead = killable(monkeypatch)

    def die_after_first_batch(done: int, _total: int) -> None:
        if done > 0:
            dead.set()
            raise Crash("killed after the first batch")

    with pytest.raises(Crash):
        reembed_collection(store, target, settings=settings, embedder=tiny, progress=die_after_first_batch)
    dead.clear()
    stored = {m.source for m in target.documents()}
    committed = len(stored)
    remaining = sum(m.chunks for m in store.documents() if m.source not in stored)
    assert 0 < committed < len(TOPICS)
    assert target.write_interrupted() and target.count(pending=True) > target.count()  # what a kill leaves

    resumed = reembed_collection(store, target, settings=settings, embedder=tiny)

    assert resumed.complete and resumed.skipped == committed
    assert resumed.copied == len(TOPICS) - committed
    assert resumed.repaired > 0  # the killed run's pending chunks
    assert resumed.chunks_embedded == remaining < total  # committed documents are not embedded again
    assert not target.write_interrupted()
    assert target.count(pending=True) == target.count() == total
    source_points = _points(store)
    assert {k: p for k, (p, _) in _points(target).items()} == {k: p for k, (p, _) in source_points.items()}


def test_cancel_keeps_committed_documents_and_resumes(
    tmp_path: Path, settings: Settings, store: VectorStore, tiny: Embedder
) -> None:
    _source(tmp_path, settings, store)
    settings = override(settings, model={"batch_size": 3})
    target = _target(store)
    cancel = threading.Event()

    def cancel_after_first_batch(done: int, _total: int) -> None:
        if done > 0:
            cancel.set()

    first = reembed_collection(
        store, target, settings=settings, embedder=tiny, progress=cancel_after_first_batch, cancel=cancel
    )
    assert first.cancelled and not first.complete and 0 < first.copied < len(TOPICS)
    assert target.count(pending=True) == target.count()  # rolled back to committed documents
    assert not target.write_interrupted()

    second = reembed_collection(store, target, settings=settings, embedder=tiny)
    assert second.complete and second.skipped == first.copied and second.copied == len(TOPICS) - first.copied
    assert target.count() == store.count()

    third = reembed_collection(store, target, settings=settings, embedder=tiny)
    assert third.copied == 0 and third.chunks_embedded == 0 and third.skipped == len(TOPICS)


def test_target_follows_the_source_documents(
    tmp_path: Path, settings: Settings, store: VectorStore, tiny: Embedder
) -> None:
    _source(tmp_path, settings, store)
    target = _target(store)
    reembed_collection(store, target, settings=settings, embedder=tiny)
    gone = store.documents()[0].source
    store.delete_document(gone)

    again = reembed_collection(store, target, settings=settings, embedder=tiny)

    assert again.removed == 1 and again.copied == 0
    assert [m.source for m in target.documents()] == [m.source for m in store.documents()]
    assert target.count() == store.count()


def test_extra_representations_rebuilt_with_the_new_model(tmp_path: Path, tiny: Embedder) -> None:
    from store.client import open_client

    settings = override(
        Settings(),
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake", "batch_size": 8, "sort_window": 1},
        chunk={"size": 60, "overlap": 10},
        index={"keywords": {"enabled": True}, "sentences": {"enabled": True}},
    )
    client = open_client(settings)
    try:
        store = VectorStore(client, "papers")
        _source(tmp_path, settings, store, TOPICS[:2])
        target = _target(store)
        reembed_collection(store, target, settings=settings, embedder=tiny)
        source_points = _points(store)
        for point_id, (payload, vector) in _points(target).items():
            assert payload == source_points[point_id][0]  # key phrases as stored
            assert set(vector) == set(source_points[point_id][1])  # every named vector
            assert len(vector["keywords"]) == tiny.dimension
        hits = search("volcano", store=target, embedder=tiny, mode="keywords", top_k=2).hits
        assert hits
    finally:
        client.close()


def test_refuses_the_source_itself_a_foreign_target_and_another_model(
    tmp_path: Path, settings: Settings, store: VectorStore, tiny: Embedder
) -> None:
    _source(tmp_path, settings, store, TOPICS[:1])
    with pytest.raises(IngestError, match="is the source"):
        reembed_collection(store, _target(store, store.collection), settings=settings, embedder=tiny)

    other = _target(store, "other")
    sources, _ = discover([tmp_path / "docs"])
    ingest_files(sources, settings=settings, embedder=FakeEmbedder(), store=other)
    with pytest.raises(IngestError, match="is not a re-embedding"):
        reembed_collection(store, other, settings=settings, embedder=tiny)

    target = _target(store)
    reembed_collection(store, target, settings=settings, embedder=tiny)
    with pytest.raises(CollectionMismatchError, match="model"):
        reembed_collection(store, target, settings=settings, embedder=FakeEmbedder(dimension=32))
