"""OCR of PDF pages: engines behind one protocol, a registry of them, and the OCR of one page.

* :mod:`ingest.ocr.base`: :class:`OcrLine`, :class:`OcrPage`, :class:`OcrOptions`, :class:`OcrEngine`;
* :mod:`ingest.ocr.registry`: :func:`get_engine` (``rapidocr``, the default, and ``tesseract``);
* :mod:`ingest.ocr.pages`: :func:`ocr_page`, a page rendered, read and cached.
"""

from __future__ import annotations

from ingest.ocr.base import OcrEngine, OcrLine, OcrOptions, OcrPage
from ingest.ocr.pages import ocr_page
from ingest.ocr.registry import ENGINES, get_engine

__all__ = ["ENGINES", "OcrEngine", "OcrLine", "OcrOptions", "OcrPage", "get_engine", "ocr_page"]
