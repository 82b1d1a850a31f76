"""Which pages of a PDF are OCR'd, what each yields, and how a file's pages are reported.

:class:`PageReader` is given each page's text layer (as pypdf extracted and cleaned it, or
``None`` when its extraction failed) and decides, by ``ingest.ocr``:

* ``auto``: a page is OCR'd when its layer has fewer than :data:`MIN_LAYER_CHARS` visible
  characters (no text, or a few: a page number, a chart label), when it fails the garbage test
  (:func:`ingest.quality.assess_text`), or when its extraction failed (a broken content stream
  that PDFium may still render);
* ``always``: every page is OCR'd;
* ``never``: no page is; a page without text is skipped with the reason.

What a page yields: the OCR text when the engine found text (for a page with only a few
characters in its layer, only when it found at least as many), else the layer's text. A page
that yields nothing is *empty* when OCR ran and found nothing on a page without a layer, and
*skipped* with its reason otherwise (OCR off, the engine failed, a broken page OCR could not
read). An engine that fails on a page whose layer has some text keeps that text (and says so
in the log).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ingest.errors import DocumentError, OcrError
from ingest.ocr.base import OcrOptions
from ingest.ocr.pages import ocr_page
from ingest.pagecache import render_fingerprint
from ingest.quality import assess_text

if TYPE_CHECKING:
    from ingest.pagecache import PageCache

logger = logging.getLogger(__name__)

#: A text layer with fewer visible characters than this is "no usable text layer" (``auto``).
MIN_LAYER_CHARS = 16

OCR_OFF = "OCR is off (ingest.ocr = never)"
_BROKEN = "its text could not be extracted (a broken content stream)"
_OCR_SETTING_HINT = "set ingest.ocr = auto (env INSTRUCTOR_SEARCH_INGEST__OCR=auto) to OCR such pages"


def page_list(pages: Iterable[int]) -> str:
    """``page 3``, ``pages 2, 4`` or ``pages 2-6, 9``."""
    numbers = sorted(set(pages))
    runs: list[str] = []
    start = previous = None
    for number in [*numbers, None]:
        if start is not None and (number is None or previous is None or number != previous + 1):
            runs.append(str(start) if start == previous else f"{start}-{previous}")
            start = None
        if number is not None and start is None:
            start = number
        previous = number
    return ("page " if len(numbers) == 1 else "pages ") + ", ".join(runs)


@dataclass
class PageReport:
    """What the pages of one file yielded (1-based page numbers).

    Attributes:
        ocr_pages: pages whose text came from OCR.
        empty_pages: pages without text: no text layer, and OCR (where it ran) found none.
        skipped_pages: pages that were not read, with the reason.
        garbled_pages: pages whose text layer failed the garbage test.
        ocr_seconds: time spent rendering and OCR'ing.
        ocr_cached: OCR'd pages that came from the page cache.
        ocr_tried: pages OCR was tried on.
    """

    ocr_pages: list[int] = field(default_factory=list)
    empty_pages: list[int] = field(default_factory=list)
    skipped_pages: dict[int, str] = field(default_factory=dict)
    garbled_pages: list[int] = field(default_factory=list)
    ocr_seconds: float = 0.0
    ocr_cached: int = 0
    ocr_tried: int = 0


def pages_warning(count: int, empty: Iterable[int], skipped: dict[int, str]) -> str | None:
    """One line naming the pages that yielded nothing, for a file stored all the same (``None``: none).

    Args:
        count: the file's pages.
        empty: pages without text.
        skipped: pages not read, with the reason.
    """
    parts: list[str] = []
    empty = sorted(empty)
    if empty:
        parts.append(f"{page_list(empty)} of {count} yielded no text (blank, or OCR found nothing)")
    by_reason: dict[str, list[int]] = {}
    for number, reason in sorted(skipped.items()):
        by_reason.setdefault(reason, []).append(number)
    parts.extend(
        f"{page_list(numbers)} of {count} skipped: {reason}" for reason, numbers in by_reason.items()
    )
    if not parts:
        return None
    return "; ".join(parts) + "; the other pages are searchable"


def nothing_read(file_name: str, count: int, report: PageReport, *, has_images: bool) -> DocumentError:
    """The error of a PDF none of whose pages yielded text: why, and the fix where there is one."""
    name = repr(file_name)
    skipped, empty = report.skipped_pages, report.empty_pages
    if len(empty) == count:
        if has_images:
            what = f"its {count} page(s) are images and OCR found no text on them"
        else:
            what = "it is a blank page" if count == 1 else f"its {count} pages are blank"
        return DocumentError(f"{name} has no text layer and OCR found no text: {what}")
    if skipped and all(reason == OCR_OFF for reason in skipped.values()) and len(skipped) == count:
        return DocumentError(
            f"{name} has no text layer on its {count} page(s) (scanned images?) and {OCR_OFF}; {_OCR_SETTING_HINT}"
        )
    if len(skipped) == count and all(reason.startswith(_BROKEN) for reason in skipped.values()):
        return DocumentError(f"{name} is a malformed PDF: text extraction failed on all {count} page(s)")
    details = pages_warning(count, empty, skipped) or ""
    return DocumentError(
        f"{name}: no page yielded text: {details.removesuffix('; the other pages are searchable')}"
    )


class PageReader:
    """Decides, page by page, whether to OCR, and records what each page yields (module docstring).

    Args:
        data: the PDF's bytes.
        file_name: for messages.
        password: the password of an encrypted PDF.
        options: the OCR options.
        cache: the page cache for OCR output (``None``: no cache).
    """

    def __init__(
        self,
        data: bytes,
        *,
        file_name: str,
        password: str | None,
        options: OcrOptions,
        cache: PageCache | None,
    ) -> None:
        self.data = data
        self.file_name = file_name
        self.password = password
        self.options = options
        self.cache = cache
        self.report = PageReport()
        self._kept_after_failure: dict[int, str] = {}

    def why_ocr(self, layer: str | None) -> str | None:
        """Why a page with this text layer is OCR'd (``None``: its layer is used as it is)."""
        mode = self.options.mode
        if mode == "never":
            return None
        if mode == "always":
            return "ingest.ocr = always"
        if layer is None:
            return "broken"
        if sum(1 for ch in layer if not ch.isspace()) < MIN_LAYER_CHARS:
            return "short"
        quality = assess_text(layer)
        if quality.garbled:
            return f"garbled: {quality.reason}"
        return None

    def read(
        self, number: int, page: Any, layer: str | None, memo: dict[tuple[int, int], bytes]
    ) -> tuple[str, bool]:
        """The text page ``number`` yields, and whether it came from OCR (``""``: nothing).

        Args:
            number: the 1-based page number.
            page: the pypdf page (for the page cache's fingerprint).
            layer: its cleaned text layer, or ``None`` when extraction failed.
            memo: the document's fingerprint memo.
        """
        why = self.why_ocr(layer)
        if why is None:
            if layer is None:
                self.report.skipped_pages[number] = _BROKEN
                return "", False
            if not layer:
                self.report.skipped_pages[number] = OCR_OFF
            return layer, False
        if why.startswith("garbled"):
            self.report.garbled_pages.append(number)
        text, error = self._ocr(number, page, memo)
        return self._choose(number, why, layer, text, error)

    def _choose(
        self, number: int, why: str, layer: str | None, text: str, error: str | None
    ) -> tuple[str, bool]:
        layer_chars = sum(1 for ch in layer or "" if not ch.isspace())
        ocr_chars = sum(1 for ch in text if not ch.isspace())
        if ocr_chars and (why != "short" or ocr_chars >= layer_chars):
            self.report.ocr_pages.append(number)
            return text, True
        if layer:
            if error is not None:
                self._kept_after_failure[number] = error
            return layer, False
        if error is not None:
            self.report.skipped_pages[number] = (
                f"{_BROKEN}, and OCR failed: {error}" if layer is None else f"OCR failed: {error}"
            )
        elif layer is None:
            self.report.skipped_pages[number] = f"{_BROKEN}, and OCR found no text on it"
        else:
            self.report.empty_pages.append(number)
        return "", False

    def _ocr(self, number: int, page: Any, memo: dict[tuple[int, int], bytes]) -> tuple[str, str | None]:
        """The OCR text of a page and ``None``, or ``""`` and the reason OCR failed."""
        key = None
        if self.cache is not None:
            try:
                key = render_fingerprint(page, memo)
            except Exception:  # an unreadable object only means "not cached"
                logger.debug("page %d of %s: no render fingerprint", number, self.file_name, exc_info=True)
        hits = self.cache.hits if self.cache is not None else 0
        started = time.perf_counter()
        self.report.ocr_tried += 1
        try:
            result = ocr_page(
                self.data,
                number,
                file_name=self.file_name,
                password=self.password,
                options=self.options,
                cache=self.cache if key is not None else None,
                fingerprint=key,
            )
        except (OcrError, DocumentError) as exc:
            return "", str(exc)
        finally:
            self.report.ocr_seconds += time.perf_counter() - started
        if self.cache is not None and self.cache.hits > hits:
            self.report.ocr_cached += 1
        return result.text, None

    def log(self, count: int) -> None:
        """One INFO line for a file OCR was tried on (and a warning for pages an engine failed on)."""
        report = self.report
        if report.ocr_tried:
            logger.info(
                "%s: %d of %d page(s) OCR'd with %s in %.1f s (%d from the page cache)%s",
                self.file_name,
                len(report.ocr_pages),
                count,
                self.options.engine,
                report.ocr_seconds,
                report.ocr_cached,
                f"; {page_list(report.garbled_pages)} had a garbled text layer"
                if report.garbled_pages
                else "",
            )
        if self._kept_after_failure:
            pages = sorted(self._kept_after_failure)
            logger.warning(
                "%s: OCR failed on %s (%s); their text layer is kept as it is",
                self.file_name,
                page_list(pages),
                self._kept_after_failure[pages[0]],
            )
