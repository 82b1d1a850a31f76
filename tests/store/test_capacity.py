"""Past ``qdrant.local_max_points`` the user is told, once per ingest and in ``collections info``; qdrant-client's own 20k warning is not shown."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.common import client_warnings
from qdrant_client.local.local_collection import LocalCollection

from app.cli import main
from config import load_settings
from embedder import make_embedder
from ingest.pipeline import ingest_files
from ingest.sources import SourceFile
from store.capacity import outgrown_note
from store.client import open_client
from store.core import outgrown, store_for


def _files(first: int, count: int) -> list[SourceFile]:
    return [
        SourceFile(
            source=f"t:{n}", file_name=f"{n}.txt", data=f"Note {n} about glaciers and rivers.".encode()
        )
        for n in range(first, first + count)
    ]


def test_each_ingest_past_the_limit_says_so_once_with_the_command_that_moves_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        data_dir=str(tmp_path / "data"), model={"backend": "fake"}, qdrant={"local_max_points": 5}
    )
    store = store_for(settings, "notes", client=open_client(settings))
    embedder = make_embedder(settings.model)
    caplog.set_level(logging.WARNING, logger="store.core")
    ingest_files(_files(0, 5), settings=settings, embedder=embedder, store=store)
    assert [
        r for r in caplog.records if "outgrown" in r.getMessage() or "serves well" in r.getMessage()
    ] == []
    assert outgrown(store) is None  # 5 chunks: at the limit, not past it

    ingest_files(_files(5, 2), settings=settings, embedder=embedder, store=store)
    notes = [r.getMessage() for r in caplog.records if "serves well" in r.getMessage()]
    assert len(notes) == 1
    assert "'notes' holds 7 chunks, more than the 5" in notes[0]
    assert "instructor-search collections migrate --collection notes --to-url URL" in notes[0]
    assert outgrown(store) == notes[0]

    caplog.clear()
    ingest_files(_files(7, 3), settings=settings, embedder=embedder, store=store)
    assert len([r for r in caplog.records if "serves well" in r.getMessage()]) == 1  # once per ingest
    store.client.close()


def test_collections_info_shows_the_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(
        data_dir=str(tmp_path / "data"), model={"backend": "fake"}, qdrant={"local_max_points": 2}
    )
    store = store_for(settings, "notes", client=open_client(settings))
    ingest_files(_files(0, 3), settings=settings, embedder=make_embedder(settings.model), store=store)
    store.client.close()
    capsys.readouterr()

    common = ["--data-dir", str(tmp_path / "data"), "--backend", "fake"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSTRUCTOR_SEARCH_QDRANT__LOCAL_MAX_POINTS", "2")
        assert main(["collections", "info", "notes", *common]) == 0
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["points"] == 3 and "holds 3 chunks, more than the 2" in info["outgrown"]
    assert captured.err.startswith("note: collection 'notes' holds 3 chunks")

    assert main(["collections", "info", "notes", *common]) == 0  # the default limit: nothing to say
    assert "outgrown" not in json.loads(capsys.readouterr().out)


def test_no_limit_on_a_server_or_in_memory() -> None:
    server = load_settings(qdrant={"url": "http://localhost:6333"})
    memory = load_settings(qdrant={"path": ":memory:"})
    client = QdrantClient(location=":memory:")
    assert store_for(server, "notes", client=client).local_max_points is None
    assert store_for(memory, "notes", client=client).local_max_points is None
    assert outgrown_note("notes", 10**9, None) is None


def test_qdrant_clients_own_size_warning_is_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalCollection, "LARGE_DATA_THRESHOLD", 5)
    points = [models.PointStruct(id=i, vector=[1.0, float(i)]) for i in range(10)]
    params = models.VectorParams(size=2, distance=models.Distance.COSINE)

    def upsert_seen(client: QdrantClient) -> list[str]:
        monkeypatch.setattr(client_warnings, "SEEN_MESSAGES", set())  # qdrant-client warns once per process
        client.create_collection("c", vectors_config=params)
        client.upsert("c", points=points)
        return [str(w.message) for w in seen if "not recommended" in str(w.message)]

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert len(upsert_seen(QdrantClient(location=":memory:"))) == 1  # the control: qdrant-client warns
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert upsert_seen(open_client(load_settings(qdrant={"path": ":memory:"}))) == []
