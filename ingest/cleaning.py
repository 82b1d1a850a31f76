"""Conservative clean-up of extracted text (:func:`clean_text`) and of one OCR line (:func:`clean_line`).

Extracted text is cleaned conservatively: NUL and control characters are dropped, ligatures
expanded, words hyphenated at a line end joined, whitespace normalised.
"""

from __future__ import annotations

import re
import unicodedata

_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
# Control characters except tab and newline (form feeds become newlines first).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# A letter, a hyphen (or soft hyphen) at the end of a line, then a letter on the next line.
_HYPHEN_BREAK = re.compile(r"([^\W\d_])[-\u00ad][ \t]*\n[ \t]*([^\W\d_])")
_SPACES = re.compile(r"[^\S\n]+")  # whitespace other than newlines
_ANY_SPACE = re.compile(r"\s+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def _join_hyphenated(match: re.Match[str]) -> str:
    before, after = match.group(1), match.group(2)
    # Only "exam-\nple" (lower-case continuation): "Jean-\nPaul" and "COVID-\n19" keep the break.
    if after.islower():
        return before + after
    return match.group(0)


def clean_text(text: str) -> str:
    r"""Conservative clean-up of extracted text.

    * ``\r\n``, ``\r`` and form feeds become ``\n``; NUL and other control characters go;
    * Unicode NFC; typographic ligatures (``ﬁ``) are expanded; soft hyphens inside lines go;
    * a word hyphenated at a line end is joined when the next line continues in lower case;
    * runs of spaces and tabs become one space, lines are stripped, three or more line breaks
      become a paragraph break (two).

    Args:
        text: raw text.

    Returns:
        The cleaned text (stripped).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text).translate(_LIGATURES)
    text = _HYPHEN_BREAK.sub(_join_hyphenated, text)
    text = text.replace("\u00ad", "")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def clean_line(text: str) -> str:
    """One line of OCR output cleaned like :func:`clean_text`, with every whitespace run one space.

    Args:
        text: the line as the engine read it.

    Returns:
        The line, stripped, without line breaks (possibly empty).
    """
    text = _CONTROL.sub("", text.replace("\u00ad", ""))
    text = unicodedata.normalize("NFC", text).translate(_LIGATURES)
    return _ANY_SPACE.sub(" ", text).strip()
