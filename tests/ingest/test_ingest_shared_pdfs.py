"""The real, awkward PDFs of ../shared/data/pdfs: ingested twice, bad files reported, good files searchable."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from app.cli import main
from config import load_settings
from embedder import Embedder, FakeEmbedder
from ingest import discover, ingest_files
from store.client import open_client
from store.core import VectorStore
from store.payload import source_filter

pytestmark = pytest.mark.shared_data


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands (and their subprocesses) keep caches and exports under the test's folder."""
    monkeypatch.setenv("INSTRUCTOR_SEARCH_DATA_DIR", str(tmp_path / "data"))


#: The files that must fail, and a word their reason must contain.
BAD = {
    "empty_page-without-contents.pdf": "no text layer",
    "encrypted_aes256_crazyones.pdf": "password",
    "malformed_header-and-eof-only.pdf": "malformed",
}
#: The files read by OCR (scans, a garbled text layer), and their OCR'd pages.
OCRED = {
    "garbled-text-layer_ranknet-lambdarank.pdf": [1],
    "scanned-image-only_huckleberry-finn-p22.pdf": [1],
    "scanned-image-only_linn-brochure.pdf": [1],
    # pypdf cannot open it; PDFium repairs it and finds 12 characters a page ("Potato 0 new"),
    # under the 16 of a usable layer, so every page is OCR'd too.
    "malformed_damaged-xref_append-page-content.pdf": list(range(1, 31)),
}


def _query_sentence(text: str) -> str:
    """A query that should find a chunk: its sentence with the most words (at most 40 words).

    Text without sentences (a garbled layer has no spaces) gives its first 40 pieces instead.
    """
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", text) if s.strip()]
    best = max(sentences, key=lambda s: len(s.split()))
    if len(best.split()) < 5:
        best = text
    return " ".join(best.split()[:40])


def _assert_searchable(store: VectorStore, embedder: Embedder, top_k: int) -> None:
    record = store.require_record()
    for manifest in store.documents():
        records, _ = store.client.scroll(
            store.collection,
            limit=1,
            with_payload=True,
            scroll_filter=source_filter(manifest.source),
        )
        query = _query_sentence(str((records[0].payload or {})["page_content"]))
        vector = embedder.embed([query], record.instruction_set.query)[0]
        hits = store.client.query_points(
            store.collection, query=vector.tolist(), limit=top_k, with_payload=True
        )
        found = [(p.payload or {})["metadata"]["file_name"] for p in hits.points]
        assert manifest.file_name in found, (manifest.file_name, query, found)


def test_shared_pdfs_twice_fake_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from testdata import shared_path

    folder = shared_path("data", "pdfs")
    argv = ["ingest", str(folder), "--backend", "fake", "--qdrant-path", str(tmp_path / "q"), "--json"]
    assert main(argv) == 1  # some files are bad
    first = json.loads(capsys.readouterr().out)
    assert main(argv) == 1
    second = json.loads(capsys.readouterr().out)
    assert first["points"] == second["points"] > 0

    names = {Path(f["path"]).name: f for f in first["files"]}
    assert {n for n, f in names.items() if f["status"] == "failed"} == set(BAD)
    for name, word in BAD.items():
        assert word in names[name]["error"], names[name]
    good = {n for n, f in names.items() if f["status"] == "ingested"}
    assert good == {path.name for path in folder.iterdir() if path.name not in BAD}
    assert {n: f["ocr_pages"] for n, f in names.items() if f["ocr_pages"]} == OCRED
    assert all(not names[n]["warning"] for n in good)
    again = {Path(f["path"]).name: f["status"] for f in second["files"]}
    assert {n for n, s in again.items() if s == "unchanged"} == good

    client = open_client(load_settings(qdrant={"path": str(tmp_path / "q")}, model={"backend": "fake"}))
    try:
        store = VectorStore(client, "documents")
        assert {m.file_name for m in store.documents()} == good
        multilang = next(m for m in store.documents() if m.file_name.startswith("nonlatin_multilang"))
        records, _ = client.scroll(
            "documents", scroll_filter=source_filter(multilang.source), with_payload=True
        )
        text = "".join(str((r.payload or {})["page_content"]) for r in records)
        assert "Привет, мир" in text and "مرحبا" in text
        # The fake embedder hashes words into 64 buckets (collisions among ~800 chunks): top 10.
        _assert_searchable(store, FakeEmbedder(), top_k=10)
    finally:
        client.close()


@pytest.mark.real_model
def test_shared_pdfs_real_model(tmp_path: Path, real_embedder: Embedder) -> None:
    """The non-academic files (about 80 chunks) with the real model: twice, and searchable."""
    from testdata import shared_path

    folder = tmp_path / "pdfs"
    folder.mkdir()
    for path in shared_path("data", "pdfs").iterdir():
        if not path.name.startswith("academic"):
            (folder / path.name).symlink_to(path)  # read in place, never copied
    settings = load_settings(qdrant={"path": str(tmp_path / "q")})
    client = open_client(settings)
    try:
        store = VectorStore(client, "documents")
        sources, _ = discover([folder])
        first = ingest_files(sources, settings=settings, embedder=real_embedder, store=store)
        second = ingest_files(sources, settings=settings, embedder=real_embedder, store=store)
        assert first.points == second.points > 0 and second.chunks_embedded == 0
        assert {f.file_name for f in first.files if f.status == "failed"} == set(BAD)
        assert first.truncated == 0  # chunks fit the model together with the instruction
        _assert_searchable(store, real_embedder, top_k=5)
    finally:
        client.close()
    shutil.rmtree(folder)
