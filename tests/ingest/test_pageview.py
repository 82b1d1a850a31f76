"""ingest.pageview: a hit's page rendered by PDFium, its passage highlighted from the text layer or OCR lines.

Every PDF is generated here (fpdf2, pypdf, Pillow); the passage is what ingest stores for the
page (pypdf's cleaned text, through ingest.extract), so the alignment meets the real differences
between pypdf's and PDFium's readings of the page. The OCR test runs the real engine (RapidOCR).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from fpdf import FPDF
from pdfgen import DEJAVU, TOPICS, encrypted_pdf_bytes, pdf_bytes
from PIL import Image, ImageDraw, ImageFont, ImageStat
from pypdf import PdfReader, PdfWriter
from pypdf.generic import RectangleObject
from testdata import shared_path

from ingest.errors import DocumentError
from ingest.extract import extract_text
from ingest.ocr.base import OcrOptions
from ingest.pagecache import PageCache
from ingest.pageview import PageImage, cache_info, clear_cache, render_hit_page

A4_POINTS = (595.28, 841.89)
SENTENCE = "The lighthouse keeper counted forty seven ships passing the northern cape."


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def _three_pages(sentence_y_mm: float = 150.0) -> bytes:
    """Three A4 pages; page 2 holds SENTENCE at ``sentence_y_mm`` from the top, below a paragraph."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for number in (1, 2, 3):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Page {number}. " + list(TOPICS.values())[number])
        if number == 2:
            pdf.set_xy(20, sentence_y_mm)
            pdf.cell(0, 6, SENTENCE)
    return bytes(pdf.output())


def _stored_text(data: bytes, page: int) -> str:
    """The page's text as ingest stores it (pypdf, cleaned)."""
    pages = {p.number: p.text for p in extract_text(data, file_name="t.pdf").pages}
    return pages[page]


def _decoded(image: PageImage) -> Image.Image:
    decoded = Image.open(io.BytesIO(image.png))
    decoded.load()
    return decoded.convert("RGB")


def _yellowness(image: Image.Image, box: tuple[float, float, float, float]) -> float:
    """Mean (red + green) / 2 - blue over the box: about 0 on white or black, large under yellow."""
    width, height = image.size
    crop = image.crop((int(box[0] * width), int(box[1] * height), int(box[2] * width), int(box[3] * height)))
    red, green, blue = ImageStat.Stat(crop).mean
    return float((red + green) / 2 - blue)


def test_sentence_on_page_two_is_boxed_where_it_was_written() -> None:
    data = _three_pages(sentence_y_mm=150.0)
    assert SENTENCE in _stored_text(data, 2)
    image = render_hit_page(data, file_name="t.pdf", page=2, passage=SENTENCE, dpi=110)
    assert image.highlighted and not image.ocr
    assert (image.page, image.page_count) == (2, 3)
    assert len(image.boxes) == 1  # one line
    x0, y0, x1, y1 = image.boxes[0]
    # The cell's 6 mm line starts 150 mm down and 20 mm in: the text sits inside it.
    assert 150 / 297 - 0.005 < y0 < y1 < 156 / 297 + 0.005
    assert abs(x0 - 20 / 210) < 0.01
    assert 0.5 < x1 < 0.95
    decoded = _decoded(image)
    assert decoded.size == (image.width, image.height)
    assert abs(image.width - A4_POINTS[0] * 110 / 72) <= 1
    assert abs(image.height - A4_POINTS[1] * 110 / 72) <= 1
    assert _yellowness(decoded, image.boxes[0]) > 40  # the highlight is drawn over the line
    assert _yellowness(decoded, (0.1, 0.8, 0.9, 0.9)) < 1  # and nowhere else


def test_a_multi_line_passage_gets_one_box_per_line_in_order() -> None:
    data = pdf_bytes(["Opening line.\n\n" + TOPICS["glacier"] + "\n\n" + TOPICS["bread"]])
    stored = _stored_text(data, 1)
    passage = stored[stored.index("Glaciers") : stored.index("sea level.") + len("sea level.")]
    image = render_hit_page(data, file_name="t.pdf", page=1, passage=passage)
    assert image.highlighted
    assert len(image.boxes) == 3  # the paragraph wraps to three lines on A4 at 11 pt
    tops = [box[1] for box in image.boxes]
    assert tops == sorted(tops)
    assert all(b[3] < 0.25 for b in image.boxes)  # the top of the page, above the bread paragraph


def test_a_passage_from_another_page_is_not_highlighted() -> None:
    data = _three_pages()
    image = render_hit_page(data, file_name="t.pdf", page=2, passage=_stored_text(data, 3))
    assert not image.highlighted
    assert image.boxes == ()
    assert _decoded(image).size == (image.width, image.height)  # the page is still shown


def test_ligatures_hyphenation_and_spacing_of_the_stored_text_still_align() -> None:
    # What pypdf and clean_text make of the page differs from PDFium's characters: the stored
    # passage here is rewritten the other ways too (ligature, soft hyphen, extra spaces, case).
    data = pdf_bytes([TOPICS["vaccine"]])
    passage = "A VACCINE trains the im\u00admune   system to recog-\nnise a pathogen without causing the dis\ufb01ease"
    image = render_hit_page(data, file_name="t.pdf", page=1, passage=passage)
    assert image.highlighted
    assert image.boxes[0][1] < 0.1


def test_encrypted_pdf_renders_with_its_password_and_refuses_others(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    data = encrypted_pdf_bytes(SENTENCE, user_password="open sesame", owner_password="owner-secret")
    image = render_hit_page(data, file_name="locked.pdf", page=1, passage=SENTENCE, password="open sesame")
    assert image.highlighted
    with pytest.raises(DocumentError, match="needs a password") as missing:
        render_hit_page(data, file_name="locked.pdf", page=1, passage=SENTENCE)
    assert "locked.pdf" in str(missing.value)
    # The right password's page is cached: a wrong one must still be refused, not served from it.
    with pytest.raises(DocumentError, match="password given does not open it") as wrong:
        render_hit_page(data, file_name="locked.pdf", page=1, passage=SENTENCE, password="guess-1234")
    assert "guess-1234" not in str(wrong.value)
    assert "open sesame" not in repr(cache_info())
    assert "open sesame" not in caplog.text and "guess-1234" not in caplog.text


def test_lru_renders_a_page_once_for_several_hits() -> None:
    data = _three_pages()
    stored = _stored_text(data, 2)
    first = render_hit_page(data, file_name="t.pdf", page=2, passage=SENTENCE)
    assert cache_info().renders == 1
    second = render_hit_page(data, file_name="t.pdf", page=2, passage=stored[:60])
    info = cache_info()
    assert (info.renders, info.hits, info.pages) == (1, 1, 1)
    assert first.boxes != second.boxes  # each hit its own highlight, drawn on a clean copy
    assert _yellowness(_decoded(second), first.boxes[0]) < 1
    render_hit_page(data, file_name="t.pdf", page=3, passage=SENTENCE)
    render_hit_page(data, file_name="t.pdf", page=2, passage=SENTENCE, dpi=72)
    assert cache_info().renders == 3  # another page, another resolution: rendered


def test_missing_page_non_pdf_and_malformed_pdf_are_document_errors() -> None:
    data = _three_pages()
    for page in (0, 4):
        with pytest.raises(DocumentError, match=rf"'t.pdf' has no page {page}: it has 3 page\(s\)"):
            render_hit_page(data, file_name="t.pdf", page=page, passage=SENTENCE)
    with pytest.raises(DocumentError, match=r"'notes\.pdf' is not a PDF"):
        render_hit_page(b"just some text\n", file_name="notes.pdf", page=1, passage="text")
    with pytest.raises(DocumentError, match="cannot be opened"):
        render_hit_page(b"%PDF-1.7\n%%EOF\n", file_name="broken.pdf", page=1, passage="text")
    with pytest.raises(ValueError, match="dpi 5"):
        render_hit_page(data, file_name="t.pdf", page=1, passage=SENTENCE, dpi=5)


def _transformed(data: bytes, *, rotate: int = 0, crop_bottom_half: bool = False) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    for page in writer.pages:
        if rotate:
            page.rotate(rotate)
        if crop_bottom_half:
            width, height = float(page.mediabox.width), float(page.mediabox.height)
            page.cropbox = RectangleObject((0, 0, width, height / 2))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_boxes_follow_the_crop_box() -> None:
    # SENTENCE 200 mm down an A4 page; the crop box keeps the lower half (148.5 mm to 297 mm).
    data = _transformed(_three_pages(sentence_y_mm=200.0), crop_bottom_half=True)
    image = render_hit_page(data, file_name="t.pdf", page=2, passage=SENTENCE)
    assert image.highlighted
    assert abs(image.height - A4_POINTS[1] / 2 * 110 / 72) <= 1
    y0 = image.boxes[0][1]
    assert abs(y0 - (200 - 148.5) / 148.5) < 0.02


def test_boxes_follow_the_page_rotation() -> None:
    # Rotated 90 degrees clockwise: the top-left of the portrait page is the top-right of the image.
    data = _transformed(pdf_bytes([SENTENCE]), rotate=90)
    image = render_hit_page(data, file_name="t.pdf", page=1, passage=SENTENCE)
    assert image.width > image.height
    assert image.highlighted
    assert all(box[0] > 0.85 for box in image.boxes)
    assert all(box[1] < 0.7 for box in image.boxes)
    decoded = _decoded(image)
    assert all(_yellowness(decoded, box) > 20 for box in image.boxes)


@pytest.mark.shared_data
def test_two_column_layout_highlights_a_passage_pypdf_extracts() -> None:
    data = shared_path("data", "pdfs", "layout_two-column-lorem.pdf").read_bytes()
    stored = _stored_text(data, 1)
    start = stored.index("Nam dui ligula")
    passage = stored[start : start + 400]
    image = render_hit_page(data, file_name="layout_two-column-lorem.pdf", page=1, passage=passage)
    assert image.highlighted
    assert len(image.boxes) >= 6
    # The passage is in the left column, in the lower half of the page.
    assert all(box[2] < 0.52 for box in image.boxes)
    assert all(0.5 < box[1] < 0.85 for box in image.boxes)


SCAN_LINES = ("Harbour lights glow at dusk", "Seven ferries cross the bay", "Gulls follow the fishing boats")
# The scan: a 1000 x 600 px picture drawn across the top of an A4 page (210 mm wide, so 126 mm
# high); line i starts 60 + 180 i px down and is about 56 px high.
_SCAN_MM_PER_PX = 210 / 1000


def _scan_line_band(index: int) -> tuple[float, float]:
    top_px = 60 + 180 * index
    return top_px * _SCAN_MM_PER_PX / 297, (top_px + 56) * _SCAN_MM_PER_PX / 297


def _scanned_pdf() -> bytes:
    """An image-only page: three lines of large text as pixels, no text layer."""
    picture = Image.new("RGB", (1000, 600), "white")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.truetype(str(DEJAVU), 48)
    for index, line in enumerate(SCAN_LINES):
        draw.text((40, 60 + 180 * index), line, fill="black", font=font)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    buffer.seek(0)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(buffer, x=0, y=0, w=210)
    return bytes(pdf.output())


@pytest.mark.ocr
def test_ocr_page_highlights_the_line_of_the_passage() -> None:
    data = _scanned_pdf()
    options = OcrOptions(dpi=100)
    cache = PageCache()
    image = render_hit_page(
        data, file_name="scan.pdf", page=1, passage=SCAN_LINES[1], ocr=True, ocr_options=options, cache=cache
    )
    assert image.highlighted and image.ocr
    assert len(image.boxes) == 1
    x0, y0, x1, y1 = image.boxes[0]
    top, bottom = _scan_line_band(1)
    assert y0 < top + 0.01 and y1 > bottom - 0.01  # covers the passage's line...
    assert y0 > _scan_line_band(0)[1] and y1 < _scan_line_band(2)[0]  # ...and neither neighbour
    assert x0 < 0.1 and 0.5 < x1 < 0.9
    assert _yellowness(_decoded(image), image.boxes[0]) > 20
    # The page cache holds the OCR now: another hit of the page is not OCR'd again.
    hits = cache.hits
    again = render_hit_page(
        data, file_name="scan.pdf", page=1, passage=SCAN_LINES[1], ocr=True, ocr_options=options, cache=cache
    )
    assert cache.hits == hits + 1
    assert again.boxes == image.boxes
    other = render_hit_page(
        data,
        file_name="scan.pdf",
        page=1,
        passage=TOPICS["chess"],
        ocr=True,
        ocr_options=options,
        cache=cache,
    )
    assert not other.highlighted and other.boxes == ()


def test_ocr_engine_failure_still_shows_the_page(caplog: pytest.LogCaptureFixture) -> None:
    image = render_hit_page(
        _scanned_pdf(),
        file_name="scan.pdf",
        page=1,
        passage=SCAN_LINES[1],
        ocr=True,
        ocr_options=OcrOptions(engine="no-such-engine"),
    )
    assert image.ocr and not image.highlighted
    assert _decoded(image).size == (image.width, image.height)
    assert "unknown OCR engine 'no-such-engine'" in caplog.text
