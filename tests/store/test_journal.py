"""The embedded store's SQLite files are in WAL mode: new collections, older stores on open, and data kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from qdrant_client import QdrantClient, models

from config import load_settings
from embedder import make_embedder
from ingest.pipeline import ingest_files
from ingest.sources import SourceFile
from retrieval.engine import search
from store.client import open_client
from store.core import VectorStore
from store.journal import STORAGE_GLOB, enable_wal, in_wal_mode


def _journal_mode(path: Path) -> str:
    connection = sqlite3.connect(str(path))
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        connection.close()


def test_collections_created_through_the_store_are_in_wal_mode(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    folder = Path(settings.qdrant_location)
    store = VectorStore(open_client(settings), "notes")
    embedder = make_embedder(settings.model)
    files = [SourceFile(source="t:a", file_name="a.txt", data=b"Glaciers carve mountain valleys slowly.")]
    ingest_files(files, settings=settings, embedder=embedder, store=store)
    storage = sorted(folder.glob(STORAGE_GLOB))
    assert [p.parent.name for p in storage] == ["notes", "notes__documents"]
    assert all(in_wal_mode(path) for path in storage)
    store.client.close()
    assert [_journal_mode(path) for path in storage] == ["wal", "wal"]  # what SQLite itself says

    reopened = VectorStore(open_client(settings), "notes")
    hits = search("glaciers valleys", store=reopened, embedder=embedder, mode="dense").hits
    assert [hit.file_name for hit in hits] == ["a.txt"]
    reopened.client.close()


def test_a_store_written_in_rollback_mode_is_switched_on_open_and_keeps_its_points(tmp_path: Path) -> None:
    folder = tmp_path / "qdrant"
    old = QdrantClient(path=str(folder))  # as qdrant-client leaves it: rollback journal
    old.create_collection(
        "legacy", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE)
    )
    old.upsert("legacy", points=[models.PointStruct(id=i, vector=[1.0, float(i), 0.5]) for i in range(5)])
    old.close()
    (path,) = folder.glob(STORAGE_GLOB)
    assert not in_wal_mode(path) and _journal_mode(path) == "delete"

    settings = load_settings(data_dir=str(tmp_path / "data"), qdrant={"path": str(folder)})
    client = open_client(settings)
    assert in_wal_mode(path)
    assert client.count("legacy", exact=True).count == 5
    client.upsert("legacy", points=[models.PointStruct(id=9, vector=[0.0, 1.0, 0.0])])
    client.close()
    again = QdrantClient(path=str(folder))
    assert again.count("legacy", exact=True).count == 6
    again.close()


def test_enable_wal_skips_files_already_switched_and_folders_without_a_store(tmp_path: Path) -> None:
    assert enable_wal(tmp_path / "nothing-here") == 0
    folder = tmp_path / "qdrant"
    client = QdrantClient(path=str(folder))
    client.create_collection("a", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.create_collection("b", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    assert enable_wal(folder) == 2
    assert enable_wal(folder) == 0
    client.close()
