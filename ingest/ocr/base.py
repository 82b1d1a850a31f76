"""What OCR produces and what an engine must do: lines with boxes, a page's text, the options.

An engine (:class:`OcrEngine`) reads an image into :class:`OcrLine` objects; :meth:`OcrPage.from_lines`
turns them into the page's text in reading order, with each line's exact character span in that
text, so that a chunk's ``char_start``/``char_end`` map back to boxes on the page (the page view
draws its highlight from them). Boxes are fractions of the page's width and height, origin top
left, so they do not depend on the resolution a page was rendered at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from ingest.cleaning import clean_line

if TYPE_CHECKING:
    from PIL import Image

    from config import IngestSettings

OcrMode = Literal["auto", "always", "never"]

#: Bumped when the way a page's text is built from lines changes: cached pages of an older
#: format are OCR'd again (the format is part of the cache tag, :meth:`OcrOptions.tag`).
OCR_TEXT_FORMAT = 1

# Two lines belong to the same row when they overlap vertically by this share of the lower one.
_SAME_ROW = 0.5
# A vertical gap between rows above this many median line heights starts a new paragraph.
_PARAGRAPH_GAP = 1.2
# Reading order (reading_order): a horizontal gap of this many line heights separates blocks;
# a vertical gutter of this share of the page width separates columns, each side at least this
# share of the block wide.
_BLOCK_GAP = 0.8
_GUTTER = 0.015
_COLUMN = 0.2


@dataclass(frozen=True)
class OcrLine:
    """One line of text the engine found.

    Attributes:
        text: the line's text (cleaned: one line, whitespace normalised).
        box: ``(x0, y0, x1, y1)`` as fractions of the page's width and height, origin top left.
        confidence: the engine's confidence, 0 to 1.
    """

    text: str
    box: tuple[float, float, float, float]
    confidence: float


@dataclass(frozen=True)
class OcrPage:
    """The OCR of one page.

    Attributes:
        text: the page's final text, as it is chunked and stored.
        lines: the lines, in reading order.
        spans: per line, its ``[start, end)`` character offsets in ``text``
            (``text[start:end] == line.text``).
        engine: the engine's name.
    """

    text: str
    lines: tuple[OcrLine, ...]
    spans: tuple[tuple[int, int], ...]
    engine: str

    @classmethod
    def from_lines(cls, lines: list[OcrLine], engine: str) -> OcrPage:
        """The page of an engine's lines: cleaned, in reading order, joined with exact spans.

        Lines come in the engine's order (both engines give reading order: RapidOCR top to
        bottom, Tesseract block by block, so two-column pages stay in column order there); only
        lines the engine split off one row (overlapping vertically by half a line and standing
        to the right) are kept together. Lines on one row are joined by a space, rows by a line
        break, and a vertical gap of more than 1.2 line heights makes a paragraph break.

        Args:
            lines: the lines the engine read (empty ones are dropped).
            engine: the engine's name.
        """
        cleaned = [
            OcrLine(text=text, box=line.box, confidence=line.confidence)
            for line in lines
            if (text := clean_line(line.text))
        ]
        heights = sorted(line.box[3] - line.box[1] for line in cleaned)
        median = heights[len(heights) // 2] if heights else 0.0
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        offset = 0
        previous: OcrLine | None = None
        for line in cleaned:
            if previous is not None:
                separator = _separator(previous, line, median)
                parts.append(separator)
                offset += len(separator)
            parts.append(line.text)
            spans.append((offset, offset + len(line.text)))
            offset += len(line.text)
            previous = line
        return cls(text="".join(parts), lines=tuple(cleaned), spans=tuple(spans), engine=engine)

    def to_json(self) -> str:
        """The page as compact JSON (what the page cache stores)."""
        return json.dumps(
            {
                "engine": self.engine,
                "text": self.text,
                "lines": [[line.text, list(line.box), line.confidence] for line in self.lines],
                "spans": [list(span) for span in self.spans],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> OcrPage:
        """The page :meth:`to_json` wrote.

        Raises:
            ValueError: not such JSON (a damaged cache entry).
        """
        try:
            data = json.loads(raw)
            lines = tuple(
                OcrLine(text=str(text), box=(box[0], box[1], box[2], box[3]), confidence=float(score))
                for text, box, score in data["lines"]
            )
            spans = tuple((int(start), int(end)) for start, end in data["spans"])
            page = cls(text=str(data["text"]), lines=lines, spans=spans, engine=str(data["engine"]))
        except (KeyError, TypeError, IndexError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"not an OCR page record: {exc}") from exc
        if len(page.spans) != len(page.lines):
            raise ValueError("not an OCR page record: lines and spans differ in number")
        return page


def _separator(previous: OcrLine, line: OcrLine, median_height: float) -> str:
    """What goes between two consecutive lines: a space (same row), a line or a paragraph break."""
    top, bottom = max(previous.box[1], line.box[1]), min(previous.box[3], line.box[3])
    lower = min(previous.box[3] - previous.box[1], line.box[3] - line.box[1])
    if lower > 0 and bottom - top >= _SAME_ROW * lower and line.box[0] >= previous.box[0]:
        return " "
    gap = line.box[1] - previous.box[3]
    if median_height > 0 and gap > _PARAGRAPH_GAP * median_height:
        return "\n\n"
    return "\n"


def reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    """Lines in reading order, columns one after the other (a recursive XY cut of their boxes).

    An engine that orders lines top to bottom across the whole page (RapidOCR) interleaves
    the lines of two columns. Here a block of lines is first cut where a horizontal gap wider
    than :data:`_BLOCK_GAP` line heights crosses it (full-width headings and paragraphs come
    apart from the columns), then each block is cut at the widest vertical gutter of at least
    :data:`_GUTTER` of the page width whose sides are each at least :data:`_COLUMN` of the
    block wide (so a list's numbers are not cut from their text), left side first; lines of a
    block without cuts keep the engine's order.

    Args:
        lines: the engine's lines (in its order).

    Returns:
        The same lines, reordered.
    """
    if len(lines) < 2:
        return list(lines)
    heights = sorted(line.box[3] - line.box[1] for line in lines)
    return _xy_cut(list(lines), heights[len(heights) // 2], depth=0)


def _xy_cut(lines: list[OcrLine], height: float, *, depth: int) -> list[OcrLine]:
    if len(lines) < 2 or depth > 12:
        return lines
    blocks = _split(lines, axis=1, min_gap=_BLOCK_GAP * height)
    if len(blocks) > 1:
        return [line for block in blocks for line in _xy_cut(block, height, depth=depth + 1)]
    left = min(line.box[0] for line in lines)
    right = max(line.box[2] for line in lines)
    columns = _split(lines, axis=0, min_gap=_GUTTER, min_side=_COLUMN * (right - left))
    if len(columns) > 1:
        return [line for column in columns for line in _xy_cut(column, height, depth=depth + 1)]
    return lines


def _split(lines: list[OcrLine], *, axis: int, min_gap: float, min_side: float = 0.0) -> list[list[OcrLine]]:
    """Lines cut at every gap along ``axis`` (0: x, 1: y) of at least ``min_gap`` (for x: the widest one)."""
    spans = sorted((line.box[axis], line.box[axis + 2]) for line in lines)
    cuts: list[tuple[float, float]] = []  # (gap width, position)
    reach = spans[0][1]
    for start, end in spans[1:]:
        if start - reach >= min_gap:
            cuts.append((start - reach, (start + reach) / 2))
        reach = max(reach, end)
    if not cuts:
        return [lines]
    low, high = spans[0][0], reach
    if axis == 0:  # one gutter at a time, the widest whose sides are wide enough
        wide = [(gap, at) for gap, at in cuts if at - low >= min_side and high - at >= min_side]
        if not wide:
            return [lines]
        cuts = [max(wide)]
    positions = sorted(at for _, at in cuts)
    parts: list[list[OcrLine]] = [[] for _ in range(len(positions) + 1)]
    for line in lines:
        middle = (line.box[axis] + line.box[axis + 2]) / 2
        parts[sum(1 for at in positions if middle > at)].append(line)
    return [part for part in parts if part]


@dataclass(frozen=True)
class OcrOptions:
    """How pages are OCR'd (``ingest.ocr``, ``ingest.ocr_engine``, ``ingest.ocr_language``, ``ingest.ocr_dpi``).

    Attributes:
        mode: ``auto`` (pages without a usable text layer, or whose text fails the garbage
            test of :mod:`ingest.quality`), ``always`` (every page) or ``never``.
        engine: a name of :data:`ingest.ocr.registry.ENGINES`.
        language: the text's language, for engines that take one.
        dpi: the resolution pages are rendered at.
    """

    mode: OcrMode = "auto"
    engine: str = "rapidocr"
    language: str = "en"
    dpi: int = 200

    @classmethod
    def from_settings(cls, ingest: IngestSettings) -> OcrOptions:
        """The options of the ``ingest`` settings."""
        return cls(
            mode=ingest.ocr, engine=ingest.ocr_engine, language=ingest.ocr_language, dpi=ingest.ocr_dpi
        )

    @property
    def tag(self) -> str:
        """The page cache's method tag of OCR output made with these options, e.g. ``ocr:rapidocr:en:200dpi:v1``."""
        return f"ocr:{self.engine}:{self.language}:{self.dpi}dpi:v{OCR_TEXT_FORMAT}"


class OcrEngine(Protocol):
    """An OCR engine: reads the lines of text in a page image.

    Attributes:
        name: the engine's registry name.
    """

    name: str

    def read(self, image: Image.Image) -> list[OcrLine]:
        """The lines of text in ``image``, in reading order, boxes as fractions of its size.

        Raises:
            OcrError: the engine failed on this image.
        """
        ...
