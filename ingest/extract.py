"""Text out of PDFs (per page, with page numbers), ``.txt`` and ``.md`` files.

Every way a file can be unusable ends in a :class:`~ingest.errors.DocumentError` whose message
says what is wrong with that file and, where there is one, the fix: an encrypted PDF without
its password, a malformed or truncated PDF, a PDF none of whose pages yielded text (blank, OCR
found nothing, OCR off), an empty file, a non-PDF named ``.pdf``, a binary file named ``.txt``.

A PDF page without a usable text layer (none, a few characters, or text that fails the garbage
test of :mod:`ingest.quality`) is rendered and OCR'd (:mod:`ingest.ocr`, setting ``ingest.ocr``);
:class:`ExtractedText` records the pages OCR'd, the pages that yielded nothing and the pages
skipped, with the reason. Text-layer text and OCR output are kept in the page cache
(:mod:`ingest.pagecache`), so an unchanged page is neither extracted nor OCR'd twice.

Extracted text is cleaned conservatively (:func:`clean_text`): NUL and control characters are
dropped, ligatures expanded, words hyphenated at a line end joined, whitespace normalised.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from ingest.cleaning import clean_text
from ingest.errors import (
    DocumentError,
    IngestCancelledError,
    LimitExceededError,
    MalformedPdfError,
    PasswordError,
)
from ingest.ocr.base import OcrOptions
from ingest.ocr.decide import PageReader, nothing_read, pages_warning
from ingest.pagecache import PageCache, page_fingerprint
from ingest.rendering import PDFIUM_LOCK, open_document

if TYPE_CHECKING:
    from pypdf import PdfReader

logger = logging.getLogger(__name__)

#: How far into a file a PDF header may start (the PDF spec tolerates leading junk).
_PDF_HEADER_WINDOW = 1024


@dataclass(frozen=True)
class Page:
    """The text of one page (or of a whole text file).

    Attributes:
        number: 1-based page number; ``None`` for text files.
        text: the cleaned text.
        ocr: whether the text came from OCR (:mod:`ingest.ocr`) rather than the text layer.
    """

    number: int | None
    text: str
    ocr: bool = False


@dataclass(frozen=True)
class ExtractedText:
    """The text of a document.

    Attributes:
        pages: pages that have text, in order (empty pages are left out).
        page_count: pages in the PDF, empty ones included; ``None`` for text files.
        kind: ``"pdf"`` or ``"text"``.
        ocr_pages: pages whose text came from OCR.
        empty_pages: pages without text: no text layer, and OCR (where it ran) found none.
        skipped_pages: pages that were not read, with the reason (OCR off, the engine failed,
            a broken content stream).
        garbled_pages: pages whose text layer failed the garbage test (:mod:`ingest.quality`).
        ocr_seconds: time spent rendering and OCR'ing (not compared).
    """

    pages: tuple[Page, ...]
    page_count: int | None
    kind: str
    ocr_pages: tuple[int, ...] = ()
    empty_pages: tuple[int, ...] = ()
    skipped_pages: dict[int, str] = field(default_factory=dict)
    garbled_pages: tuple[int, ...] = ()
    ocr_seconds: float = field(default=0.0, compare=False)

    @property
    def warning(self) -> str | None:
        """One line naming the pages that yielded nothing (``None`` when every page gave text)."""
        if self.page_count is None:
            return None
        return pages_warning(self.page_count, self.empty_pages, self.skipped_pages)


# -- limits ------------------------------------------------------------------------------------

_CHARS_SETTING = "setting ingest.max_chars_per_file, env INSTRUCTOR_SEARCH_INGEST__MAX_CHARS_PER_FILE"


def too_much_text(file_name: str, chars: int, limit: int, *, where: str = "") -> LimitExceededError:
    """The error for a file over ``ingest.max_chars_per_file``.

    Args:
        file_name: the file.
        chars: the characters counted (all of them, or as far as extraction went).
        limit: the setting's value.
        where: how far extraction went, e.g. ``" by page 3 of 200"``.
    """
    return LimitExceededError(
        f"{file_name!r} has {chars:,} characters of text{where}, over the limit of {limit:,} per file "
        f"({_CHARS_SETTING}); it was not ingested: split the file or raise the limit"
    )


def _check_cancel(cancel: threading.Event | None, file_name: str) -> None:
    if cancel is not None and cancel.is_set():
        raise IngestCancelledError(f"ingest cancelled while extracting {file_name!r}")


# -- text files --------------------------------------------------------------------------------


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13))
    return controls > max(8, len(sample) // 100)


def decode_text(data: bytes, *, file_name: str) -> str:
    """Decode a text file: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252.

    Args:
        data: the file's bytes.
        file_name: for messages.

    Returns:
        The text.

    Raises:
        DocumentError: empty, binary, or a PDF named as text.
    """
    if not data:
        raise DocumentError(f"{file_name!r} is an empty file (0 bytes)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(
                f"{file_name!r} has a UTF-16 byte-order mark but is not valid UTF-16"
            ) from exc
    if data.lstrip()[:5] == b"%PDF-":
        raise DocumentError(f"{file_name!r} is a PDF file with a text extension; rename it to .pdf")
    if _looks_binary(data):
        raise DocumentError(
            f"{file_name!r} is a binary file, not text (it contains NUL or control bytes); "
            "only UTF-8 text is read from .txt and .md files"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise DocumentError(
                f"{file_name!r} is not valid UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}) "
                "and not Windows-1252 either; save it as UTF-8"
            ) from exc
        logger.warning("%s is not UTF-8; read it as Windows-1252", file_name)
        return text


# -- PDF ---------------------------------------------------------------------------------------


class _PypdfToDebug(logging.Handler):
    """Re-log pypdf's records (it warns freely on imperfect files) as debug lines of this module."""

    def emit(self, record: logging.LogRecord) -> None:
        level = logging.DEBUG if record.levelno < logging.ERROR else logging.WARNING
        logger.log(level, "pypdf: %s", record.getMessage())


def _quiet_pypdf() -> None:
    """Route pypdf's log warnings to debug logging of this module (installed once)."""
    pypdf_logger = logging.getLogger("pypdf")
    if not any(isinstance(h, _PypdfToDebug) for h in pypdf_logger.handlers):
        pypdf_logger.addHandler(_PypdfToDebug())
        pypdf_logger.propagate = False
        from pypdf.errors import PdfReadWarning

        warnings.filterwarnings("ignore", category=PdfReadWarning)


def _describe_start(data: bytes) -> str:
    head = data[:_PDF_HEADER_WINDOW].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:200]:
        return "it looks like an HTML page (a failed download?)"
    if head.startswith((b"pk\x03\x04",)):
        return "it looks like a ZIP archive (e.g. .docx)"
    if head.startswith((b"\x89png", b"\xff\xd8\xff", b"gif8")):
        return "it looks like an image"
    if head.startswith((b"{", b"[")):
        return "it looks like JSON"
    preview = data[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
    return f"it starts with {preview!r}"


def _decompression_limit() -> int:
    """The limit pypdf sets on the bytes one stream may decompress to (FlateDecode; the others match it)."""
    try:
        from pypdf import get_configuration  # type: ignore[attr-defined,unused-ignore]

        return int(get_configuration().zlib_maximum_output_length)
    except (ImportError, AttributeError):  # pypdf before 7: module constants
        from pypdf import filters

        return int(getattr(filters, "ZLIB_MAX_OUTPUT_LENGTH", 75_000_000))


def _over_pypdf_limit(file_name: str, exc: Exception, where: str) -> DocumentError:
    """The error for pypdf's ``LimitReachedError``: a decompression bomb or a hostile structure."""
    detail = str(exc).rstrip(".")
    if "decompress" in detail.lower():
        return DocumentError(
            f"{file_name!r}: {where} decompresses past pypdf's limit of {_decompression_limit():,} bytes: "
            "a decompression bomb or an extremely large stream; it was not ingested"
        )
    return DocumentError(
        f"{file_name!r}: {where} exceeds one of pypdf's safety limits ({detail}): a hostile or "
        "extremely large PDF; it was not ingested"
    )


def _open_pdf(data: bytes, *, file_name: str, password: str | None) -> PdfReader:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except LimitReachedError as exc:
        raise _over_pypdf_limit(file_name, exc, "its structure") from exc
    except (PdfReadError, FileNotDecryptedError) as exc:
        raise MalformedPdfError(
            f"{file_name!r} is a malformed or truncated PDF that cannot be opened ({exc}); "
            "re-download it or repair it (e.g. qpdf in.pdf out.pdf)"
        ) from exc
    except Exception as exc:  # pypdf raises many types on broken files; all mean "malformed"
        raise MalformedPdfError(
            f"{file_name!r} is a malformed PDF that cannot be opened ({type(exc).__name__}: {exc}); "
            "re-download it or repair it (e.g. qpdf in.pdf out.pdf)"
        ) from exc
    if not reader.is_encrypted:
        return reader
    try:
        # An owner-password-only PDF opens with the empty user password.
        opened = reader.decrypt("")
        if not opened and password:
            opened = reader.decrypt(password)
    except DependencyError as exc:
        raise DocumentError(
            f"{file_name!r} is encrypted with an algorithm that needs an extra package: {exc}"
        ) from exc
    except Exception as exc:  # broken encryption dictionaries raise assorted errors
        raise DocumentError(
            f"{file_name!r} is an encrypted PDF whose encryption data is damaged ({type(exc).__name__})"
        ) from exc
    if not opened:
        if password:
            raise PasswordError(
                f"{file_name!r} is an encrypted PDF and the password given does not open it; "
                "check the password (--password)",
                wrong=True,
            )
        raise PasswordError(
            f"{file_name!r} is an encrypted PDF that needs a password; pass it with --password "
            "(or remove the encryption, e.g. qpdf --decrypt --password=PW in.pdf out.pdf)",
            wrong=False,
        )
    return reader


def _has_images(reader: PdfReader, limit: int = 50) -> bool:
    for page in list(reader.pages)[:limit]:
        try:
            resources: Any = page.get("/Resources")
            if resources is None:
                continue
            xobjects = resources.get_object().get("/XObject")
            if xobjects is None:
                continue
            for ref in xobjects.get_object().values():
                if ref.get_object().get("/Subtype") == "/Image":
                    return True
        except Exception:  # a broken resource dictionary just means "no image found here"
            logger.debug("could not inspect images of a page", exc_info=True)
    return False


#: The page cache :func:`extract_pdf` used to be given (kept for callers of that name).
PageTextCache = PageCache

#: The process-wide, in-memory page cache :func:`extract_pdf` uses by default.
PAGE_TEXT_CACHE = PageCache()


def extract_pdf(
    data: bytes,
    *,
    file_name: str,
    password: str | None = None,
    page_cache: PageCache | None = PAGE_TEXT_CACHE,
    max_chars: int | None = None,
    cancel: threading.Event | None = None,
    ocr: OcrOptions | None = None,
) -> ExtractedText:
    """Text of each page of a PDF, from its text layer or, page by page, from OCR.

    Which pages are OCR'd (``ocr.mode``) and what an empty, skipped or garbled page is: see
    :mod:`ingest.ocr.decide`. A page whose extraction fails is OCR'd (``auto``, ``always``) or
    skipped (``never``); the other pages go on.

    Args:
        data: the PDF's bytes.
        file_name: for messages.
        password: user or owner password of an encrypted PDF.
        page_cache: pages seen before (by fingerprint) are neither extracted nor OCR'd again;
            ``None`` extracts and OCRs every page.
        max_chars: most characters of (cleaned) text the file may yield; extraction stops at the
            page that passes it (``ingest.max_chars_per_file``). ``None``: no limit.
        cancel: checked before each page; when set, extraction stops.
        ocr: the OCR options (``None``: the defaults, ``auto`` with RapidOCR).

    Returns:
        The pages with text, their 1-based numbers, the page count and what each page yielded.

    Raises:
        DocumentError: empty, not a PDF, malformed, a decompression bomb, encrypted without a
            working password, or no page yielded text (the message says why).
        LimitExceededError: the text passes ``max_chars``.
        IngestCancelledError: ``cancel`` was set.
    """
    if not data:
        raise DocumentError(f"{file_name!r} is an empty file (0 bytes)")
    if b"%PDF-" not in data[:_PDF_HEADER_WINDOW]:
        raise DocumentError(f"{file_name!r} is not a PDF although it is named .pdf: {_describe_start(data)}")
    _quiet_pypdf()
    options = ocr if ocr is not None else OcrOptions()
    pages_read = PageReader(data, file_name=file_name, password=password, options=options, cache=page_cache)
    try:
        reader = _open_pdf(data, file_name=file_name, password=password)
        page_objects = _page_objects(reader, file_name)
    except MalformedPdfError as exc:
        repaired = _pdfium_layers(data, file_name=file_name, password=password, pypdf_error=exc)
        return _read_pages(repaired, pages_read, file_name=file_name, max_chars=max_chars, cancel=cancel)
    memo: dict[tuple[int, int], bytes] = {}

    def pypdf_layers() -> Iterator[tuple[Any, str | None, dict[tuple[int, int], bytes]]]:
        for number, page in enumerate(page_objects, start=1):
            raw = _page_text(page, number, file_name=file_name, memo=memo, page_cache=page_cache)
            yield page, None if raw is None else clean_text(raw), memo

    return _read_pages(
        _Layers(len(page_objects), pypdf_layers(), has_images=lambda: _has_images(reader)),
        pages_read,
        file_name=file_name,
        max_chars=max_chars,
        cancel=cancel,
    )


@dataclass
class _Layers:
    """A document's pages for :func:`_read_pages`: (page object, cleaned text layer, fingerprint memo) each.

    The page object is pypdf's (it keys the page cache), or ``None`` for a file only PDFium could
    open (its pages are then not cached).
    """

    count: int
    pages: Iterator[tuple[Any, str | None, dict[tuple[int, int], bytes]]]
    has_images: Callable[[], bool]


def _read_pages(
    layers: _Layers,
    pages_read: PageReader,
    *,
    file_name: str,
    max_chars: int | None,
    cancel: threading.Event | None,
) -> ExtractedText:
    """Each page's text: its layer, or OCR where :class:`PageReader` decides so."""
    count = layers.count
    pages: list[Page] = []
    total = 0
    for number in range(1, count + 1):
        _check_cancel(cancel, file_name)
        page, layer, memo = next(layers.pages)
        text, from_ocr = pages_read.read(number, page, layer, memo)
        total += len(text)
        if max_chars is not None and total > max_chars:
            where = f" by page {number} of {count} (extraction stopped there)"
            raise too_much_text(file_name, total, max_chars, where=where)
        if text:
            pages.append(Page(number=number, text=text, ocr=from_ocr))
    pages_read.log(count)
    report = pages_read.report
    if not pages:
        raise nothing_read(file_name, count, report, has_images=layers.has_images())
    return ExtractedText(
        pages=tuple(pages),
        page_count=count,
        kind="pdf",
        ocr_pages=tuple(report.ocr_pages),
        empty_pages=tuple(report.empty_pages),
        skipped_pages=dict(report.skipped_pages),
        garbled_pages=tuple(report.garbled_pages),
        ocr_seconds=report.ocr_seconds,
    )


def _page_objects(reader: PdfReader, file_name: str) -> list[Any]:
    from pypdf.errors import LimitReachedError

    try:
        page_objects = list(reader.pages)
    except LimitReachedError as exc:
        raise _over_pypdf_limit(file_name, exc, "its page tree") from exc
    except Exception as exc:  # a broken page tree raises assorted errors
        raise MalformedPdfError(
            f"{file_name!r} is a malformed PDF: its page tree cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    if not page_objects:
        raise DocumentError(f"{file_name!r} is a PDF without pages")
    return page_objects


def _pdfium_layers(
    data: bytes, *, file_name: str, password: str | None, pypdf_error: MalformedPdfError
) -> _Layers:
    """The text layers of a PDF pypdf cannot open, read by PDFium (which repairs damaged cross-reference tables).

    Raises:
        MalformedPdfError: PDFium cannot open it either (``pypdf_error``, whose message names the fix).
        PasswordError: it is encrypted and the password is missing or wrong.
    """
    try:
        with open_document(data, file_name=file_name, password=password) as document:
            texts: list[str | None] = []
            for index in range(len(document)):
                with PDFIUM_LOCK:
                    page = document[index]
                    try:
                        textpage = page.get_textpage()
                        texts.append(clean_text(textpage.get_text_range()))
                        textpage.close()
                    except Exception:  # one broken page: OCR may still read it
                        logger.debug("page %d of %s: PDFium text failed", index + 1, file_name, exc_info=True)
                        texts.append(None)
                    finally:
                        page.close()
    except PasswordError:
        raise
    except DocumentError:
        raise pypdf_error from None
    if not texts:
        raise pypdf_error
    logger.info("%s: pypdf cannot open it (%s); read by PDFium instead", file_name, pypdf_error)
    return _Layers(len(texts), ((None, text, {}) for text in texts), has_images=lambda: False)


def _page_text(
    page: Any,
    number: int,
    *,
    file_name: str,
    memo: dict[tuple[int, int], bytes],
    page_cache: PageCache | None,
) -> str | None:
    """The raw text pypdf extracts from a page (cached by fingerprint); ``None``: the page is broken.

    Raises:
        DocumentError: the page passes one of pypdf's limits (a decompression bomb).
    """
    from pypdf.errors import LimitReachedError

    key = None
    if page_cache is not None:
        try:
            key = page_fingerprint(page, memo)
        except Exception:  # an unreadable object: extract the page (which reports the problem)
            logger.debug("page %d of %s: no fingerprint", number, file_name, exc_info=True)
    cached = page_cache.get(key) if page_cache is not None and key is not None else None
    if cached is not None:
        return cached
    try:
        raw = page.extract_text() or ""
    except LimitReachedError as exc:
        raise _over_pypdf_limit(file_name, exc, f"page {number}") from exc
    except Exception:  # one broken content stream should not lose the other pages
        logger.debug("page %d of %s: text extraction failed", number, file_name, exc_info=True)
        return None
    if page_cache is not None and key is not None:
        page_cache.put(key, raw)
    return raw


def extract_text(
    data: bytes,
    *,
    file_name: str,
    password: str | None = None,
    max_chars: int | None = None,
    cancel: threading.Event | None = None,
    ocr: OcrOptions | None = None,
    page_cache: PageCache | None = PAGE_TEXT_CACHE,
) -> ExtractedText:
    """Text of a PDF, ``.txt`` or ``.md`` file, chosen by the file name's extension.

    Args:
        data: the file's bytes.
        file_name: the file name (its extension selects the reader).
        password: password for an encrypted PDF.
        max_chars: most characters of (cleaned) text the file may yield
            (``ingest.max_chars_per_file``); ``None``: no limit.
        cancel: checked between pages; when set, extraction stops.
        ocr: the OCR options of PDF pages (``None``: the defaults).
        page_cache: the page cache of PDF pages (the process's in-memory one by default).

    Returns:
        The extracted text.

    Raises:
        DocumentError: the file cannot be turned into text; the message says why.
        LimitExceededError: the text passes ``max_chars`` (a :class:`DocumentError` too).
        IngestCancelledError: ``cancel`` was set.
    """
    suffix = PurePath(file_name).suffix.lower()
    if suffix == ".pdf":
        return extract_pdf(
            data,
            file_name=file_name,
            password=password,
            page_cache=page_cache,
            max_chars=max_chars,
            cancel=cancel,
            ocr=ocr,
        )
    if suffix in (".txt", ".md"):
        _check_cancel(cancel, file_name)
        text = clean_text(decode_text(data, file_name=file_name))
        if not text:
            raise DocumentError(f"{file_name!r} contains no text (only whitespace)")
        if max_chars is not None and len(text) > max_chars:
            raise too_much_text(file_name, len(text), max_chars)
        return ExtractedText(pages=(Page(number=None, text=text),), page_count=None, kind="text")
    raise DocumentError(f"unsupported file type {suffix or '(no extension)'!r} for {file_name!r}")
