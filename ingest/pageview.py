"""A hit's page as a PNG, with its passage highlighted: what the app shows when a hit is opened.

:func:`render_hit_page` renders the page with PDFium (:mod:`ingest.rendering`) and draws
semi-transparent boxes over the passage's lines. The boxes come from PDFium's text page (each
character's box; the passage found by :mod:`ingest.highlight`) or, for a page whose text came
from OCR, from the OCR lines whose spans overlap the passage. A passage that cannot be placed
leaves the page shown without a highlight (``PageImage.highlighted`` is ``False``).

The rendered page (without highlight) and its characters are kept in a bounded in-memory LRU
(:func:`cache_info`, :func:`clear_cache`), so several hits of one page render it once. Entries
are keyed by the SHA-256 of the file, the page, the resolution and a password tag: ``None``
without a password, else an HMAC of it under a random key that lives only in this process (the
password itself is never kept, logged or put in a message, and a wrong password never gets a
page rendered with the right one).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from ingest.errors import DocumentError, OcrError
from ingest.highlight import Box, char_line_boxes, locate, span_line_boxes
from ingest.ocr.base import OcrOptions
from ingest.ocr.pages import ocr_page
from ingest.rendering import PDFIUM_LOCK, open_document, render_page

if TYPE_CHECKING:
    import pypdfium2
    from PIL import Image

    from ingest.pagecache import PageCache

logger = logging.getLogger(__name__)

#: Rendered pages the LRU keeps at most, and the pixel bytes they may hold together.
CACHE_MAX_PAGES = 32
CACHE_MAX_BYTES = 96 * 1024 * 1024
#: Highlight: a yellow fill blended at this opacity (0-255), an opaque amber outline.
HIGHLIGHT_FILL = (255, 221, 0)
HIGHLIGHT_ALPHA = 96
HIGHLIGHT_OUTLINE = (230, 150, 0)
#: Resolutions accepted (dots per inch).
MIN_DPI, MAX_DPI = 36, 600

# How far into a file the PDF header may start (as ingest.extract allows).
_PDF_HEADER_WINDOW = 1024
# PDFium maps page space onto a device this many units wide and high: fractions to 1e-6.
_DEVICE_UNITS = 1_000_000


@dataclass(frozen=True)
class PageImage:
    """A page rendered for display, with the passage's highlight drawn on it.

    Attributes:
        png: the image, PNG-encoded.
        width: its width in pixels.
        height: its height in pixels.
        page: the page, 1-based.
        page_count: pages in the document.
        boxes: the highlight boxes ``(x0, y0, x1, y1)``, fractions of the page, origin top left.
        highlighted: whether the passage was located on the page (``boxes`` is then non-empty).
        ocr: whether the boxes came from OCR lines (else from PDFium's characters).
    """

    png: bytes
    width: int
    height: int
    page: int
    page_count: int
    boxes: tuple[Box, ...]
    highlighted: bool
    ocr: bool


class CacheInfo(NamedTuple):
    """The page LRU's counters since the process started (or :func:`clear_cache`).

    Attributes:
        hits: calls served from the LRU.
        misses: calls that opened the document.
        renders: pages PDFium rendered.
        pages: pages held now.
        bytes: the pixel bytes they hold.
    """

    hits: int
    misses: int
    renders: int
    pages: int
    bytes: int


@dataclass(frozen=True)
class _BasePage:
    """A rendered page without highlight, and its characters with their boxes (fractions)."""

    image: Image.Image
    page_count: int
    text: str
    char_boxes: tuple[Box | None, ...]

    @property
    def size(self) -> int:
        return self.image.width * self.image.height * len(self.image.getbands())


_CacheKey = tuple[str, int, int, bytes | None]


class _PageLru:
    """A thread-safe LRU of rendered pages, bounded by count and by pixel bytes."""

    def __init__(self, max_pages: int, max_bytes: int) -> None:
        self._pages: OrderedDict[_CacheKey, _BasePage] = OrderedDict()
        self._lock = threading.Lock()
        self._max_pages, self._max_bytes = max_pages, max_bytes
        self._bytes = self.hits = self.misses = self.renders = 0

    def get(self, key: _CacheKey) -> _BasePage | None:
        with self._lock:
            page = self._pages.get(key)
            if page is None:
                self.misses += 1
                return None
            self._pages.move_to_end(key)
            self.hits += 1
            return page

    def put(self, key: _CacheKey, page: _BasePage) -> None:
        with self._lock:
            self.renders += 1
            if key in self._pages:
                self._bytes -= self._pages.pop(key).size
            self._pages[key] = page
            self._bytes += page.size
            while self._pages and (len(self._pages) > self._max_pages or self._bytes > self._max_bytes):
                _, evicted = self._pages.popitem(last=False)
                self._bytes -= evicted.size

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self.hits, self.misses, self.renders, len(self._pages), self._bytes)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
            self._bytes = self.hits = self.misses = self.renders = 0


_CACHE = _PageLru(CACHE_MAX_PAGES, CACHE_MAX_BYTES)


def cache_info() -> CacheInfo:
    """The page LRU's counters: hits, misses, renders, pages held and their bytes."""
    return _CACHE.info()


def clear_cache() -> None:
    """Empty the page LRU and reset its counters."""
    _CACHE.clear()


def render_hit_page(
    data: bytes,
    *,
    file_name: str,
    page: int,
    passage: str,
    ocr: bool = False,
    password: str | None = None,
    dpi: int = 110,
    ocr_options: OcrOptions | None = None,
    cache: PageCache | None = None,
) -> PageImage:
    """Render the page of a hit with its passage highlighted.

    Args:
        data: the PDF's bytes (the kept file, :class:`store.files.FileStore`).
        file_name: the document's display name, for messages.
        page: the hit's page, 1-based.
        passage: the hit's text (the stored chunk).
        ocr: the chunk's text came from OCR (its ``ocr`` metadata): the boxes are those of the
            OCR lines (:func:`ingest.ocr.pages.ocr_page`) instead of PDFium's characters.
        password: the password of an encrypted PDF (never kept, logged or shown).
        dpi: the resolution of the image, 36 to 600.
        ocr_options: the OCR options the file was ingested with
            (:meth:`~ingest.ocr.base.OcrOptions.from_settings`); their tag finds the page in
            ``cache`` without OCR'ing it again. ``None``: the defaults.
        cache: the page cache ingest filled (:meth:`ingest.pagecache.PageCache.for_data_dir`);
            ``None``: an OCR page is OCR'd again (seconds).

    Returns:
        The page image; without a highlight (``highlighted=False``) when the passage cannot be
        placed on the page (a text layer that differs too much from the stored text, or an OCR
        engine that fails now: logged as a warning, the page is still shown).

    Raises:
        DocumentError: not a PDF, an encrypted PDF without a password or with a wrong one, a
            malformed file, or no such page.
        ValueError: a resolution outside 36 to 600 dpi.
    """
    if not MIN_DPI <= dpi <= MAX_DPI:
        raise ValueError(f"dpi {dpi} is out of range: use {MIN_DPI} to {MAX_DPI}")
    if b"%PDF-" not in data[:_PDF_HEADER_WINDOW]:
        raise DocumentError(
            f"{file_name!r} is not a PDF (it has no %PDF- header): only PDF pages can be shown"
        )
    base = _base_page(data, file_name=file_name, page=page, password=password, dpi=dpi)
    if ocr:
        options = ocr_options if ocr_options is not None else OcrOptions()
        boxes = _ocr_boxes(
            data,
            file_name=file_name,
            page=page,
            passage=passage,
            password=password,
            options=options,
            cache=cache,
        )
    else:
        boxes = _text_layer_boxes(base, passage)
    png = _encode(base.image, boxes)
    return PageImage(
        png=png,
        width=base.image.width,
        height=base.image.height,
        page=page,
        page_count=base.page_count,
        boxes=tuple(boxes),
        highlighted=bool(boxes),
        ocr=ocr,
    )


def _text_layer_boxes(base: _BasePage, passage: str) -> list[Box]:
    """The line boxes of the passage's characters in PDFium's text page (none when not found)."""
    location = locate(base.text, passage)
    if location is None:
        return []
    return char_line_boxes(base.text, base.char_boxes, location.start, location.end)


def _ocr_boxes(
    data: bytes,
    *,
    file_name: str,
    page: int,
    passage: str,
    password: str | None,
    options: OcrOptions,
    cache: PageCache | None,
) -> list[Box]:
    """The boxes of the OCR lines the passage overlaps: found exactly in the OCR text, else aligned."""
    try:
        read = ocr_page(data, page, file_name=file_name, password=password, options=options, cache=cache)
    except OcrError as exc:
        logger.warning("page %d of %r shown without highlight: %s", page, file_name, exc)
        return []
    start = read.text.find(passage) if passage.strip() else -1
    if start >= 0:
        end = start + len(passage)
    else:
        location = locate(read.text, passage)
        if location is None:
            return []
        start, end = location.start, location.end
    return span_line_boxes(read.spans, [line.box for line in read.lines], start, end)


def _base_page(data: bytes, *, file_name: str, page: int, password: str | None, dpi: int) -> _BasePage:
    """The rendered page and its characters, from the LRU or rendered now."""
    key: _CacheKey = (hashlib.sha256(data).hexdigest(), page, dpi, _password_tag(password))
    base = _CACHE.get(key)
    if base is not None:
        return base
    with open_document(data, file_name=file_name, password=password) as document:
        count = len(document)
        if not 1 <= page <= count:
            raise DocumentError(f"{file_name!r} has no page {page}: it has {count} page(s)")
        image = render_page(document, page, dpi=dpi)
        text, char_boxes = _characters(document, page)
    base = _BasePage(image=image, page_count=count, text=text, char_boxes=char_boxes)
    _CACHE.put(key, base)
    return base


@cache
def _process_key() -> bytes:
    """A random key for password tags, made on first use; it dies with the process."""
    return secrets.token_bytes(32)


def _password_tag(password: str | None) -> bytes | None:
    if not password:
        return None
    return hmac.new(_process_key(), password.encode("utf-8"), hashlib.sha256).digest()


def _characters(document: pypdfium2.PdfDocument, number: int) -> tuple[str, tuple[Box | None, ...]]:
    """The page's characters as PDFium reads them, each with its box as fractions of the page.

    One character per PDFium character index (U+FFFD for an unmappable one); whitespace and
    characters without extent have no box. Boxes are PDFium's loose boxes (the font's full
    height), mapped through the page's rotation and crop box as the rendering is.
    """
    import pypdfium2.raw as pdfium_c

    with PDFIUM_LOCK:
        page = document[number - 1]
        textpage = page.get_textpage()
        try:
            to_fraction = _page_to_fraction(page)
            chars: list[str] = []
            boxes: list[Box | None] = []
            for index in range(textpage.count_chars()):
                char = _to_char(pdfium_c.FPDFText_GetUnicode(textpage.raw, index))
                chars.append(char)
                boxes.append(None if char.isspace() else _char_box(textpage, index, to_fraction))
        finally:
            textpage.close()
            page.close()
    return "".join(chars), tuple(boxes)


def _char_box(
    textpage: pypdfium2.PdfTextPage,
    index: int,
    to_fraction: Callable[[float, float, float, float], Box | None],
) -> Box | None:
    """One character's loose box as fractions, or ``None`` where PDFium has none for it."""
    import pypdfium2

    try:
        return to_fraction(*textpage.get_charbox(index, loose=True))
    except pypdfium2.PdfiumError:
        return None


def _to_char(code: int) -> str:
    if 0 < code < 0x110000 and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    return "\ufffd"


def _page_to_fraction(page: pypdfium2.PdfPage) -> Callable[[float, float, float, float], Box | None]:
    """A function from a box in PDF page space to fractions of the rendered page (top-left origin).

    The affine map is PDFium's own (``FPDF_PageToDevice``, sampled at three points), so the page's
    rotation and crop box are applied exactly as when it renders.
    """
    import ctypes

    import pypdfium2.raw as pdfium_c

    def device(x: float, y: float) -> tuple[float, float]:
        device_x, device_y = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(
            page.raw,
            0,
            0,
            _DEVICE_UNITS,
            _DEVICE_UNITS,
            0,
            x,
            y,
            ctypes.byref(device_x),
            ctypes.byref(device_y),
        )
        return device_x.value / _DEVICE_UNITS, device_y.value / _DEVICE_UNITS

    step = 1000.0
    origin_x, origin_y = device(0.0, 0.0)
    along_x, along_y = device(step, 0.0)
    up_x, up_y = device(0.0, step)
    xx, xy = (along_x - origin_x) / step, (up_x - origin_x) / step
    yx, yy = (along_y - origin_y) / step, (up_y - origin_y) / step

    def convert(left: float, bottom: float, right: float, top: float) -> Box | None:
        if right <= left or top <= bottom:
            return None
        x0, y0 = origin_x + xx * left + xy * bottom, origin_y + yx * left + yy * bottom
        x1, y1 = origin_x + xx * right + xy * top, origin_y + yx * right + yy * top
        return (_clamp(min(x0, x1)), _clamp(min(y0, y1)), _clamp(max(x0, x1)), _clamp(max(y0, y1)))

    return convert


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _encode(image: Image.Image, boxes: list[Box]) -> bytes:
    """The page as PNG, with the boxes drawn on a copy (the cached page stays clean).

    The fill goes through one mask, so boxes that touch (adjacent lines) are tinted once.
    """
    from PIL import Image as PilImage
    from PIL import ImageDraw

    shown = image
    if boxes:
        width, height = image.size
        pad = max(1.0, height / 800)
        outline = max(1, round(height / 600))
        rects = [
            (x0 * width - pad, y0 * height - pad, x1 * width + pad, y1 * height + pad)
            for x0, y0, x1, y1 in boxes
        ]
        mask = PilImage.new("L", image.size, 0)
        mask_draw = ImageDraw.Draw(mask)
        for rect in rects:
            mask_draw.rectangle(rect, fill=HIGHLIGHT_ALPHA)
        shown = image.copy()
        shown.paste(HIGHLIGHT_FILL, mask=mask)
        draw = ImageDraw.Draw(shown)
        for rect in rects:
            draw.rectangle(rect, outline=HIGHLIGHT_OUTLINE, width=outline)
    buffer = io.BytesIO()
    shown.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()
