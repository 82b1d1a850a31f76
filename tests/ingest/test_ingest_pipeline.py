"""The ingest service contract: statuses, all-or-none files, no stale chunks, streaming batches."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pdfgen import (
    TOPICS,
    blank_pdf_bytes,
    encrypted_pdf_bytes,
    long_text,
    pdf_bytes,
    write_pdf,
)
from qdrant_client import models

from config import Settings, load_settings
from embedder import FakeEmbedder
from embedder.base import Vectors
from embedder.errors import InputError
from ingest import ProgressEvent, SourceFile, discover, ingest_files, upload_source
from ingest.sources import file_sha256
from representations.sparse import SparseEncoder
from store.client import open_client
from store.core import VectorStore
from store.errors import CollectionMismatchError
from store.payload import chunk_point_id


class RecordingEmbedder(FakeEmbedder):
    """The fake embedder, recording the size of every embed call (observation, not a mock)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Vectors:
        self.calls.append(len(texts))
        return super().embed(texts, instruction, batch_size=batch_size, show_progress=show_progress)


def _ingest(
    paths: Sequence[Path | str],
    settings: Settings,
    store: VectorStore,
    embedder: FakeEmbedder | None = None,
    **kw: object,
):  # type: ignore[no-untyped-def]
    sources, failures = discover(paths)
    assert not failures, failures
    return ingest_files(sources, settings=settings, embedder=embedder or FakeEmbedder(), store=store, **kw)  # type: ignore[arg-type]


def _payloads(store: VectorStore) -> list[dict[str, object]]:
    records, _ = store.client.scroll(store.collection, limit=10_000, with_payload=True)
    return [r.payload or {} for r in records]


def test_ingested_unchanged_replaced_without_stale_chunks(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    doc = write_pdf(tmp_path / "doc.pdf", [long_text("volcano", 4), long_text("bread", 3)])
    first = _ingest([doc], settings, store)
    [result] = first.files
    assert result.status == "ingested" and result.error is None
    assert result.pages == 2 and result.chunks > 2
    assert first.points == result.chunks == store.count()
    old_sha = file_sha256(doc.read_bytes())

    embedder = FakeEmbedder()
    second = _ingest([doc], settings, store, embedder)
    assert [(f.status, f.chunks) for f in second.files] == [("unchanged", result.chunks)]
    assert embedder.stats.texts == 0 and second.chunks_embedded == 0  # nothing embedded or written
    assert second.points == first.points

    write_pdf(doc, [long_text("glacier", 2)])
    third = _ingest([doc], settings, store)
    [replaced] = third.files
    assert replaced.status == "replaced"
    assert store.count() == third.points == replaced.chunks
    assert store.count_source(str(doc.resolve()), sha256=old_sha) == 0  # no stale chunks left
    assert all(
        "glacier" in str(p["page_content"]).lower() or "Glaciers" in str(p["page_content"])
        for p in _payloads(store)
    )
    [manifest] = store.documents()
    assert manifest.file_sha256 == file_sha256(doc.read_bytes()) and manifest.chunks == replaced.chunks


def test_payload_and_ids_follow_the_contract(tmp_path: Path, settings: Settings, store: VectorStore) -> None:
    doc = write_pdf(tmp_path / "two.pdf", [long_text("chess", 3), long_text("vaccine", 3)])
    report = _ingest([doc], settings, store, domain="medicine")
    sha = file_sha256(doc.read_bytes())
    records, _ = store.client.scroll(store.collection, limit=1000, with_payload=True)
    assert len(records) == report.files[0].chunks
    pages = {1: None, 2: None}
    for record in records:
        payload = record.payload or {}
        meta = payload["metadata"]
        assert set(meta) == {
            "source", "file_name", "file_sha256", "page", "chunk_index", "chunk_count",
            "char_start", "char_end", "domain", "ingested_at",
        }  # fmt: skip
        assert meta["source"] == str(doc.resolve()) and meta["file_name"] == "two.pdf"
        assert meta["file_sha256"] == sha and meta["domain"] == "medicine"
        assert meta["chunk_count"] == len(records)
        assert record.id == chunk_point_id(sha, meta["chunk_index"])
        assert meta["page"] in pages
        assert meta["char_end"] - meta["char_start"] == len(payload["page_content"])
    indices = sorted(r.payload["metadata"]["chunk_index"] for r in records)  # type: ignore[index]
    assert indices == list(range(len(records)))
    record = store.require_record()
    assert record.domain == "medicine"
    assert record.instructions["document"] == "Represent the Medicine document for retrieval:"


def test_bad_files_fail_with_reasons_and_the_others_are_ingested(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    files = {
        "good.pdf": pdf_bytes([TOPICS["photosynthesis"]]),
        "locked.pdf": encrypted_pdf_bytes(TOPICS["chess"], user_password="pw", owner_password="own"),
        "owner-only.pdf": encrypted_pdf_bytes(TOPICS["glacier"], user_password="", owner_password="own"),
        "truncated.pdf": pdf_bytes([TOPICS["bread"]])[:300],
        "blank.pdf": blank_pdf_bytes(),  # a scan is OCR'd: tests/ingest/test_ocr_ingest.py
        "empty.pdf": b"",
        "page.pdf": b"<!doctype html><html><head><title>404</title></head></html>",
        "notes.txt": "Ελληνικά: η φωτοσύνθεση μετατρέπει το φως σε χημική ενέργεια.".encode(),
        "empty.md": b"",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    sources, failures = discover([tmp_path / name for name in files] + [tmp_path / "missing.pdf"])
    report = ingest_files(sources, settings=settings, embedder=FakeEmbedder(), store=store)
    by_name = {f.file_name: f for f in failures + report.files}
    assert {n: f.status for n, f in by_name.items()} == {
        "good.pdf": "ingested",
        "locked.pdf": "failed",
        "owner-only.pdf": "ingested",
        "truncated.pdf": "failed",
        "blank.pdf": "failed",
        "empty.pdf": "failed",
        "page.pdf": "failed",
        "notes.txt": "ingested",
        "empty.md": "failed",
        "missing.pdf": "failed",
    }
    assert "password" in str(by_name["locked.pdf"].error)
    assert "malformed or truncated" in str(by_name["truncated.pdf"].error)
    assert "no text layer and OCR found no text: it is a blank page" in str(by_name["blank.pdf"].error)
    assert "empty file" in str(by_name["empty.pdf"].error)
    assert "not a PDF" in str(by_name["page.pdf"].error) and "HTML" in str(by_name["page.pdf"].error)
    assert "does not exist" in str(by_name["missing.pdf"].error)
    assert report.failed
    stored = {doc.file_name for doc in store.documents()}
    assert stored == {"good.pdf", "owner-only.pdf", "notes.txt"}
    greek = [p for p in _payloads(store) if p["metadata"]["file_name"] == "notes.txt"]  # type: ignore[index]
    assert greek[0]["page_content"] == files["notes.txt"].decode()
    assert greek[0]["metadata"]["page"] is None  # type: ignore[index]


def test_password_option_opens_encrypted_pdf(tmp_path: Path, settings: Settings, store: VectorStore) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(encrypted_pdf_bytes(TOPICS["chess"], user_password="pw", owner_password="own"))
    report = _ingest([path], settings, store, password="pw")
    assert report.files[0].status == "ingested"


def test_batches_span_files_and_files_are_stored_as_they_complete(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    paths = [
        write_pdf(tmp_path / f"{i:02d}-{topic}.pdf", [f"Document {i}.\n\n" + long_text(topic, 2 + i % 3)])
        for i, topic in enumerate(sorted(TOPICS) * 2)
    ]
    embedder = RecordingEmbedder()
    events: list[ProgressEvent] = []
    report = _ingest(paths, settings, store, embedder, on_progress=events.append)
    total = sum(f.chunks for f in report.files)
    batch = settings.model.batch_size
    assert total == report.chunks_embedded == store.count()
    assert embedder.calls[:-1] == [batch] * (len(embedder.calls) - 1)  # full batches across files
    assert len(embedder.calls) == math.ceil(total / batch)
    # Streaming: when a file is taken up, the earlier files hold fewer than one batch of chunks
    # waiting for the model (memory does not grow with the corpus).
    stored: set[int] = set()
    progress: dict[int, tuple[int, int]] = {}
    for event in events:
        if event.stage in ("embedding", "stored"):
            progress[event.file_index] = (event.chunks_done, event.chunks_total)
        if event.stage == "stored":
            stored.add(event.file_index)
            assert event.chunks_done == event.chunks_total == report.files[event.file_index].chunks
        if event.stage == "reading":
            unstored = [progress[i] for i in progress if i not in stored]
            assert sum(total - done for done, total in unstored) < batch
        assert event.file_count == len(paths)
    assert stored == set(range(len(paths)))


def test_interrupted_run_is_repaired(tmp_path: Path, settings: Settings, store: VectorStore) -> None:
    done = write_pdf(tmp_path / "done.pdf", [long_text("volcano", 3)])
    report = _ingest([done], settings, store)
    expected = report.points
    # What a run killed half-way through a file leaves: some chunks, no manifest, the write mark.
    store.begin_write()
    orphan_sha = "f" * 64
    store.upsert_chunks(
        [
            models.PointStruct(
                id=chunk_point_id(orphan_sha, index),
                vector=[0.1] * 64,
                payload={
                    "page_content": "x",
                    "metadata": {"source": "/half", "file_sha256": orphan_sha, "chunk_index": index},
                },
            )
            for index in range(5)
        ]
    )
    assert store.count() == expected and store.count(pending=True) == expected + 5
    other = write_pdf(tmp_path / "other.pdf", [long_text("bread", 2)])
    second = _ingest([done, other], settings, store)
    assert second.repaired == 5
    assert [f.status for f in second.files] == ["unchanged", "ingested"]
    assert store.count() == expected + second.files[1].chunks
    assert not store.write_interrupted()
    # A clean collection is not scanned again.
    assert store.repair() == 0


def test_changed_chunking_replaces_and_leaves_no_extra_chunks(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    doc = write_pdf(tmp_path / "doc.pdf", [long_text("glacier", 6)])
    fine = _ingest(
        [doc], settings.model_copy(update={"chunk": settings.chunk.model_copy(update={"size": 30})}), store
    )
    coarse = _ingest([doc], settings, store)
    assert coarse.files[0].status == "replaced"
    assert coarse.files[0].chunks < fine.files[0].chunks
    assert store.count() == coarse.files[0].chunks
    assert store.repair(force=True) == 0


def test_missing_chunks_are_stored_again(tmp_path: Path, settings: Settings, store: VectorStore) -> None:
    doc = write_pdf(tmp_path / "doc.pdf", [long_text("chess", 4)])
    first = _ingest([doc], settings, store)
    sha = file_sha256(doc.read_bytes())
    store.client.delete(
        store.collection, points_selector=models.PointIdsList(points=[chunk_point_id(sha, 1)])
    )
    again = _ingest([doc], settings, store)
    assert again.files[0].status == "ingested"
    assert store.count() == first.points


def test_identical_content_is_stored_once(tmp_path: Path, settings: Settings, store: VectorStore) -> None:
    data = pdf_bytes([long_text("vaccine", 3)])
    (tmp_path / "a.pdf").write_bytes(data)
    (tmp_path / "copy of a.pdf").write_bytes(data)
    report = _ingest([tmp_path / "a.pdf", tmp_path / "copy of a.pdf"], settings, store)
    first, copy = report.files
    assert first.status == "ingested" and copy.status == "unchanged"
    assert copy.note and "a.pdf" in copy.note
    assert store.count() == first.chunks
    again = _ingest([tmp_path / "copy of a.pdf", tmp_path / "a.pdf"], settings, store)
    assert [f.status for f in again.files] == ["unchanged", "unchanged"]
    assert store.count() == first.chunks
    assert store.has_chunks(store.documents()[0])


def test_other_instructions_are_refused(tmp_path: Path, settings: Settings, store: VectorStore) -> None:
    doc = write_pdf(tmp_path / "doc.pdf", [TOPICS["bread"]])
    _ingest([doc], settings, store)
    with pytest.raises(CollectionMismatchError) as info:
        _ingest([doc], settings, store, domain="finance")
    message = str(info.value)
    assert "found" in message and "expected" in message and "--collection" in message


def test_uploads_are_read_from_memory_under_a_safe_name(settings: Settings, store: VectorStore) -> None:
    upload = upload_source("../../etc/secret notes.txt", TOPICS["glacier"].encode())
    assert upload.source == "upload:secret notes.txt" and upload.path is None
    report = ingest_files([upload], settings=settings, embedder=FakeEmbedder(), store=store)
    assert report.files[0].status == "ingested"
    assert store.documents()[0].source == "upload:secret notes.txt"
    assert store.find_document("secret notes.txt").source == "upload:secret notes.txt"


def test_no_files_creates_nothing(settings: Settings, store: VectorStore) -> None:
    report = ingest_files([], settings=settings, embedder=FakeEmbedder(), store=store)
    assert report.files == [] and report.points == 0 and not store.exists()


def test_discover_expands_folders_and_reports_bad_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.pdf").write_bytes(b"%PDF-")
    (tmp_path / "b.TXT").write_text("x")
    (tmp_path / "c.docx").write_text("x")
    (tmp_path / ".hidden.md").write_text("x")
    (tmp_path / "sub" / "d.md").write_text("x")
    (tmp_path / "empty").mkdir()
    flat, failures = discover(
        [tmp_path, tmp_path / "a.pdf", tmp_path / "c.docx", tmp_path / "nope", tmp_path / "empty"]
    )
    assert [s.file_name for s in flat] == ["a.pdf", "b.TXT"]  # a.pdf named twice is ingested once
    reasons = {Path(f.path).name: str(f.error) for f in failures}
    assert "unsupported file type '.docx'" in reasons["c.docx"]
    assert "does not exist" in reasons["nope"]
    assert "--recursive" in reasons["empty"]
    deep, _ = discover([tmp_path], recursive=True)
    assert [s.file_name for s in deep] == ["a.pdf", "b.TXT", "d.md"]
    assert all(s.source == str(s.path.resolve()) for s in deep if s.path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "secret.pdf"
    path.write_bytes(pdf_bytes([TOPICS["chess"]]))
    path.chmod(0)
    try:
        sources, failures = discover([path])
        assert sources == [] and "permission denied" in str(failures[0].error)
        source = SourceFile(source=str(path), file_name=path.name, path=path)
        with pytest.raises(Exception, match="permission denied"):
            source.read_bytes()
    finally:
        path.chmod(0o644)


def test_file_that_cannot_be_read_at_ingest_time_fails_alone(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    keep = write_pdf(tmp_path / "keep.pdf", [TOPICS["bread"]])
    gone = write_pdf(tmp_path / "gone.pdf", [TOPICS["chess"]])
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    sources, failures = discover([keep, gone, fifo, tmp_path])
    assert "not a regular file" in str(failures[0].error)
    gone.unlink()  # removed between discovery and reading
    folder = SourceFile(source="folder", file_name="folder.pdf", path=tmp_path)
    report = ingest_files([*sources, folder], settings=settings, embedder=FakeEmbedder(), store=store)
    statuses = {f.file_name: (f.status, f.error) for f in report.files}
    assert statuses["keep.pdf"] == ("ingested", None)
    assert "file not found" in str(statuses["gone.pdf"][1])
    assert "is a folder" in str(statuses["folder.pdf"][1])


class FailingEmbedder(FakeEmbedder):
    """Fails on its second batch, like a model running out of memory half-way."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Vectors:
        self.batches += 1
        if self.batches == 2:
            raise InputError("model failed half-way")
        return super().embed(texts, instruction, batch_size=batch_size)


def test_a_failing_model_stops_the_run_and_the_next_run_repairs(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    paths = [write_pdf(tmp_path / f"{i}.pdf", [f"File {i}.\n\n" + long_text("chess", 3)]) for i in range(6)]
    with pytest.raises(InputError, match="half-way"):
        _ingest(paths, settings, store, FailingEmbedder())
    # Rolled back before the error was re-raised: no uncommitted chunk, no write mark.
    assert not store.write_interrupted() and store.repair(force=True) == 0
    report = _ingest(paths, settings, store)
    assert not report.failed
    assert store.count() == sum(f.chunks for f in report.files)
    assert store.repair(force=True) == 0


def test_progress_is_reported_on_the_calling_thread(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    paths = [write_pdf(tmp_path / f"{t}.pdf", [long_text(t, 3)]) for t in ("chess", "bread", "glacier")]
    threads: set[str] = set()
    _ingest(paths, settings, store, on_progress=lambda event: threads.add(threading.current_thread().name))
    assert threads == {threading.current_thread().name}


def test_delete_after_an_interrupted_run_repairs_first(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    paths = [write_pdf(tmp_path / f"{i}.pdf", [f"File {i}.\n\n" + long_text("bread", 3)]) for i in range(6)]
    written = threading.Event()
    upsert = store.upsert_chunks

    def upsert_and_tell(points: Any, **kwargs: Any) -> None:
        upsert(points, **kwargs)
        written.set()

    class FailingAfterAWrite(FailingEmbedder):
        """Fails on its second batch once the first is written (the writer thread may lag)."""

        def embed(self, texts: Sequence[str], instruction: str | None, **kwargs: Any) -> Vectors:
            if self.batches == 1:
                assert written.wait(30), "the first batch was never written"
            return super().embed(texts, instruction, **kwargs)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(InputError):
        patch.setattr(store, "repair", lambda force=False: 0)  # no rollback: as if the process died
        patch.setattr(store, "upsert_chunks", upsert_and_tell)
        _ingest(paths, settings, store, FailingAfterAWrite())
    committed = store.documents()
    orphans = store.count(pending=True) - sum(m.chunks for m in committed)
    assert orphans > 0 and store.write_interrupted()
    removed = store.delete_document(committed[0].source)
    assert removed == committed[0].chunks
    assert not store.write_interrupted()
    assert store.count() == sum(m.chunks for m in committed[1:])


def test_bm25_average_length_is_the_first_windows_mean_not_its_shortest_batch(tmp_path: Path) -> None:
    """Length-sorted batching hands out the shortest chunks first; BM25 needs the corpus's mean length."""
    settings = load_settings(
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake", "batch_size": 2, "sort_window": 4},  # windows of 8 chunks
    )
    words = ["river", "stone", "light", "forest", "harbour", "meadow", "lantern", "orchard"]
    folder = tmp_path / "docs"
    folder.mkdir()
    texts = []
    for i in range(8):  # one chunk each, from 2 to 72 terms, long and short interleaved
        count = 2 + (i * 37) % 71
        texts.append(" ".join(words[(i + k) % len(words)] for k in range(count)) + ".")
        (folder / f"{i}.txt").write_text(texts[-1])
    client = open_client(settings)
    try:
        store = VectorStore(client, settings.qdrant.collection)
        report = _ingest([folder], settings, store)
        assert report.counts()["ingested"] == 8 and store.count() == 8
        sparse = store.require_record().representations.sparse
        assert sparse is not None
        encoder = SparseEncoder()
        assert sparse.avg_length == round(encoder.estimate_avg_length(texts), 2)
        shortest = sorted(texts, key=lambda text: len(encoder.terms(text)))[:2]
        assert sparse.avg_length > 3 * encoder.estimate_avg_length(shortest)  # what the first batch gave
    finally:
        client.close()
