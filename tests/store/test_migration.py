"""Moving a collection out of the embedded store (store.migration, ``collections migrate``).

No Qdrant server runs here: a second embedded store stands in for the server (qdrant-client's
migration takes any two clients), and an unreachable URL checks the connection error. The copy
to a real server is not tested.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

import app.commands.migrate as migrate_command
from app.cli import main
from config import Settings, load_settings
from embedder import make_embedder
from ingest.pipeline import ingest_files
from ingest.sources import SourceFile
from retrieval.engine import search
from store.client import open_client
from store.core import VectorStore
from store.errors import MigrationError, StoreConnectionError
from store.migration import migrate_collection, plan_migration

TEXTS = {
    "glaciers.txt": "Glaciers carve mountain valleys slowly over thousands of years.",
    "zebras.txt": "Zebras graze on the savanna grass in large herds.",
    "volcano.txt": "Lava from the volcano cooled into black basalt near the sea.",
}


def _settings(tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=str(tmp_path / "data"), model={"backend": "fake"}, qdrant={"collection": "notes"}
    )


def _ingested(settings: Settings) -> None:
    store = VectorStore(open_client(settings), "notes")
    files = [
        SourceFile(source=f"t:{name}", file_name=name, data=text.encode()) for name, text in TEXTS.items()
    ]
    ingest_files(files, settings=settings, embedder=make_embedder(settings.model), store=store)
    store.client.close()


def test_a_collection_and_its_manifests_are_copied_and_searchable_there(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _ingested(settings)
    source = open_client(settings)
    target = QdrantClient(path=str(tmp_path / "target"))  # stands in for the server
    plan = plan_migration(source, target, "notes", url="http://admin:secret@qdrant.example:6333")
    assert [(c.name, c.points) for c in plan.copies] == [("notes", 3), ("notes__documents", 3)]
    assert plan.copies[0].vectors == "dense 64 cosine, bm25 sparse"
    assert plan.target == "http://***@qdrant.example:6333"
    assert "secret" not in "\n".join(plan.lines()) and "notes__documents: 3 points" in "\n".join(plan.lines())
    migrate_collection(source, target, plan, target_local=True)
    before = VectorStore(source, "notes")
    documents, record = before.documents(), before.read_record()
    source.close()
    target.close()

    moved = load_settings(
        data_dir=str(tmp_path / "data"), model={"backend": "fake"}, qdrant={"path": str(tmp_path / "target")}
    )
    store = VectorStore(open_client(moved), "notes")
    assert store.read_record() == record
    assert store.documents() == documents
    assert store.count() == 3
    hits = search("savanna zebras", store=store, embedder=make_embedder(moved.model), mode="hybrid").hits
    assert hits[0].file_name == "zebras.txt"
    store.client.close()


def test_a_collection_already_on_the_target_is_refused_and_nothing_is_copied(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _ingested(settings)
    source = open_client(settings)
    target = QdrantClient(path=str(tmp_path / "target"))
    target.create_collection("notes__documents", vectors_config={})
    with pytest.raises(MigrationError, match=r"'notes__documents' already exist.*nothing was copied"):
        plan_migration(source, target, "notes", url="http://localhost:6333")
    assert [c.name for c in target.get_collections().collections] == ["notes__documents"]
    assert target.count("notes__documents").count == 0
    with pytest.raises(MigrationError, match=r"no collection 'missing' to move"):
        plan_migration(source, target, "missing", url="http://localhost:6333")
    source.close()
    target.close()


def test_an_unreachable_server_is_one_line_naming_the_redacted_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path)
    _ingested(settings)
    source = open_client(settings)
    target = QdrantClient(url="http://admin:secret@127.0.0.1:9", timeout=2)  # nothing listens on port 9
    with pytest.raises(
        StoreConnectionError, match=r"cannot reach the Qdrant server at http://\*\*\*@127\.0\.0\.1:9"
    ):
        plan_migration(source, target, "notes", url="http://admin:secret@127.0.0.1:9")
    source.close()

    args = ["collections", "migrate", "--data-dir", str(tmp_path / "data"), "--collection", "notes"]
    assert main([*args, "--to-url", "http://admin:secret@127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "error: cannot reach the Qdrant server at http://***@127.0.0.1:9"
    )
    assert "secret" not in err


def test_the_dry_run_prints_the_plan_and_copies_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    _ingested(settings)
    target_path = tmp_path / "target"

    def local_target(settings: Settings, url: str, api_key: str | None) -> QdrantClient:
        return QdrantClient(path=str(target_path))  # stands in for the server at ``url``

    monkeypatch.setattr(migrate_command, "open_target", local_target)
    args = ["collections", "migrate", "--data-dir", str(tmp_path / "data"), "--collection", "notes"]
    assert main([*args, "--to-url", "http://qdrant.example:6333", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "move collection 'notes' to http://qdrant.example:6333:",
        "  notes: 3 points (dense 64 cosine, bm25 sparse)",
        "  notes__documents: 3 points (no vectors)",
        "dry run: nothing was copied",
    ]
    check = QdrantClient(path=str(target_path))
    assert check.get_collections().collections == []
    check.close()

    assert main([*args, "--to-url", "http://qdrant.example:6333"]) == 0
    assert "moved 'notes' to http://qdrant.example:6333" in capsys.readouterr().out
    check = QdrantClient(path=str(target_path))
    assert check.count("notes", exact=True).count == 3
    check.upsert("notes__documents", points=[models.PointStruct(id=1, vector={}, payload={})])
    check.close()
    assert main([*args, "--to-url", "http://qdrant.example:6333"]) == 1  # now it is there: refused
    assert "already exist" in capsys.readouterr().err


def test_migrate_refuses_settings_that_point_at_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "collections",
        "migrate",
        "--qdrant-url",
        "http://localhost:6333",
        "--to-url",
        "http://other:6333",
    ]
    assert main([*args, "--data-dir", str(tmp_path / "data")]) == 1
    assert "moves a collection out of the embedded store" in capsys.readouterr().err
