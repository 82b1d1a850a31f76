"""OCR during ingest: scans and garbled layers become searchable, pages are reported honestly, OCR is cached."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ocrgen import pages_pdf, shift_letters
from pdfgen import TOPICS
from PIL import Image

from config import Settings
from embedder import FakeEmbedder
from ingest import discover, ingest_files
from ingest.errors import IngestCancelledError, OcrError
from ingest.extract import extract_pdf
from ingest.ocr import ENGINES, OcrLine, OcrOptions
from ingest.ocr.registry import clear_engines
from ingest.pagecache import PageCache
from store.core import VectorStore
from store.payload import OCR, source_filter

SCAN = [
    "Glaciers carve deep valleys",
    "and leave moraines behind.",
    "Volcanoes erupt molten basalt",
    "along tectonic plate edges.",
]
TEXT = [TOPICS["bread"]]


class CountingEngine:
    """The real RapidOCR, registered under another name, counting the pages it reads."""

    name = "counting"
    calls = 0
    fail_on: ClassVar[set[int]] = set()  # calls (1-based) that raise, as an engine failing on a page does
    after_first: ClassVar[threading.Event | None] = None  # set after the first page (to cancel mid-file)

    def __init__(self, options: OcrOptions) -> None:
        self.inner = ENGINES["rapidocr"](OcrOptions(language=options.language))

    def read(self, image: Image.Image) -> list[OcrLine]:
        cls = type(self)
        cls.calls += 1
        if cls.after_first is not None:
            cls.after_first.set()
        if cls.calls in cls.fail_on:
            raise OcrError("the engine crashed on this page")
        return self.inner.read(image)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> type[CountingEngine]:
    monkeypatch.setitem(ENGINES, "counting", CountingEngine)
    monkeypatch.setattr(CountingEngine, "calls", 0)
    monkeypatch.setattr(CountingEngine, "fail_on", set())
    monkeypatch.setattr(CountingEngine, "after_first", None)
    clear_engines()
    yield CountingEngine
    clear_engines()


def _with(settings: Settings, **ingest: Any) -> Settings:
    return settings.model_copy(update={"ingest": settings.ingest.model_copy(update=ingest)})


def _payloads(store: VectorStore, source: str) -> list[dict[str, Any]]:
    records, _ = store.client.scroll(
        store.collection, scroll_filter=source_filter(source), with_payload=True, limit=1000
    )
    return [record.payload or {} for record in records]


def _ingest(paths: list[Path], settings: Settings, store: VectorStore, **kwargs: Any) -> Any:
    sources, failures = discover(paths)
    assert not failures
    return ingest_files(sources, settings=settings, embedder=FakeEmbedder(), store=store, **kwargs)


@pytest.mark.ocr
def test_an_image_only_pdf_becomes_searchable_by_its_text(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(pages_pdf([("image", SCAN)]))
    other = tmp_path / "bread.pdf"
    other.write_bytes(pages_pdf([("text", TEXT)]))
    report = _ingest([path, other], settings, store)
    scan = report.files[0]
    assert (scan.status, scan.ocr_pages, scan.empty_pages, scan.skipped_pages, scan.warning) == (
        "ingested",
        (1,),
        (),
        {},
        None,
    )
    assert scan.to_json()["ocr_pages"] == [1]
    payloads = _payloads(store, scan.source)
    text = " ".join(p["page_content"] for p in payloads)
    assert "Glaciers carve deep valleys" in text and "Volcanoes erupt molten basalt" in text
    assert all(p["metadata"][OCR] is True for p in payloads)
    assert all(OCR not in p["metadata"] for p in _payloads(store, report.files[1].source))
    (manifest,) = [m for m in store.documents() if m.file_name == "scan.pdf"]
    assert manifest.model_dump()["ocr_pages"] == 1
    # Searchable: the scan's own words find it first.
    record = store.require_record()
    vector = FakeEmbedder().embed(["Volcanoes erupt molten basalt"], record.instruction_set.query)[0]
    hits = store.client.query_points(store.collection, query=vector.tolist(), limit=1, with_payload=True)
    assert hits.points[0].payload["metadata"]["file_name"] == "scan.pdf"  # type: ignore[index]


@pytest.mark.ocr
def test_a_letter_shifted_text_layer_is_detected_and_ocr_d() -> None:
    data = pages_pdf([("shifted", SCAN)])
    layer = extract_pdf(data, file_name="g.pdf", page_cache=None, ocr=OcrOptions(mode="never"))
    assert shift_letters("Glaciers") in layer.pages[0].text  # the layer is the shifted text
    extracted = extract_pdf(data, file_name="g.pdf", page_cache=None)
    assert extracted.garbled_pages == (1,) and extracted.ocr_pages == (1,)
    (page,) = extracted.pages
    assert page.ocr and "Glaciers carve deep valleys" in page.text and "molten basalt" in page.text
    assert shift_letters("Glaciers") not in page.text


@pytest.mark.ocr
def test_a_mixed_file_reports_exactly_its_empty_pages(
    tmp_path: Path, settings: Settings, store: VectorStore, counting: type[CountingEngine]
) -> None:
    path = tmp_path / "mixed.pdf"
    path.write_bytes(pages_pdf([("text", TEXT), ("blank", []), ("image", SCAN), ("blank", [])]))
    report = _ingest([path], _with(settings, ocr_engine="counting"), store)
    (result,) = report.files
    assert result.status == "ingested" and result.pages == 4
    assert (result.ocr_pages, result.empty_pages, result.skipped_pages) == ((3,), (2, 4), {})
    assert (
        result.warning
        == "pages 2, 4 of 4 yielded no text (blank, or OCR found nothing); the other pages are searchable"
    )
    assert counting.calls == 1  # blank pages render white: the engine never sees them
    by_page = {p["metadata"]["page"]: p["metadata"].get(OCR, False) for p in _payloads(store, result.source)}
    assert by_page == {1: False, 3: True}


@pytest.mark.ocr
def test_a_replaced_file_reports_its_pages_too(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pages_pdf([("text", TEXT)]))
    assert _ingest([path], settings, store).files[0].status == "ingested"
    path.write_bytes(pages_pdf([("text", TEXT), ("image", SCAN), ("blank", [])]))
    (result,) = _ingest([path], settings, store).files
    assert (result.status, result.ocr_pages, result.empty_pages) == ("replaced", (2,), (3,))
    assert result.warning is not None and result.warning.startswith("page 3 of 3 yielded no text")


def test_an_image_only_file_with_ocr_off_fails_naming_the_setting(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(pages_pdf([("image", SCAN), ("image", SCAN)]))
    (result,) = _ingest([path], _with(settings, ocr="never"), store).files
    assert result.status == "failed"
    assert "has no text layer on its 2 page(s)" in str(result.error)
    assert "OCR is off (ingest.ocr = never)" in str(
        result.error
    ) and "INSTRUCTOR_SEARCH_INGEST__OCR=auto" in str(result.error)


def test_ocr_off_skips_pages_without_text_and_says_so(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pages_pdf([("text", TEXT), ("image", SCAN)]))
    (result,) = _ingest([path], _with(settings, ocr="never"), store).files
    assert result.status == "ingested" and result.ocr_pages == () and result.empty_pages == ()
    assert result.skipped_pages == {2: "OCR is off (ingest.ocr = never)"}
    assert (
        result.warning
        == "page 2 of 2 skipped: OCR is off (ingest.ocr = never); the other pages are searchable"
    )
    assert result.to_json()["skipped_pages"] == {"2": "OCR is off (ingest.ocr = never)"}


def test_an_unknown_engine_skips_the_pages_that_need_it(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    text, scan = tmp_path / "text.pdf", tmp_path / "scan.pdf"
    text.write_bytes(pages_pdf([("text", TEXT), ("image", SCAN)]))
    scan.write_bytes(pages_pdf([("image", SCAN)]))
    first, second = _ingest([text, scan], _with(settings, ocr_engine="abbyy"), store).files
    assert first.status == "ingested" and list(first.skipped_pages) == [2]
    assert "unknown OCR engine 'abbyy'" in first.skipped_pages[2]
    assert second.status == "failed" and "unknown OCR engine 'abbyy'" in str(second.error)
    assert "rapidocr, tesseract" in str(second.error)


@pytest.mark.ocr
def test_an_engine_failure_skips_that_page_only(counting: type[CountingEngine]) -> None:
    counting.fail_on = {1}
    data = pages_pdf([("image", SCAN), ("image", ["A second scanned page about bread"])])
    extracted = extract_pdf(data, file_name="two.pdf", page_cache=None, ocr=OcrOptions(engine="counting"))
    assert extracted.skipped_pages == {1: "OCR failed: the engine crashed on this page"}
    assert extracted.ocr_pages == (2,) and "second scanned page" in extracted.pages[0].text
    assert "page 1 of 2 skipped: OCR failed" in str(extracted.warning)


@pytest.mark.ocr
def test_the_persistent_cache_keeps_an_edited_file_from_being_ocr_d_again(
    tmp_path: Path, counting: type[CountingEngine]
) -> None:
    options = OcrOptions(engine="counting")
    path = tmp_path / "cache" / "pages.sqlite"
    original = pages_pdf([("image", SCAN), ("text", TEXT)])
    first = extract_pdf(original, file_name="a.pdf", page_cache=PageCache(path), ocr=options)
    assert counting.calls == 1 and first.ocr_pages == (1,)
    # The file is edited elsewhere (its text page changes); a new cache on the same file is
    # what another process opens.
    edited = pages_pdf([("image", SCAN), ("text", [TOPICS["chess"]])])
    again = extract_pdf(edited, file_name="a.pdf", page_cache=PageCache(path), ocr=options)
    assert counting.calls == 1
    assert again.pages[0] == first.pages[0] and "checkmate" in again.pages[1].text


@pytest.mark.ocr
def test_re_ingesting_never_ocrs_an_unchanged_page(
    tmp_path: Path, settings: Settings, store: VectorStore, counting: type[CountingEngine]
) -> None:
    settings = _with(settings, ocr_engine="counting")
    path = tmp_path / "scan.pdf"
    path.write_bytes(pages_pdf([("image", SCAN)]))
    assert _ingest([path], settings, store).files[0].status == "ingested"
    assert counting.calls == 1
    assert _ingest([path], settings, store).files[0].status == "unchanged"  # the manifest's sha256
    path.write_bytes(pages_pdf([("image", SCAN), ("text", TEXT)]))
    (result,) = _ingest([path], settings, store).files  # the page cache under settings.data_dir
    assert result.status == "replaced" and result.ocr_pages == (1,)
    assert counting.calls == 1
    assert (Path(settings.data_dir) / "cache" / "pages.sqlite").exists()


@pytest.mark.ocr
def test_cancel_stops_between_ocr_d_pages(counting: type[CountingEngine]) -> None:
    cancel = threading.Event()
    counting.after_first = cancel
    data = pages_pdf([("image", SCAN)] * 3)
    with pytest.raises(IngestCancelledError):
        extract_pdf(
            data, file_name="long.pdf", page_cache=None, cancel=cancel, ocr=OcrOptions(engine="counting")
        )
    assert counting.calls == 1


@pytest.mark.ocr
def test_always_ocrs_pages_with_a_good_text_layer_too(counting: type[CountingEngine]) -> None:
    data = pages_pdf([("text", ["Glaciers carve deep valleys and leave moraines behind them."])])
    extracted = extract_pdf(
        data, file_name="t.pdf", page_cache=None, ocr=OcrOptions(mode="always", engine="counting")
    )
    assert counting.calls == 1 and extracted.ocr_pages == (1,) and extracted.pages[0].ocr
    assert "Glaciers carve deep valleys" in extracted.pages[0].text


# -- the awkward files of ../shared ------------------------------------------------------------


@pytest.mark.ocr
@pytest.mark.shared_data
def test_shared_scans_and_garbled_layer_are_searchable_by_their_own_text(
    settings: Settings, store: VectorStore
) -> None:
    from testdata import shared_path

    folder = shared_path("data", "pdfs")
    names = [
        "garbled-text-layer_ranknet-lambdarank.pdf",
        "scanned-image-only_huckleberry-finn-p22.pdf",
        "scanned-image-only_linn-brochure.pdf",
    ]
    report = _ingest([folder / name for name in names], settings, store)
    assert [(f.status, f.ocr_pages) for f in report.files] == [("ingested", (1,))] * 3
    texts = {
        f.file_name: " ".join(p["page_content"] for p in _payloads(store, f.source)) for f in report.files
    }
    assert "Christopher" in texts[names[0]] and "LambdaRank" in texts[names[0]]
    assert "Bgqhrsnogdq" not in texts[names[0]]
    assert "widow's garden" in texts[names[1]]
    assert "The LinnSequencer" in texts[names[2]] and "32 Track MIDI Sequence Recorder" in texts[names[2]]
    record = store.require_record()
    for name, query in [
        (names[0], "LambdaMART is the boosted tree version of LambdaRank"),
        (
            names[1],
            "We went tip-toeing along a path amongst the trees back towards the end of the widow's garden",
        ),
        (names[2], "Each of the 100 sequences contains 32 simultaneous, polyphonic tracks"),
    ]:
        vector = FakeEmbedder().embed([query], record.instruction_set.query)[0]
        hits = store.client.query_points(store.collection, query=vector.tolist(), limit=1, with_payload=True)
        assert hits.points[0].payload["metadata"]["file_name"] == name, query  # type: ignore[index]


@pytest.mark.ocr
def test_an_encrypted_scan_is_ocr_d_with_its_password() -> None:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pages_pdf([("image", SCAN)]))))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    extracted = extract_pdf(buffer.getvalue(), file_name="locked.pdf", password="s3cret", page_cache=None)
    assert extracted.ocr_pages == (1,) and "Glaciers carve deep valleys" in extracted.pages[0].text
