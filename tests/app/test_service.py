"""SearchService: thread safety of the shared client and model, and writing into recorded collections."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pdfgen import TOPICS, pdf_bytes

from app.errors import AppError
from app.service import SearchService, SerializedClient, SerializedEmbedder, serialize_embedder
from config import InvalidNameError, Settings
from embedder import FakeEmbedder
from ingest.sources import SourceFile, upload_source


@pytest.fixture
def service(fake_settings: Settings) -> Iterator[SearchService]:
    svc = SearchService.open(fake_settings, embedder=serialize_embedder(FakeEmbedder()))
    yield svc
    svc.close()


def test_local_client_is_serialised(service: SearchService) -> None:
    assert isinstance(service.client, SerializedClient)
    assert isinstance(service.embedder, SerializedEmbedder)
    assert serialize_embedder(service.embedder) is service.embedder


def test_searches_during_ingest_are_correct_and_never_fail(service: SearchService) -> None:
    """Three threads search while a fourth ingests 40 files through the same client and model."""
    service.ingest(
        [
            SourceFile(
                source="upload:base.pdf",
                file_name="base.pdf",
                data=pdf_bytes([TOPICS["bread"], TOPICS["volcano"]]),
            )
        ]
    )
    files = [
        upload_source(
            f"doc{i:02d}.pdf",
            pdf_bytes([TOPICS["chess"] + f" Game {i}.", TOPICS["glacier"] + f" Valley {i}."]),
        )
        for i in range(40)
    ]
    errors: list[BaseException] = []
    wrong: list[str] = []
    searches = [0]
    done = threading.Event()

    def ingest() -> None:
        try:
            report = service.ingest(files)
            assert {f.status for f in report.files} == {"ingested"}
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            done.set()

    def search() -> None:
        while not done.is_set():
            try:
                result = service.search("magma chamber eruptions ash pumice lava", top_k=3)
                top = result.hits[0]
                if (top.file_name, top.page) != ("base.pdf", 2):
                    wrong.append(f"{top.file_name} p{top.page}")
                # Every hit belongs to a completely stored file.
                stored = {d.source for d in service.documents()}
                wrong.extend(h.source for h in result.hits if h.source not in stored)
                searches[0] += 1
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
                return

    threads = [threading.Thread(target=ingest)] + [threading.Thread(target=search) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not wrong, wrong[:5]
    assert searches[0] > 0
    assert len(service.documents()) == 41


def test_two_uploads_at_once_are_serialised(service: SearchService) -> None:
    batches = [
        [upload_source(f"a{i}.txt", (TOPICS["vaccine"] + f" Note {i}.").encode()) for i in range(15)],
        [upload_source(f"b{i}.txt", (TOPICS["glacier"] + f" Note {i}.").encode()) for i in range(15)],
    ]
    errors: list[BaseException] = []

    def run(batch: list[SourceFile]) -> None:
        try:
            service.ingest(batch)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    docs = service.documents()
    assert len(docs) == 30
    assert service.store().count() == sum(d.chunks for d in docs)


def test_upload_into_a_collection_with_custom_instructions(service: SearchService) -> None:
    record = service.new_record(
        domain="legal",
        query_instruction="Represent the contract question:",
        document_instruction="Represent the contract clause:",
    )
    service.create_collection("contracts", record)
    # The settings build other instructions; the collection's own are used for the upload.
    assert service.settings.instructions.document is None
    report = service.ingest(
        [upload_source("lease.txt", b"The tenant shall pay rent monthly.")], collection="contracts"
    )
    assert report.files[0].status == "ingested"
    # The record is kept (only the BM25 average length is filled in by the first batch).
    stored = service.record("contracts")
    assert stored is not None
    assert stored.model_dump(exclude={"representations"}) == record.model_dump(exclude={"representations"})
    hit = service.search("when is rent due", collection="contracts").hits[0]
    assert hit.file_name == "lease.txt" and hit.domain == "legal"


def test_create_collection_refuses_bad_or_existing_names(service: SearchService) -> None:
    record = service.new_record()
    service.create_collection("notes", record)
    with pytest.raises(AppError, match="exists already"):
        service.create_collection("notes", record)
    for bad in ["", "  ", "a/b", "x__documents", "..", "a:b", "r\u202el"]:
        with pytest.raises(InvalidNameError, match="collection name"):
            service.create_collection(bad, record)
    assert "notes" in service.collections()
