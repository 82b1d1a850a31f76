"""Where a passage lies on its page: the alignment of a chunk's text with the page's own text, as boxes.

The page view (:mod:`ingest.pageview`) highlights a hit's passage. The passage is the chunk's
text as ingest stored it (pypdf's text, cleaned by :func:`ingest.cleaning.clean_text`, or the
OCR page's text), while the boxes come from another reading of the page (PDFium's characters, or
the OCR lines), so the two texts differ in whitespace, hyphenation, ligatures and punctuation.

Both sides are reduced to their letters and digits (Unicode NFKC, case-folded), keeping for each
kept character its index in the original text; the passage is then found in the page exactly,
else aligned by :func:`rapidfuzz.fuzz.partial_ratio_alignment` (the page window most similar to
the passage). An alignment scoring under :data:`MIN_ALIGNMENT_SCORE` is no location at all.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

#: Lowest rapidfuzz ``partial_ratio`` (0-100) at which a passage counts as found on a page.
#: Measured on the text PDFs of ``../shared/data/pdfs`` (paragraphs of pypdf's cleaned text
#: against PDFium's text of their page): 97-100; a paragraph of another document: at most 46.
MIN_ALIGNMENT_SCORE = 80.0
#: A passage with fewer letters and digits than this is never located (too ambiguous).
MIN_PASSAGE_CHARS = 4

#: A box ``(x0, y0, x1, y1)``: fractions of the page's width and height, origin top left.
Box = tuple[float, float, float, float]

# Two character boxes are on one line when they overlap vertically by this share of the lower.
_SAME_LINE = 0.5


@dataclass(frozen=True)
class Location:
    """A located passage: ``text[start:end]`` of the page's text, and how well it matched.

    Attributes:
        start: first character (index into the page's text).
        end: one past the last character.
        score: rapidfuzz's similarity, 0-100 (100 for an exact match of the normalised texts).
    """

    start: int
    end: int
    score: float


def normalise(text: str) -> tuple[str, list[int]]:
    """The letters and digits of ``text``, NFKC-normalised and case-folded, with an index map.

    Ligatures expand (``ﬁ`` becomes ``fi``), soft hyphens, hyphens, punctuation and whitespace go.

    Args:
        text: the text; one character per index of the source it came from.

    Returns:
        The normalised string, and for each of its characters the index in ``text`` it came from.
    """
    kept: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char.isascii():
            if char.isalnum():
                kept.append(char.lower())
                origin.append(index)
            continue
        for piece in unicodedata.normalize("NFKC", char).casefold():
            if piece.isalnum():
                kept.append(piece)
                origin.append(index)
    return "".join(kept), origin


def locate(page_text: str, passage: str, *, min_score: float = MIN_ALIGNMENT_SCORE) -> Location | None:
    """Find ``passage`` in ``page_text``, tolerating the differences of two readings of one page.

    Args:
        page_text: the page's text, one character per index of its boxes or spans.
        passage: the chunk's text.
        min_score: the lowest alignment score accepted (0-100).

    Returns:
        The span of ``page_text`` the passage matches, or ``None`` when it is not on the page
        (or too short to place).
    """
    from rapidfuzz import fuzz

    needle, _ = normalise(passage)
    haystack, origin = normalise(page_text)
    if len(needle) < MIN_PASSAGE_CHARS or not haystack:
        return None
    found = haystack.find(needle)
    if found >= 0:
        return _widened(page_text, origin[found], origin[found + len(needle) - 1] + 1, 100.0)
    alignment = fuzz.partial_ratio_alignment(needle, haystack)
    if alignment is None or alignment.score < min_score:
        return None
    # When the passage is the longer text, rapidfuzz aligns the page within it: the page span
    # is still the destination range.
    start, end = alignment.dest_start, alignment.dest_end
    if end <= start:
        return None
    return _widened(page_text, origin[start], origin[end - 1] + 1, float(alignment.score))


def _widened(text: str, start: int, end: int, score: float) -> Location:
    """The span grown over the punctuation touching it (a closing full stop, an opening quote)."""
    while start > 0 and not text[start - 1].isspace() and not text[start - 1].isalnum():
        start -= 1
    while end < len(text) and not text[end].isspace() and not text[end].isalnum():
        end += 1
    return Location(start, end, score)


def char_line_boxes(text: str, boxes: Sequence[Box | None], start: int, end: int) -> list[Box]:
    """The characters ``text[start:end]`` as one box per line (their boxes merged).

    A line ends at a line break of ``text``, where the next character does not overlap the line
    vertically by half a line, or where it starts left of the line's end (a new line or column).
    Whitespace and characters without a box are skipped.

    Args:
        text: the page's characters.
        boxes: each character's box (``None`` where it has none, e.g. a generated space).
        start: first character.
        end: one past the last.

    Returns:
        The line boxes, in reading order.
    """
    lines: list[Box] = []
    current: Box | None = None
    for index in range(max(start, 0), min(end, len(text), len(boxes))):
        char, box = text[index], boxes[index]
        if char in "\r\n":
            _close(lines, current)
            current = None
            continue
        if box is None or char.isspace():
            continue
        if current is not None and not _continues(current, box):
            _close(lines, current)
            current = None
        current = box if current is None else _union(current, box)
    _close(lines, current)
    return lines


def span_line_boxes(
    spans: Sequence[tuple[int, int]], boxes: Sequence[Box], start: int, end: int
) -> list[Box]:
    """The boxes of the lines whose character span overlaps ``[start, end)`` (OCR lines).

    Args:
        spans: each line's ``[start, end)`` offsets in the page's text.
        boxes: each line's box.
        start: the located passage's first character.
        end: one past its last.

    Returns:
        The overlapping lines' boxes, in reading order.
    """
    return [
        box
        for (line_start, line_end), box in zip(spans, boxes, strict=True)
        if line_start < end and start < line_end
    ]


def _continues(line: Box, box: Box) -> bool:
    """Whether ``box`` goes on the line ``line`` (same height band, not back to the left)."""
    overlap = min(line[3], box[3]) - max(line[1], box[1])
    lower = min(line[3] - line[1], box[3] - box[1])
    if lower <= 0 or overlap < _SAME_LINE * lower:
        return False
    return box[0] >= line[2] - (line[3] - line[1])


def _union(first: Box, second: Box) -> Box:
    return (
        min(first[0], second[0]),
        min(first[1], second[1]),
        max(first[2], second[2]),
        max(first[3], second[3]),
    )


def _close(lines: list[Box], current: Box | None) -> None:
    if current is not None:
        lines.append(current)
