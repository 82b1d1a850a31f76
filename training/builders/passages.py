"""What a chunk's text says about itself: its headings (with the body under each) and its sentences.

Headings are found in the lines of the extracted text (which keeps line breaks): a Markdown
heading, a numbered section (``2.1 Methods``), a short line in capitals, a short line standing
alone between blank lines, or a short title-cased line that starts a block and is followed by
one. A heading never ends like a sentence or a clause (``.``, ``,``, ``;``, ``?``, ``!``) nor
with a stop word, and is not a caption (``Table 2``, ``Figure 3``). Sentences are split by pysbd.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from typing import Any

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

#: Longest heading, in words and in characters.
MAX_HEADING_WORDS = 12
MAX_HEADING_CHARS = 90
#: Shortest body under a heading, and shortest rest of a passage (inverse cloze), in words.
MIN_BODY_WORDS = 20
#: Shortest sentence drawn for the inverse cloze task, in words.
MIN_SENTENCE_WORDS = 6

_MARKDOWN = re.compile(r"^#{1,6}\s+(?P<title>\S.*?)\s*#*$")
_NUMBERED = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?|[IVXLC]{1,5}\.|[A-Z]\.)\s+(?=[A-Z])")
_CAPTION = re.compile(r"^(?:table|figure|fig\.?|chart|page|source|note|copyright|©)\b", re.IGNORECASE)
_URL = re.compile(r"https?://|www\.|@\w+\.", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


@dataclass(frozen=True)
class Heading:
    """A heading found in a chunk and the text under it (up to the next heading or the end).

    Attributes:
        title: the heading's text (Markdown marks removed).
        body: the text under it.
    """

    title: str
    body: str


def _heading_title(line: str, previous: str | None, following: str | None) -> str | None:
    """The title if ``line`` is a heading in its context (the lines around it), else ``None``."""
    markdown = _MARKDOWN.match(line)
    title = markdown.group("title") if markdown else line
    words = title.split()
    letters = sum(ch.isalpha() for ch in title)
    if not words or len(words) > MAX_HEADING_WORDS or len(title) > MAX_HEADING_CHARS or letters < 3:
        return None
    if letters < 0.6 * sum(not ch.isspace() for ch in title) or _CAPTION.match(title) or _URL.search(title):
        return None
    if markdown:
        return title
    last = words[-1].lower().strip("\"'()[]")
    if title[-1] in ".,;?!…" or last in ENGLISH_STOP_WORDS or not (title[0].isupper() or title[0].isdigit()):
        return None
    starts_block = previous is None or not previous or previous.rstrip()[-1:] in ".!?:"
    alone = (previous is None or not previous) and (following is None or not following)
    body_follows = following is not None and following[:1].isupper()
    content = [w for w in _WORD.findall(title) if w.lower() not in ENGLISH_STOP_WORDS]
    capitals = sum(w[0].isupper() for w in content)
    shouting = title.upper() == title and len(content) > 0
    numbered = _NUMBERED.match(title) is not None
    title_cased = len(content) > 0 and capitals >= 0.6 * len(content)
    if numbered or shouting or alone or (title_cased and starts_block and (body_follows or not following)):
        return title
    return None


def find_headings(text: str, *, min_body_words: int = MIN_BODY_WORDS) -> list[Heading]:
    """The headings of a chunk whose body has at least ``min_body_words`` words.

    Args:
        text: the chunk's text (with its line breaks).
        min_body_words: the shortest body kept.

    Returns:
        The headings in text order.
    """
    lines = [line.strip() for line in text.split("\n")]
    marks: list[tuple[int, str]] = []
    for number, line in enumerate(lines):
        if not line:
            continue
        previous = lines[number - 1] if number > 0 else None
        following = lines[number + 1] if number + 1 < len(lines) else None
        title = _heading_title(line, previous, following)
        if title is not None:
            marks.append((number, title))
    found: list[Heading] = []
    for position, (number, title) in enumerate(marks):
        end = marks[position + 1][0] if position + 1 < len(marks) else len(lines)
        body = "\n".join(lines[number + 1 : end]).strip()
        body = re.sub(r"\n{3,}", "\n\n", body)
        if len(body.split()) >= min_body_words:
            found.append(Heading(title=title, body=body))
    return found


@functools.lru_cache(maxsize=4)
def _segmenter(language: str) -> Any:
    import pysbd

    return pysbd.Segmenter(language=language, clean=False, char_span=True)


def sentence_spans(text: str, language: str = "en") -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the text's sentences (pysbd), in order."""
    spans: list[tuple[int, int]] = []
    for span in _segmenter(language).segment(text):
        start, end = int(span.start), int(span.end)
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def inverse_cloze(
    text: str,
    rng: random.Random,
    *,
    min_sentence_words: int = MIN_SENTENCE_WORDS,
    min_rest_words: int = MIN_BODY_WORDS,
) -> tuple[str, str] | None:
    """One sentence of a passage and the rest of the passage without it (the inverse cloze task).

    Args:
        text: the passage.
        rng: the passage's seeded generator (which sentence is drawn).
        min_sentence_words: the shortest sentence drawn.
        min_rest_words: the shortest rest kept.

    Returns:
        ``(sentence, rest)``, or ``None`` when the passage has fewer than three sentences, no
        sentence long enough, a too short rest, or the sentence a second time in the rest.
    """
    spans = sentence_spans(text)
    if len(spans) < 3:
        return None
    candidates = [span for span in spans if len(text[span[0] : span[1]].split()) >= min_sentence_words]
    if not candidates:
        return None
    start, end = rng.choice(candidates)
    sentence = " ".join(text[start:end].split())
    before, after = text[:start].rstrip(), text[end:].lstrip()
    rest = f"{before} {after}".strip() if before and after else (before or after)
    if len(rest.split()) < min_rest_words or sentence in " ".join(rest.split()):
        return None
    return sentence, rest
