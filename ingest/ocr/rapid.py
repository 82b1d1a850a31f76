"""The RapidOCR engine (``rapidocr-onnxruntime``): PP-OCRv4 detection, orientation and recognition on ONNX Runtime.

Its models come inside the wheel, so it works offline after ``pip install``. The bundled
recognition model reads Chinese and Latin script (English; accents are often lost), so
``ingest.ocr_language`` may be ``en``, ``ch`` or ``zh``; other languages need Tesseract.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

from ingest.errors import OcrError
from ingest.ocr.base import OcrLine, OcrOptions, reading_order

if TYPE_CHECKING:
    from PIL import Image

#: Languages the bundled models read.
LANGUAGES = ("en", "ch", "zh")
#: Lines recognised with a lower confidence are dropped (RapidOCR's own ``text_score``).
_MIN_SCORE = 0.5
#: Margin around a detected box's rectangle, in line heights.
_MARGIN = 0.05
#: Boxes tilted by more than this keep RapidOCR's perspective crop.
_MAX_SKEW_DEGREES = 3.0


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

        Detection and recognition are RapidOCR's; the crops between them are not its tight
        perspective crops but each box's upright rectangle with a margin of
        :data:`_MARGIN` line heights (boxes skewed by more than :data:`_MAX_SKEW_DEGREES` keep
        its perspective crop), and its orientation classifier is left out. Its own pipeline
        drops most spaces between English words; on the Linn brochure scan of ``../shared`` this
        takes CER from 0.07 to 0.02 and WER from 0.38 to 0.08.

        Raises:
            OcrError: ONNX Runtime failed on the image.
        """
        import numpy as np

        pixels = np.asarray(image.convert("RGB"))
        height, width = pixels.shape[:2]
        try:
            with self._lock:
                boxes, _ = self._ocr(pixels, use_cls=False, use_rec=False)
                if not boxes:
                    return []
                crops = [self._crop(pixels, np.asarray(box, dtype=np.float32)) for box in boxes]
                # text_rec is RapidOCR's recogniser (1.4.x, pinned below 1.5 in pyproject).
                recognised, _ = self._ocr.text_rec(crops)
        except Exception as exc:  # onnxruntime and OpenCV raise assorted types; all mean "failed here"
            raise OcrError(f"rapidocr failed ({type(exc).__name__}: {exc})") from exc
        lines: list[OcrLine] = []
        for box, (text, score, *_) in zip(boxes, recognised, strict=True):
            if float(score) < _MIN_SCORE or not str(text).strip():
                continue
            xs = [float(point[0]) for point in box]
            ys = [float(point[1]) for point in box]
            edges = (min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height)
            lines.append(
                OcrLine(
                    text=str(text),
                    box=(max(0.0, edges[0]), max(0.0, edges[1]), min(1.0, edges[2]), min(1.0, edges[3])),
                    confidence=float(score),
                )
            )
        return reading_order(lines)

    def _crop(self, pixels: Any, quad: Any) -> Any:
        """The image of one detected box: its upright rectangle with a margin, or RapidOCR's perspective crop."""
        import numpy as np

        (x0, y0), (x1, y1) = quad[0], quad[1]
        skew = abs(math.degrees(math.atan2(float(y1 - y0), float(x1 - x0) or 1e-6)))
        if skew > _MAX_SKEW_DEGREES:
            return self._ocr.get_crop_img_list(pixels, [quad])[0]
        left, top = quad.min(axis=0)
        right, bottom = quad.max(axis=0)
        margin = _MARGIN * float(bottom - top)
        height, width = pixels.shape[:2]
        crop = pixels[
            int(max(0.0, top - margin)) : int(min(height, bottom + margin)) + 1,
            int(max(0.0, left - margin)) : int(min(width, right + margin)) + 1,
        ]
        if crop.shape[0] >= 1.5 * crop.shape[1]:  # a vertical line of text, as RapidOCR turns it
            crop = np.rot90(crop)
        return np.ascontiguousarray(crop)
