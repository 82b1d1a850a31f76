"""Cancelling a run, an exception escaping it, and the per-file limits: nothing half-stored is left."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pdfgen import long_text, write_pdf

from config import Settings, load_settings
from embedder import FakeEmbedder
from ingest import ProgressEvent, discover, ingest_files
from ingest.sources import file_sha256
from retrieval.engine import search
from store.client import open_client
from store.core import VectorStore


def _run(paths: list[Path], settings: Settings, store: VectorStore, **kw: object):  # type: ignore[no-untyped-def]
    sources, failures = discover(paths)
    assert not failures
    return ingest_files(sources, settings=settings, embedder=FakeEmbedder(), store=store, **kw)  # type: ignore[arg-type]


def _assert_consistent(store: VectorStore) -> None:
    """No write mark, no chunk that no manifest vouches for, every manifest complete."""
    assert not store.write_interrupted()
    assert store.repair(force=True) == 0
    documents = store.documents()
    assert all(store.has_chunks(manifest) for manifest in documents)
    records, _ = store.client.scroll(store.collection, limit=10_000)
    assert len(records) == sum(manifest.chunks for manifest in documents)


def _cancel_when(cancel: threading.Event, file_index: int):  # type: ignore[no-untyped-def]
    """Set ``cancel`` once some chunks of file ``file_index`` are embedded (and their write is queued)."""

    def on_progress(event: ProgressEvent) -> None:
        if event.file_index == file_index and event.stage == "embedding" and event.chunks_done > 0:
            cancel.set()

    return on_progress


def test_cancel_keeps_stored_files_and_rolls_back_the_rest(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    topics = ("volcano", "bread", "chess")
    paths = [write_pdf(tmp_path / f"{t}.pdf", [f"About {t}.\n\n" + long_text(t, 6)]) for t in topics]
    cancel = threading.Event()
    report = _run(paths, settings, store, cancel=cancel, on_progress=_cancel_when(cancel, 1))
    assert [f.status for f in report.files] == ["ingested", "cancelled", "cancelled"]
    assert report.cancelled and not report.failed
    assert report.counts()["cancelled"] == 2 and report.to_json()["cancelled"] is True
    assert "nothing of it was kept" in str(report.files[1].note)
    assert report.rolled_back > 0  # chunks of bread.pdf had been written, then removed
    assert [m.file_name for m in store.documents()] == ["volcano.pdf"]
    assert report.points == report.files[0].chunks
    _assert_consistent(store)
    hits = search("magma chamber eruption", store=store, embedder=FakeEmbedder(), top_k=3).hits
    assert hits and {hit.file_name for hit in hits} == {"volcano.pdf"}
    # The next run stores the cancelled files.
    again = _run(paths, settings, store)
    assert [f.status for f in again.files] == ["unchanged", "ingested", "ingested"]
    _assert_consistent(store)


def test_cancel_during_a_reingest_keeps_the_stored_version(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    doc = write_pdf(tmp_path / "doc.pdf", [long_text("glacier", 6)])
    first = _run([doc], settings, store)
    old_sha = file_sha256(doc.read_bytes())
    write_pdf(doc, [long_text("vaccine", 30)])  # a changed version, several batches long
    cancel = threading.Event()
    report = _run([doc], settings, store, cancel=cancel, on_progress=_cancel_when(cancel, 0))
    [result] = report.files
    assert result.status == "cancelled" and "previously stored version is kept" in str(result.note)
    assert report.rolled_back > 0
    [manifest] = store.documents()
    assert manifest.file_sha256 == old_sha and manifest.chunks == first.files[0].chunks
    assert store.count_source(str(doc.resolve()), sha256=old_sha) == manifest.chunks
    _assert_consistent(store)


def test_cancel_set_before_the_run_stores_nothing(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    doc = write_pdf(tmp_path / "doc.pdf", [long_text("bread", 2)])
    cancel = threading.Event()
    cancel.set()
    report = _run([doc], settings, store, cancel=cancel)
    assert [f.status for f in report.files] == ["cancelled"] and report.points == 0
    _assert_consistent(store)


class _Stop(BaseException):
    """Like Streamlit's StopException: not an Exception."""


def test_an_exception_from_on_progress_rolls_back_and_is_re_raised(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    keep = write_pdf(tmp_path / "keep.pdf", [long_text("chess", 3)])
    _run([keep], settings, store)
    paths = [write_pdf(tmp_path / f"{t}.pdf", [long_text(t, 5)]) for t in ("volcano", "bread", "glacier")]

    def stop(event: ProgressEvent) -> None:
        if event.file_index == 1 and event.stage == "embedding" and event.chunks_done > 0:
            raise _Stop

    with pytest.raises(_Stop):
        _run([keep, *paths], settings, store, on_progress=stop)
    _assert_consistent(store)  # the write mark is cleared, uncommitted chunks are gone
    assert "keep.pdf" in {m.file_name for m in store.documents()}


def test_files_over_the_limits_fail_alone_and_keep_their_stored_version(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake", "batch_size": 8},
        chunk={"size": 30, "overlap": 0},
        ingest={"max_chars_per_file": 5_000, "max_chunks_per_file": 20},
    )
    client = open_client(settings)
    try:
        store = VectorStore(client, settings.qdrant.collection)
        doc = tmp_path / "doc.txt"
        doc.write_text(long_text("bread", 2))
        first = _run([doc], settings, store)
        doc.write_text(long_text("bread", 40))  # the same source grows past max_chars_per_file
        many = tmp_path / "many.txt"
        many.write_text(long_text("chess", 12)[:4_900])  # under the char limit, over 20 chunks
        fine = tmp_path / "fine.txt"
        fine.write_text(long_text("glacier", 1))
        report = _run([doc, many, fine], settings, store)
        statuses = {f.file_name: (f.status, str(f.error)) for f in report.files}
        assert statuses["fine.txt"][0] == "ingested"
        status, error = statuses["doc.txt"]
        assert status == "failed" and "over the limit of 5,000 per file" in error
        assert (
            "ingest.max_chars_per_file" in error and "INSTRUCTOR_SEARCH_INGEST__MAX_CHARS_PER_FILE" in error
        )
        status, error = statuses["many.txt"]
        assert status == "failed" and "over the limit of 20 per file" in error
        assert (
            "ingest.max_chunks_per_file" in error and "INSTRUCTOR_SEARCH_INGEST__MAX_CHUNKS_PER_FILE" in error
        )
        stored = {m.file_name: m for m in store.documents()}
        assert set(stored) == {"doc.txt", "fine.txt"}
        assert stored["doc.txt"].chunks == first.files[0].chunks  # the earlier version is intact
        _assert_consistent(store)
    finally:
        client.close()
