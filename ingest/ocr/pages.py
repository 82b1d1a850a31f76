"""OCR of one PDF page: rendered with :mod:`ingest.rendering`, read by the configured engine, cached.

:func:`ocr_page` is what extraction calls for a page without a usable text layer, and what the
page view calls to find the boxes of an OCR'd passage: both get the same :class:`OcrPage` (from
the page cache when the page was OCR'd before with the same options, even in another process).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from ingest.ocr.base import OcrOptions, OcrPage
from ingest.ocr.registry import get_engine
from ingest.pagecache import pdf_render_fingerprint
from ingest.rendering import POINTS_PER_INCH, open_document, render_page

if TYPE_CHECKING:
    from PIL import Image

    from ingest.pagecache import PageCache

logger = logging.getLogger(__name__)

#: Most pixels a page is rendered with for OCR; a larger page (a poster) is rendered at a lower dpi.
MAX_PIXELS = 40_000_000
# A rendered page whose grey levels span less than this is blank: the engine is not run on it.
_BLANK_RANGE = 8


def ocr_page(
    data: bytes,
    number: int,
    *,
    file_name: str,
    password: str | None,
    options: OcrOptions,
    cache: PageCache | None,
    fingerprint: bytes | None = None,
) -> OcrPage:
    """The OCR of page ``number`` of a PDF, from the page cache or from the engine.

    The page is rendered at ``options.dpi`` (lower for a page that would pass
    :data:`MAX_PIXELS`); a page that renders blank gives an empty page without running the
    engine. PDFium's lock is held only while rendering, not while the engine reads.

    Args:
        data: the PDF's bytes.
        number: the 1-based page number.
        file_name: for messages.
        password: the password of an encrypted PDF.
        options: engine, language and dpi (``options.mode`` is not looked at here).
        cache: the page cache (``None``: always OCR).
        fingerprint: the page's :func:`~ingest.pagecache.render_fingerprint` when the caller
            has it (extraction does); otherwise it is computed when there is a cache.

    Returns:
        The page's text, lines and spans (empty when the engine found no text).

    Raises:
        OcrError: the engine is unknown, not installed, or failed on the page.
        DocumentError: PDFium cannot open the file or has no such page.
    """
    key = fingerprint
    if key is None and cache is not None:
        key = pdf_render_fingerprint(data, number, password=password)
    if cache is not None and key is not None:
        raw = cache.get(key, options.tag)
        if raw is not None:
            try:
                return OcrPage.from_json(raw)
            except ValueError:
                logger.debug("page %d of %s: damaged OCR cache entry, OCR'd again", number, file_name)
    engine = get_engine(options)
    image = _render(data, number, file_name=file_name, password=password, dpi=options.dpi)
    if _is_blank(image):
        page = OcrPage(text="", lines=(), spans=(), engine=engine.name)
    else:
        page = OcrPage.from_lines(engine.read(image), engine.name)
    if cache is not None and key is not None:
        cache.put(key, page.to_json(), options.tag)
    return page


def _render(data: bytes, number: int, *, file_name: str, password: str | None, dpi: int) -> Image.Image:
    with open_document(data, file_name=file_name, password=password) as document:
        if 1 <= number <= len(document):
            page = document[number - 1]
            try:
                width, height = page.get_size()
            finally:
                page.close()
            square_inches = max(width, 1.0) * max(height, 1.0) / POINTS_PER_INCH**2
            largest = int(math.sqrt(MAX_PIXELS / square_inches))
            if largest < dpi:
                logger.info(
                    "page %d of %s is %.0f x %.0f in: rendered for OCR at %d dpi instead of %d",
                    number,
                    file_name,
                    width / POINTS_PER_INCH,
                    height / POINTS_PER_INCH,
                    largest,
                    dpi,
                )
                dpi = max(largest, 1)
        image = render_page(document, number, dpi=dpi)
    image.info["dpi"] = (dpi, dpi)
    return image


def _is_blank(image: Image.Image) -> bool:
    extrema = image.convert("L").getextrema()
    low, high = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]  # one band: two numbers
    return high - low < _BLANK_RANGE
