"""ingest.ocr: page text from lines with exact spans, reading order, the registry, the engines, ocr_page and the page cache."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from ocrgen import pages_pdf
from PIL import Image

from config import load_settings
from ingest.errors import OcrError
from ingest.ocr import ENGINES, OcrLine, OcrOptions, OcrPage, get_engine, ocr_page
from ingest.ocr.base import reading_order
from ingest.ocr.registry import clear_engines
from ingest.pagecache import PageCache, pdf_render_fingerprint

LINES = ["Glaciers carve deep valleys", "Volcanoes erupt molten basalt"]


def _line(text: str, x0: float, y0: float, x1: float, y1: float) -> OcrLine:
    return OcrLine(text=text, box=(x0, y0, x1, y1), confidence=0.9)


class CountingEngine:
    """An engine registered for a test: the real RapidOCR, counting the pages it reads."""

    name = "counting"
    calls = 0

    def __init__(self, options: OcrOptions) -> None:
        self.inner = ENGINES["rapidocr"](OcrOptions(language=options.language))

    def read(self, image: Image.Image) -> list[OcrLine]:
        type(self).calls += 1
        return self.inner.read(image)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> type[CountingEngine]:
    monkeypatch.setitem(ENGINES, "counting", CountingEngine)
    monkeypatch.setattr(CountingEngine, "calls", 0)
    clear_engines()
    yield CountingEngine
    clear_engines()


# -- the page's text ---------------------------------------------------------------------------


def test_page_text_has_exact_spans_rows_and_paragraphs() -> None:
    lines = [
        _line("  Title  of\tthe page ", 0.1, 0.05, 0.6, 0.08),
        _line("first line", 0.1, 0.10, 0.4, 0.13),
        _line("same row, to the right", 0.5, 0.105, 0.9, 0.135),
        _line("   ", 0.1, 0.14, 0.2, 0.16),  # nothing but spaces: dropped
        _line("after a gap", 0.1, 0.30, 0.4, 0.33),
    ]
    page = OcrPage.from_lines(lines, "test")
    assert page.text == "Title of the page\nfirst line same row, to the right\n\nafter a gap"
    assert len(page.lines) == len(page.spans) == 4
    for line, (start, end) in zip(page.lines, page.spans, strict=True):
        assert page.text[start:end] == line.text
    assert OcrPage.from_json(page.to_json()) == page


def test_damaged_cache_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not an OCR page record"):
        OcrPage.from_json('{"engine": "x", "text": "", "lines": [["a"]], "spans": []}')


def test_reading_order_keeps_columns_apart() -> None:
    # What RapidOCR gives for a heading over two columns: rows top to bottom, across both columns.
    engine_order = [
        _line("Heading across the page", 0.1, 0.05, 0.9, 0.08),
        _line("left one", 0.1, 0.15, 0.45, 0.18),
        _line("right one", 0.55, 0.151, 0.9, 0.181),
        _line("left two", 0.1, 0.185, 0.45, 0.215),
        _line("right two", 0.55, 0.186, 0.9, 0.216),
        _line("1.", 0.1, 0.30, 0.12, 0.33),
        _line("a numbered item below both columns", 0.14, 0.30, 0.9, 0.33),
    ]
    ordered = [line.text for line in reading_order(engine_order)]
    assert ordered == [
        "Heading across the page",
        "left one",
        "left two",
        "right one",
        "right two",
        "1.",
        "a numbered item below both columns",
    ]
    page = OcrPage.from_lines(reading_order(engine_order), "test")
    assert "left one\nleft two\nright one\nright two" in page.text
    assert page.text.endswith("1. a numbered item below both columns")


# -- the registry and the engines --------------------------------------------------------------


def test_an_unknown_engine_names_the_known_ones_and_the_setting() -> None:
    with pytest.raises(OcrError) as info:
        get_engine(OcrOptions(engine="abbyy"))
    message = str(info.value)
    assert "'abbyy'" in message and "rapidocr, tesseract" in message
    assert "ingest.ocr_engine" in message and "INSTRUCTOR_SEARCH_INGEST__OCR_ENGINE" in message


def test_options_come_from_the_settings() -> None:
    settings = load_settings(
        ingest={"ocr": "always", "ocr_engine": "tesseract", "ocr_language": "deu", "ocr_dpi": 300}
    )
    options = OcrOptions.from_settings(settings.ingest)
    assert options == OcrOptions(mode="always", engine="tesseract", language="deu", dpi=300)
    assert options.tag == "ocr:tesseract:deu:300dpi:v1"


def test_rapidocr_refuses_a_language_its_models_lack() -> None:
    with pytest.raises(OcrError, match=r"reads en, ch, zh.*'de'.*ingest.ocr_language.*tesseract"):
        get_engine(OcrOptions(language="de"))


def test_tesseract_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without the tesseract program
    clear_engines()
    with pytest.raises(OcrError) as info:
        get_engine(OcrOptions(engine="tesseract"))
    message = str(info.value)
    assert "apt install tesseract-ocr tesseract-ocr-eng" in message
    assert "ingest.ocr_engine" in message and "rapidocr" in message


@pytest.mark.ocr
def test_rapidocr_reads_a_rendered_page_with_boxes_where_the_text_is() -> None:
    data = pages_pdf([("image", LINES)])
    page = ocr_page(data, 1, file_name="scan.pdf", password=None, options=OcrOptions(), cache=None)
    assert page.engine == "rapidocr"
    assert "Glaciers carve deep valleys" in page.text and "molten basalt" in page.text
    assert [page.text[s:e] for s, e in page.spans] == [line.text for line in page.lines]
    first = next(line for line in page.lines if "Glaciers" in line.text)
    x0, y0, x1, y1 = first.box
    # The picture spans x 5-115 mm and y 5-~40 mm of a 120 x 60 mm page; the first line is at its top.
    assert 0.04 < x0 < 0.2 and 0.05 < y0 < 0.3 and x0 < x1 <= 1 and y0 < y1 < 0.4
    assert first.confidence > 0.8


@pytest.mark.ocr
def test_tesseract_reads_a_rendered_page() -> None:
    if shutil.which("tesseract") is None:
        pytest.skip("needs the tesseract program: apt install tesseract-ocr tesseract-ocr-eng")
    clear_engines()
    data = pages_pdf([("image", LINES)])
    options = OcrOptions(engine="tesseract")
    page = ocr_page(data, 1, file_name="scan.pdf", password=None, options=options, cache=None)
    assert page.engine == "tesseract"
    assert "Glaciers carve deep valleys" in page.text and "Volcanoes erupt molten basalt" in page.text
    assert [page.text[s:e] for s, e in page.spans] == [line.text for line in page.lines]


# -- ocr_page and the page cache ---------------------------------------------------------------


@pytest.mark.ocr
def test_ocr_page_is_read_once_then_from_the_cache_file(
    counting: type[CountingEngine], tmp_path: Path
) -> None:
    data = pages_pdf([("image", LINES)])
    options = OcrOptions(engine="counting")
    path = tmp_path / "cache" / "pages.sqlite"
    first = ocr_page(data, 1, file_name="s.pdf", password=None, options=options, cache=PageCache(path))
    assert counting.calls == 1 and "Glaciers" in first.text
    # Another PageCache on the same file: what another process sees.
    again = ocr_page(data, 1, file_name="s.pdf", password=None, options=options, cache=PageCache(path))
    assert again == first and counting.calls == 1
    # Other options are another entry.
    ocr_page(
        data, 1, file_name="s.pdf", password=None, options=OcrOptions(engine="counting", dpi=150), cache=None
    )
    assert counting.calls == 2


def test_a_blank_page_does_not_run_the_engine(counting: type[CountingEngine]) -> None:
    page = ocr_page(
        pages_pdf([("blank", [])]),
        1,
        file_name="b.pdf",
        password=None,
        options=OcrOptions(engine="counting"),
        cache=None,
    )
    assert page.text == "" and page.lines == () and counting.calls == 0


def test_page_cache_keeps_methods_apart_and_is_bounded(tmp_path: Path) -> None:
    for cache in (PageCache(max_entries=3), PageCache(tmp_path / "p.sqlite", max_entries=3)):
        cache.put(b"k", "text layer")
        cache.put(b"k", "ocr output", "ocr:x")
        assert cache.get(b"k") == "text layer" and cache.get(b"k", "ocr:x") == "ocr output"
        assert cache.get(b"other") is None
        assert (cache.hits, cache.misses) == (2, 1)
        for n in range(5):
            cache.put(bytes([n]), str(n))
        assert len(cache) <= 3 + 255  # the file is trimmed every 256 writes; memory at once
    memory = PageCache(max_entries=3)
    for n in range(5):
        memory.put(bytes([n]), str(n))
    assert len(memory) == 3 and memory.get(bytes([0])) is None and memory.get(bytes([4])) == "4"


def test_page_cache_file_is_trimmed_to_its_bound(tmp_path: Path) -> None:
    cache = PageCache(tmp_path / "p.sqlite", max_entries=10)
    for n in range(300):
        cache.put(n.to_bytes(2, "big"), str(n))
    assert len(cache) <= 10 + 255
    assert cache.get((299).to_bytes(2, "big")) == "299"


def test_for_data_dir_is_one_file_per_folder(tmp_path: Path) -> None:
    cache = PageCache.for_data_dir(tmp_path / "data")
    assert cache is PageCache.for_data_dir(tmp_path / "data")
    assert cache.path == (tmp_path / "data" / "cache" / "pages.sqlite").resolve()
    assert cache.path.exists()


def test_an_unusable_cache_file_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "pages.sqlite"
    path.write_bytes(b"this is not a SQLite database" * 100)
    with caplog.at_level(logging.WARNING):
        cache = PageCache(path)
        cache.put(b"k", "v")
    assert cache.get(b"k") == "v"
    assert "page cache" in caplog.text and "in memory" in caplog.text


def test_render_fingerprint_changes_with_the_page_only() -> None:
    one = pages_pdf([("image", LINES), ("text", ["a page of text"])])
    edited = pages_pdf([("image", LINES), ("text", ["another page of text"])])
    assert pdf_render_fingerprint(one, 1, password=None) == pdf_render_fingerprint(edited, 1, password=None)
    assert pdf_render_fingerprint(one, 2, password=None) != pdf_render_fingerprint(edited, 2, password=None)
    assert pdf_render_fingerprint(b"not a pdf", 1, password=None) is None


@pytest.mark.ocr
def test_rapidocr_reads_a_tilted_scan() -> None:
    import io

    from fpdf import FPDF
    from ocrgen import text_image

    picture = Image.open(io.BytesIO(text_image(LINES))).rotate(6, expand=True, fillcolor="white")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    pdf = FPDF(format=(120, 80))
    pdf.add_page()
    pdf.image(buffer, x=5, y=5, w=110)
    page = ocr_page(
        bytes(pdf.output()), 1, file_name="tilted.pdf", password=None, options=OcrOptions(), cache=None
    )
    assert "Glaciers carve deep valleys" in page.text and "Volcanoes erupt molten basalt" in page.text
