"""The OCR engines by name (one module and one line of :data:`ENGINES` per engine), created once per process."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ingest.errors import OcrError
from ingest.ocr.base import OcrEngine, OcrOptions
from ingest.ocr.rapid import RapidOcrEngine
from ingest.ocr.tesseract import TesseractEngine

#: Engine name -> factory (``ingest.ocr_engine`` names one).
ENGINES: dict[str, Callable[[OcrOptions], OcrEngine]] = {
    "rapidocr": RapidOcrEngine,
    "tesseract": TesseractEngine,
}

_engines: dict[tuple[str, str], OcrEngine] = {}
_lock = threading.Lock()


def get_engine(options: OcrOptions) -> OcrEngine:
    """The engine the options name, created on first use and kept per (engine, language).

    Args:
        options: the OCR options.

    Returns:
        The engine.

    Raises:
        OcrError: the name is not in :data:`ENGINES`, or the engine cannot be used (not
            installed, a language it lacks); the message names the setting and the fix.
    """
    factory = ENGINES.get(options.engine)
    if factory is None:
        raise OcrError(
            f"unknown OCR engine {options.engine!r} (setting ingest.ocr_engine, env "
            f"INSTRUCTOR_SEARCH_INGEST__OCR_ENGINE); known engines: {', '.join(sorted(ENGINES))}"
        )
    key = (options.engine, options.language)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = factory(options)
        return engine


def clear_engines() -> None:
    """Forget the engines created so far (the next :func:`get_engine` creates them again)."""
    with _lock:
        _engines.clear()
