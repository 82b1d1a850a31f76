"""Kept uploads, where a hit's file is, and its page: SearchService on a real embedded store, fake embedder.

The PDFs are generated here (fpdf2; pypdf for the encrypted one); the kept copies are real files
in the test's data folder, and the page images are really rendered by PDFium.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdfgen import TOPICS, encrypted_pdf_bytes, pdf_bytes, write_pdf

from app.errors import FileChangedError, FileMovedError, FileNotKeptError, PasswordRequiredError
from app.service import SearchService, serialize_embedder
from app.wording import for_the_page, page_list, plural
from config import Settings
from embedder import FakeEmbedder
from ingest.report import ProgressEvent
from ingest.sample_corpus import SAMPLE_DIR, sample_files
from ingest.sources import discover, file_sha256, upload_source
from retrieval.engine import Hit
from store.files import FileStore

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def service(fake_settings: Settings) -> Iterator[SearchService]:
    svc = SearchService.open(fake_settings, embedder=serialize_embedder(FakeEmbedder()))
    yield svc
    svc.close()


def _kept(service: SearchService) -> set[str]:
    return FileStore.for_data_dir(service.settings.data_dir).shas()


def _top(service: SearchService, query: str, collection: str | None = None) -> Hit:
    hits = service.search(query, collection=collection, top_k=1, mode="dense").hits
    assert hits, query
    return hits[0]


def test_an_upload_is_kept_by_content_and_its_hit_shows_its_page(service: SearchService) -> None:
    data = pdf_bytes([TOPICS["bread"], TOPICS["volcano"], TOPICS["chess"]])
    report = service.ingest([upload_source("../../etc/nature.pdf", data)])
    assert report.files[0].status == "ingested"
    sha = file_sha256(data)
    assert _kept(service) == {sha}
    data_dir = Path(service.settings.data_dir)
    assert not list(data_dir.rglob("nature.pdf"))  # the uploaded name never becomes a path

    hit = _top(service, TOPICS["volcano"])
    assert (hit.file_name, hit.page, hit.file_sha256, hit.ocr) == ("nature.pdf", 2, sha, False)
    assert hit.char_start is not None and hit.char_end is not None and hit.char_end > hit.char_start
    path = service.stored_file(hit)
    assert path is not None and path.read_bytes() == data and path.is_relative_to(data_dir / "files")

    image = service.page_view(hit)
    assert image.png.startswith(PNG)
    assert (image.page, image.page_count) == (2, 3)
    assert image.highlighted and image.boxes
    assert image.width > 0 and image.height > image.width  # an A4 page, upright


def test_deleting_a_document_deletes_its_copy_unless_identical_content_is_held_elsewhere(
    service: SearchService,
) -> None:
    data = pdf_bytes([TOPICS["glacier"]])
    service.ingest([upload_source("ice.pdf", data)])
    service.ingest([upload_source("ice again.pdf", data)])  # identical content, another source
    service.ingest([upload_source("ice.pdf", data)], collection="other")  # and another collection
    assert _kept(service) == {file_sha256(data)}  # stored once
    copies = list(Path(service.settings.data_dir, "files").rglob("*.pdf"))
    assert len(copies) == 1

    service.delete_document("upload:ice.pdf")
    assert _kept(service) == {file_sha256(data)}
    service.delete_document("upload:ice again.pdf")
    assert _kept(service) == {file_sha256(data)}  # the collection "other" still holds it
    service.delete_document("upload:ice.pdf", collection="other")
    assert _kept(service) == set()
    assert not list(Path(service.settings.data_dir, "files").rglob("*.pdf"))


def test_a_replaced_upload_and_a_dropped_collection_leave_no_copy(service: SearchService) -> None:
    first, second = pdf_bytes([TOPICS["bread"]]), pdf_bytes([TOPICS["chess"]])
    service.ingest([upload_source("notes.pdf", first)], collection="notes")
    assert (
        service.ingest([upload_source("notes.pdf", second)], collection="notes").files[0].status == "replaced"
    )
    assert _kept(service) == {file_sha256(second)}
    service.drop_collection("notes")
    assert _kept(service) == set()


def test_a_failed_upload_leaves_no_copy(service: SearchService) -> None:
    good = TOPICS["vaccine"].encode()
    report = service.ingest(
        [upload_source("broken.pdf", b"%PDF-1.4 not really"), upload_source("ok.txt", good)]
    )
    assert [f.status for f in report.files] == ["failed", "ingested"]
    assert _kept(service) == {file_sha256(good)}  # the text file is kept too (for download)


def test_a_cancelled_upload_leaves_no_copy(service: SearchService) -> None:
    cancel = threading.Event()

    def stop(event: ProgressEvent) -> None:
        if event.stage == "reading":
            cancel.set()

    files = [upload_source(f"doc{i}.pdf", pdf_bytes([TOPICS["bread"] + f" Loaf {i}."])) for i in range(3)]
    report = service.ingest(files, on_progress=stop, cancel=cancel)
    assert {f.status for f in report.files} == {"cancelled"}
    assert service.documents() == []
    assert _kept(service) == set()


def test_an_encrypted_upload_needs_its_password_to_be_ingested_and_shown(service: SearchService) -> None:
    data = encrypted_pdf_bytes(TOPICS["photosynthesis"], user_password="sesame", owner_password="owner-pw")

    wrong = service.ingest([upload_source("secret.pdf", data)], password="wrong")
    assert wrong.files[0].status == "failed"
    assert for_the_page(wrong.files[0].error or "") == (
        "the password does not open secret.pdf; check it and upload again"
    )
    none = service.ingest([upload_source("secret.pdf", data)])
    assert "type its password in the Password field" in for_the_page(none.files[0].error or "")
    assert _kept(service) == set()  # refused uploads are not kept

    right = service.ingest([upload_source("secret.pdf", data)], password="sesame")
    assert right.files[0].status == "ingested" and right.files[0].chunks >= 1
    hit = _top(service, TOPICS["photosynthesis"])
    assert hit.file_name == "secret.pdf"
    with pytest.raises(PasswordRequiredError) as missing:
        service.page_view(hit)
    assert not missing.value.wrong and "secret.pdf is an encrypted PDF" in str(missing.value)
    with pytest.raises(PasswordRequiredError, match=r"the password does not open secret\.pdf") as bad:
        service.page_view(hit, password="nope")
    assert bad.value.wrong
    image = service.page_view(hit, password="sesame")
    assert image.png.startswith(PNG) and image.highlighted


def test_a_file_from_disk_is_its_own_path_while_it_is_unchanged(
    service: SearchService, tmp_path: Path
) -> None:
    path = write_pdf(tmp_path / "earth.pdf", [TOPICS["photosynthesis"], TOPICS["volcano"]])
    sources, _ = discover([path])
    service.ingest(sources)
    assert _kept(service) == set()  # files from disk are not copied
    hit = _top(service, TOPICS["volcano"])
    assert service.stored_file(hit) == path.resolve()
    assert service.page_view(hit).page == 2

    write_pdf(path, [TOPICS["bread"], TOPICS["chess"]])  # changed since it was ingested
    assert service.stored_file(hit) is None
    location = service.files.locate(hit)
    assert isinstance(location.error, FileChangedError) and "ingest it again" in (location.reason or "")
    with pytest.raises(FileChangedError):
        service.page_view(hit)

    path.unlink()  # moved away
    assert isinstance(service.files.locate(hit).error, FileMovedError)
    with pytest.raises(FileMovedError, match="is no longer at"):
        service.page_view(hit)


def test_a_sample_document_is_the_bundled_pdf(service: SearchService) -> None:
    first = sample_files()[0]
    service.ingest([first])
    doc = service.documents()[0]
    assert service.stored_file(doc) == SAMPLE_DIR / first.file_name


def test_an_upload_without_a_kept_copy_says_so(service: SearchService) -> None:
    service.ingest([upload_source("old.pdf", pdf_bytes([TOPICS["glacier"]]))])
    FileStore.for_data_dir(service.settings.data_dir).collect([])  # as if uploaded before files were kept
    hit = _top(service, TOPICS["glacier"])
    assert service.stored_file(hit) is None
    with pytest.raises(FileNotKeptError, match="upload it again"):
        service.page_view(hit)


def test_wording() -> None:
    assert [plural(n, "chunk") for n in (0, 1, 2)] == ["0 chunks", "1 chunk", "2 chunks"]
    assert plural(1, "page") == "1 page"
    assert page_list([5, 2]) == "pages 2, 5" and page_list([3]) == "page 3"
    assert for_the_page("something else entirely") == "something else entirely"
