"""The Tesseract engine: the ``tesseract`` program (Debian: ``tesseract-ocr``), run once per page.

The page goes to ``tesseract`` as a PNG on its standard input and comes back as TSV: words with
boxes and confidences, grouped by block, paragraph and line, in Tesseract's reading order
(columns stay apart). ``ingest.ocr_language`` takes Tesseract's codes (``eng``, ``deu``,
``eng+fra``); the two-letter codes of :data:`LANGUAGE_CODES` are mapped.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from typing import TYPE_CHECKING

from ingest.errors import OcrError
from ingest.ocr.base import OcrLine, OcrOptions

if TYPE_CHECKING:
    from PIL import Image

#: Two-letter language codes and Tesseract's names for them.
LANGUAGE_CODES = {
    "en": "eng",
    "de": "deu",
    "fr": "fra",
    "es": "spa",
    "it": "ita",
    "pt": "por",
    "nl": "nld",
    "ar": "ara",
    "ru": "rus",
    "zh": "chi_sim",
    "ch": "chi_sim",
}
#: Seconds one page may take.
PAGE_TIMEOUT = 300

_ENGINE_SETTING = "setting ingest.ocr_engine, env INSTRUCTOR_SEARCH_INGEST__OCR_ENGINE"


class TesseractEngine:
    """Tesseract through its command-line program.

    Args:
        options: the OCR options (language and dpi).

    Raises:
        OcrError: the program or the language's data is not installed.
    """

    name = "tesseract"

    def __init__(self, options: OcrOptions) -> None:
        program = shutil.which("tesseract")
        if program is None:
            raise OcrError(
                "the tesseract OCR engine needs the tesseract program, which is not installed: "
                f"apt install tesseract-ocr tesseract-ocr-eng ({_ENGINE_SETTING} = tesseract), "
                "or use the bundled engine: ingest.ocr_engine = rapidocr"
            )
        self.program = program
        self.language = "+".join(LANGUAGE_CODES.get(code, code) for code in options.language.split("+"))
        self.dpi = options.dpi
        missing = [code for code in self.language.split("+") if code not in self._installed()]
        if missing:
            packages = " ".join(f"tesseract-ocr-{code.replace('_', '-').lower()}" for code in missing)
            raise OcrError(
                f"tesseract has no data for {', '.join(missing)} (setting ingest.ocr_language, env "
                f"INSTRUCTOR_SEARCH_INGEST__OCR_LANGUAGE = {options.language!r}): apt install {packages}"
            )

    def _installed(self) -> set[str]:
        try:
            listed = subprocess.run(
                [self.program, "--list-langs"], capture_output=True, text=True, timeout=60, check=True
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise OcrError(f"tesseract --list-langs failed ({exc}); reinstall tesseract-ocr") from exc
        lines = (listed.stdout + listed.stderr).splitlines()
        return {line.strip() for line in lines if line.strip() and " " not in line.strip()}

    def read(self, image: Image.Image) -> list[OcrLine]:
        """The lines Tesseract finds, in its reading order.

        Raises:
            OcrError: the program failed or timed out on the image.
        """
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        dpi = int(image.info.get("dpi", (self.dpi,))[0])
        command = [self.program, "stdin", "stdout", "-l", self.language, "--dpi", str(dpi), "tsv"]
        try:
            done = subprocess.run(
                command, input=buffer.getvalue(), capture_output=True, timeout=PAGE_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise OcrError(f"tesseract took over {PAGE_TIMEOUT} s on the page") from exc
        except OSError as exc:
            raise OcrError(f"tesseract could not be run ({exc})") from exc
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OcrError(
                f"tesseract failed (exit status {done.returncode}: {detail[-1] if detail else ''})"
            )
        return _lines(done.stdout.decode("utf-8", "replace"), *image.size)


def _lines(tsv: str, width: int, height: int) -> list[OcrLine]:
    """Tesseract's TSV words grouped into lines (by block, paragraph and line number)."""
    grouped: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5" or not (row.get("text") or "").strip():
            continue
        key = (row["page_num"], row["block_num"], row["par_num"], row["line_num"])
        grouped.setdefault(key, []).append(row)
    lines: list[OcrLine] = []
    for words in grouped.values():
        x0 = min(int(w["left"]) for w in words)
        y0 = min(int(w["top"]) for w in words)
        x1 = max(int(w["left"]) + int(w["width"]) for w in words)
        y1 = max(int(w["top"]) + int(w["height"]) for w in words)
        confidences = [max(0.0, float(w["conf"])) / 100 for w in words]
        lines.append(
            OcrLine(
                text=" ".join(w["text"].strip() for w in words),
                box=(x0 / width, y0 / height, x1 / width, y1 / height),
                confidence=sum(confidences) / len(confidences),
            )
        )
    return lines
