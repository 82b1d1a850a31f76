"""An ingest run's view of the stored manifests: the same manifests as ``documents()``, validated on lookup."""

from __future__ import annotations

from pathlib import Path

from config import load_settings
from embedder import make_embedder
from ingest.pipeline import ingest_files
from ingest.sources import SourceFile
from store.client import open_client
from store.core import VectorStore
from store.manifest import ManifestSnapshot


def _store(tmp_path: Path) -> VectorStore:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    store = VectorStore(open_client(settings), "snap")
    files = [
        SourceFile(
            source=f"t:{i}", file_name=f"f{i}.txt", data=f"Glaciers number {i} carve valleys.".encode()
        )
        for i in range(5)
    ]
    ingest_files(files, settings=settings, embedder=make_embedder(settings.model), store=store)
    return store


def test_the_snapshot_holds_what_documents_lists(tmp_path: Path) -> None:
    store = _store(tmp_path)
    snapshot = store.document_snapshot()
    listed = {manifest.source: manifest for manifest in store.documents()}
    assert sorted(snapshot) == sorted(listed) and len(snapshot) == 5
    assert not snapshot._validated  # nothing validated until it is looked up
    assert snapshot["t:3"] == listed["t:3"] and snapshot.get("t:9") is None
    assert list(snapshot._validated) == ["t:3"]
    assert snapshot.hashes() == {manifest.file_sha256: source for source, manifest in listed.items()}
    store.client.close()


def test_an_empty_or_missing_collection_has_an_empty_snapshot(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    store = VectorStore(open_client(settings), "none")
    assert len(store.document_snapshot()) == 0 and store.document_snapshot().hashes() == {}
    assert ManifestSnapshot({}).get("x") is None
    store.client.close()
