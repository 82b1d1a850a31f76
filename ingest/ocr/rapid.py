"""The RapidOCR engine (``rapidocr-onnxruntime``): PP-OCRv4 detection, orientation and recognition on ONNX Runtime.

Its models come inside the wheel, so it works offline after ``pip install``. The bundled
recognition model reads Chinese and Latin script (English; accents are often lost), so
``ingest.ocr_language`` may be ``en``, ``ch`` or ``zh``; other languages need Tesseract.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ingest.errors import OcrError
from ingest.ocr.base import OcrLine, OcrOptions, reading_order

if TYPE_CHECKING:
    from PIL import Image

#: Languages the bundled models read.
LANGUAGES = ("en", "ch", "zh")


class RapidOcrEngine:
    """RapidOCR, one instance per process (its ONNX sessions are loaded once, in about 0.1 s).

    Args:
        options: the OCR options (their language must be one of :data:`LANGUAGES`).

    Raises:
        OcrError: the language is not one the bundled models read, or the package is missing.
    """

    name = "rapidocr"

    def __init__(self, options: OcrOptions) -> None:
        if options.language not in LANGUAGES:
            raise OcrError(
                f"the rapidocr engine reads {', '.join(LANGUAGES)} (Latin script and Chinese), not "
                f"{options.language!r} (setting ingest.ocr_language, env INSTRUCTOR_SEARCH_INGEST__OCR_LANGUAGE); "
                "set it to en, or use ingest.ocr_engine = tesseract with its language pack"
            )
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise OcrError(
                "the rapidocr engine needs the package rapidocr-onnxruntime: pip install 'rapidocr-onnxruntime>=1.4.4,<1.5'"
            ) from exc
        self._ocr: Any = RapidOCR()
        self._lock = threading.Lock()  # one inference at a time per instance

    def read(self, image: Image.Image) -> list[OcrLine]:
        """The lines RapidOCR finds, in reading order (:func:`~ingest.ocr.base.reading_order`: columns apart).

        Raises:
            OcrError: ONNX Runtime failed on the image.
        """
        import numpy as np

        width, height = image.size
        try:
            with self._lock:
                result, _ = self._ocr(np.asarray(image.convert("RGB")))
        except Exception as exc:  # onnxruntime and OpenCV raise assorted types; all mean "failed here"
            raise OcrError(f"rapidocr failed ({type(exc).__name__}: {exc})") from exc
        lines: list[OcrLine] = []
        for box, text, score in result or []:
            xs = [float(point[0]) for point in box]
            ys = [float(point[1]) for point in box]
            lines.append(
                OcrLine(
                    text=str(text),
                    box=(
                        max(0.0, min(xs) / width),
                        max(0.0, min(ys) / height),
                        min(1.0, max(xs) / width),
                        min(1.0, max(ys) / height),
                    ),
                    confidence=float(score),
                )
            )
        return reading_order(lines)
