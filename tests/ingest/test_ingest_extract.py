"""Text extraction: every good and bad kind of input, with files generated in the test."""

from __future__ import annotations

import io
import logging

import pytest
from pdfgen import (
    DEJAVU,
    TOPICS,
    blank_pdf_bytes,
    encrypted_pdf_bytes,
    image_only_pdf_bytes,
    pdf_bytes,
)

from ingest.errors import DocumentError
from ingest.extract import clean_text, decode_text, extract_text
from ingest.ocr import OcrOptions


def test_pdf_pages_keep_their_numbers() -> None:
    data = pdf_bytes([TOPICS["photosynthesis"], "", TOPICS["volcano"]])
    extracted = extract_text(data, file_name="two.pdf")
    assert extracted.kind == "pdf"
    assert extracted.page_count == 3
    assert [page.number for page in extracted.pages] == [1, 3]  # the empty page 2 is left out
    assert "Chlorophyll" in extracted.pages[0].text
    assert "magma chamber" in extracted.pages[1].text


def test_non_latin_pdf_with_a_unicode_font() -> None:
    if not DEJAVU.exists():
        pytest.skip(f"needs the DejaVu font at {DEJAVU} to write a non-Latin PDF")
    text = "Привет, мир. Καλημέρα κόσμε. Ελληνικά και русский текст."
    extracted = extract_text(pdf_bytes([text], unicode_font=DEJAVU), file_name="ru.pdf")
    assert extracted.pages[0].text == text


def test_non_latin_text_file_and_bom() -> None:
    text = "مرحبا بالعالم\n你好，世界。\nПривет, мир"
    extracted = extract_text(b"\xef\xbb\xbf" + text.encode("utf-8"), file_name="hello.txt")
    assert extracted.pages[0].text == text
    assert extracted.pages[0].number is None
    assert extracted.page_count is None
    utf16 = extract_text(text.encode("utf-16"), file_name="hello.md")
    assert utf16.pages[0].text == text


def test_windows_1252_text_is_read() -> None:
    extracted = extract_text("café crème – naïve".encode("cp1252"), file_name="menu.txt")
    assert extracted.pages[0].text == "café crème – naïve"


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b"", "empty.pdf", "empty file"),
        (b"", "empty.txt", "empty file"),
        (b"   \n\n\t ", "blank.txt", "no text"),
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "paper.pdf", "not a PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.pdf", "looks like an image"),
        (b"%PDF-1.4\n%%EOF\n", "stub.pdf", "malformed"),
        (b"ELF\x00\x01\x02\x00\x00binary" * 20, "program.txt", "binary"),
        (b"%PDF-1.7 fake", "renamed.txt", "rename it to .pdf"),
    ],
)
def test_bad_inputs_raise_document_error_with_reason(data: bytes, name: str, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason):
        extract_text(data, file_name=name)


def test_truncated_pdf_is_reported_malformed() -> None:
    data = pdf_bytes([TOPICS["bread"]])
    with pytest.raises(DocumentError, match="malformed or truncated"):
        extract_text(data[: len(data) // 2], file_name="cut.pdf")


def test_encrypted_pdf_needs_its_password() -> None:
    data = encrypted_pdf_bytes(TOPICS["chess"], user_password="s3cret", owner_password="owner")
    with pytest.raises(DocumentError, match="needs a password; pass it with --password"):
        extract_text(data, file_name="locked.pdf")
    with pytest.raises(DocumentError, match="password given does not open it"):
        extract_text(data, file_name="locked.pdf", password="wrong")
    extracted = extract_text(data, file_name="locked.pdf", password="s3cret")
    assert "checkmate" in extracted.pages[0].text


def test_owner_password_only_pdf_opens_without_password() -> None:
    data = encrypted_pdf_bytes(TOPICS["glacier"], user_password="", owner_password="owner-only")
    extracted = extract_text(data, file_name="restricted.pdf")
    assert "moraines" in extracted.pages[0].text


def test_image_only_pdf_with_ocr_off_names_the_setting() -> None:
    with pytest.raises(
        DocumentError, match=r"no text layer.*OCR is off \(ingest.ocr = never\).*ingest.ocr = auto"
    ):
        extract_text(image_only_pdf_bytes(), file_name="scan.pdf", ocr=OcrOptions(mode="never"))


def test_blank_pdf_says_no_text_layer() -> None:
    with pytest.raises(DocumentError, match=r"no text layer and OCR found no text: its 2 pages are blank"):
        extract_text(blank_pdf_bytes(2), file_name="blank.pdf")


def test_pypdf_warnings_do_not_reach_the_console() -> None:
    data = pdf_bytes([TOPICS["vaccine"]])
    # Break the cross-reference offsets: pypdf repairs the file and logs warnings.
    broken = data.replace(b"startxref\n", b"startxref\n1").replace(b"\n0000000", b"\n9999999", 3)
    console = io.StringIO()
    handler = logging.StreamHandler(console)  # what the CLI's logging.basicConfig installs
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        extracted = extract_text(broken, file_name="xref.pdf")
    finally:
        root.removeHandler(handler)
    assert "immune system" in extracted.pages[0].text
    assert "startxref" not in console.getvalue()


def test_clean_text_is_conservative() -> None:
    raw = "The exam-\nple shows\x00 clean\u00a0up.\r\nJean-\nPaul and COVID-\n19 stay.   Ligature: ﬁne.\n\n\n\nNext"
    assert clean_text(raw) == (
        "The example shows clean up.\nJean-\nPaul and COVID-\n19 stay. Ligature: fine.\n\nNext"
    )


def test_decode_text_rejects_nul_bytes() -> None:
    with pytest.raises(DocumentError, match="binary"):
        decode_text(b"abc\x00def", file_name="x.txt")


def test_page_cache_extracts_only_changed_pages_and_changes_nothing() -> None:
    from ingest.extract import PageTextCache, extract_pdf

    pages = [f"Page {n}: glaciers carve valley number {n} over many centuries." for n in range(1, 9)]
    original = pdf_bytes(pages)
    edited_pages = [*pages[:4], "Page 5: a completely new paragraph about volcanoes.", *pages[5:]]
    edited = pdf_bytes(edited_pages)
    cache = PageTextCache()

    first = extract_pdf(original, file_name="a.pdf", page_cache=cache)
    assert (cache.hits, cache.misses) == (0, 8)
    again = extract_pdf(original, file_name="a.pdf", page_cache=cache)
    assert (cache.hits, cache.misses) == (8, 8)
    assert again == first == extract_pdf(original, file_name="a.pdf", page_cache=None)

    after_edit = extract_pdf(edited, file_name="a.pdf", page_cache=cache)
    assert (cache.hits, cache.misses) == (15, 9)  # only the edited page was extracted
    assert after_edit == extract_pdf(edited, file_name="a.pdf", page_cache=None)
    assert "volcanoes" in after_edit.pages[4].text


def test_page_cache_is_bounded() -> None:
    from ingest.extract import PageTextCache, extract_pdf

    cache = PageTextCache(max_entries=3)
    extract_pdf(
        pdf_bytes([f"Page number {n} of the bounded test." for n in range(6)]),
        file_name="b.pdf",
        page_cache=cache,
    )
    assert len(cache) == 3


def test_password_problems_are_password_errors_for_extraction_and_rendering() -> None:
    from ingest.errors import PasswordError
    from ingest.rendering import open_document

    data = encrypted_pdf_bytes(TOPICS["chess"], user_password="s3cret", owner_password="owner")
    for password, wrong in ((None, False), ("nope", True)):
        with pytest.raises(PasswordError) as caught:
            extract_text(data, file_name="locked.pdf", password=password)
        assert caught.value.wrong is wrong
        with (
            pytest.raises(PasswordError) as rendered,
            open_document(data, file_name="locked.pdf", password=password),
        ):
            pass
        assert rendered.value.wrong is wrong
        assert "nope" not in str(caught.value) + str(rendered.value)
    with open_document(data, file_name="locked.pdf", password="s3cret") as document:
        assert len(document) == 1


def test_a_pdf_pypdf_cannot_open_is_read_by_pdfium() -> None:
    from pdfgen import pdf_bytes

    data = pdf_bytes([TOPICS["chess"], TOPICS["glacier"]])
    damaged = data[: data.rfind(b"startxref")]  # no cross-reference pointer, no %%EOF
    extracted = extract_text(damaged, file_name="damaged.pdf")
    assert extracted.page_count == 2
    assert [page.number for page in extracted.pages] == [1, 2]
    assert "chess" in extracted.pages[0].text and not extracted.ocr_pages
    # a file PDFium cannot open either keeps pypdf's message, which names the repair
    with pytest.raises(DocumentError, match=r"malformed or truncated.*qpdf"):
        extract_text(b"%PDF-1.4\n" + b"\x00garbage" * 50, file_name="hopeless.pdf")
