"""ingest.highlight: normalised alignment of a stored passage with a page's own text, and line boxes."""

from __future__ import annotations

from pdfgen import TOPICS

from ingest.highlight import MIN_ALIGNMENT_SCORE, char_line_boxes, locate, normalise, span_line_boxes


def test_normalise_keeps_letters_and_digits_with_their_origin() -> None:
    text, origin = normalise("Ef\ufb01cient  CO\u2082-\r\nfree, 42\u00ad%")
    assert text == "efficientco2free42"
    # the ligature's two letters both come from index 2; the subscript two from index 12
    assert origin[:5] == [0, 1, 2, 2, 3]
    assert origin[text.index("2")] == 12


def test_locate_exact_and_widened_over_punctuation() -> None:
    page = 'Intro.\r\nThe "quick" fox jumped.\r\nEnd.'
    location = locate(page, "the  quick fox JUMPED")
    assert location is not None
    assert location.score == 100.0
    assert page[location.start : location.end] == 'The "quick" fox jumped.'


def test_locate_tolerates_small_differences_and_rejects_other_text() -> None:
    page = TOPICS["volcano"] + "\n" + TOPICS["glacier"]
    changed = TOPICS["glacier"].replace("downhill", "down hil").replace("moraines", "moraine")
    location = locate(page, changed)
    assert location is not None
    assert MIN_ALIGNMENT_SCORE <= location.score < 100
    assert abs(location.start - page.index("Glaciers")) <= 2
    assert locate(page, TOPICS["chess"]) is None
    assert locate(page, "a.") is None  # too short to place
    assert locate("", TOPICS["chess"]) is None


def test_char_line_boxes_merge_characters_into_lines() -> None:
    text = "ab cd\r\nef"
    boxes = [
        (0.10, 0.10, 0.12, 0.12),
        (0.12, 0.10, 0.14, 0.12),
        None,
        (0.16, 0.10, 0.18, 0.12),
        (0.18, 0.10, 0.20, 0.12),
        None,
        None,
        (0.10, 0.20, 0.12, 0.22),
        (0.12, 0.20, 0.14, 0.22),
    ]
    assert char_line_boxes(text, boxes, 0, len(text)) == [(0.10, 0.10, 0.20, 0.12), (0.10, 0.20, 0.14, 0.22)]
    assert char_line_boxes(text, boxes, 3, 5) == [(0.16, 0.10, 0.20, 0.12)]
    # no line break character, but the next character starts a new line lower down
    flat = "abef"
    flat_boxes = [boxes[0], boxes[1], boxes[7], boxes[8]]
    assert len(char_line_boxes(flat, flat_boxes, 0, 4)) == 2


def test_span_line_boxes_pick_the_lines_overlapping_the_passage() -> None:
    spans = [(0, 10), (11, 20), (21, 30)]
    boxes = [(0.1, 0.1, 0.9, 0.12), (0.1, 0.13, 0.9, 0.15), (0.1, 0.16, 0.9, 0.18)]
    assert span_line_boxes(spans, boxes, 12, 22) == boxes[1:]
    assert span_line_boxes(spans, boxes, 10, 11) == []
