"""The garbage test of a text layer: is a page's extracted text readable, or should it be OCR'd?

A PDF can render fine and still carry a text layer that is nonsense: fonts whose character
codes map to the wrong letters (the text comes out letter-shifted, ``Bgqhrsnogdq`` for
``Christopher``), words run together, or codes without any Unicode mapping (``(cid:12)``,
U+FFFD, private-use characters). :func:`assess_text` measures three things:

* **bad characters** (every script): the share of U+FFFD, private-use and ``(cid:NN)``
  characters among the page's non-space characters;
* **letter distribution** (Latin script only): the cosine similarity of the page's letter
  frequencies (accents folded) to the closest of the letter frequencies of English, French,
  German, Spanish, Italian, Portuguese and Dutch; letter-shifted text matches none of them;
* **run-together words** (Latin script only): the mean length of the page's Latin tokens.

It also reports the share of function words (``the``, ``de``, ``und``... of the same seven
languages) for the record; it does not decide, because Latin (*lorem ipsum*) and technical
text have few of them. Text mostly in other scripts (Arabic, Cyrillic, CJK...) and text of
fewer than :data:`MIN_LETTERS` Latin letters are judged by the bad characters alone.

Measured (pypdf's text of every page of ``../shared/data/pdfs``, and the title and abstract of
every document of SciFact and NFCorpus; thresholds in brackets)::

    text                                          pages   letter similarity  mean token   bad chars
                                                          [< 0.80 fails]     [> 20 fails] [> 0.10]
    garbled-text-layer_ranknet-lambdarank.pdf       1      0.64               52.2         0.000
    the other PDFs with text (papers, layouts,      116    min 0.94           max 7.0      max 0.000
      lorem ipsum, Arabic/multilingual, OCR layer)
    SciFact title + abstract                        5,183  min 0.92           max 8.9      max 0.002
    NFCorpus title + abstract                       3,633  min 0.90           max 7.4      max 0.000
    500 SciFact abstracts letter-shifted by         2,500  max 0.69           -            -
      -2, -1, +1, +2, +3 (all caught)

The shared-data tests of ``tests/ingest/test_quality.py`` assert these bounds.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

#: Latin letters a page needs before its letter distribution and token lengths are judged.
MIN_LETTERS = 80
#: A page whose letter frequencies are less similar than this to every reference language fails.
MIN_LETTER_SIMILARITY = 0.80
#: A page whose Latin tokens are longer than this on average (words run together) fails.
MAX_MEAN_TOKEN = 20.0
#: A page with a larger share of U+FFFD, private-use and ``(cid:NN)`` characters fails.
MAX_BAD_SHARE = 0.10

_CID = re.compile(r"\(cid:\d+\)")
_LATIN_TOKEN = re.compile(r"[A-Za-z]+")

# Letter frequencies in percent, a to z, of running text (after folding accents).
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_REFERENCE: dict[str, tuple[float, ...]] = {
    "en": (8.2, 1.5, 2.8, 4.3, 12.7, 2.2, 2.0, 6.1, 7.0, 0.15, 0.77, 4.0, 2.4, 6.7, 7.5, 1.9, 0.095, 6.0,
           6.3, 9.1, 2.8, 0.98, 2.4, 0.15, 2.0, 0.074),
    "fr": (7.6, 0.9, 3.3, 3.7, 14.7, 1.1, 0.9, 0.7, 7.5, 0.6, 0.07, 5.5, 3.0, 7.1, 5.8, 2.5, 1.4, 6.7,
           7.9, 7.2, 6.3, 1.8, 0.05, 0.4, 0.13, 0.33),
    "de": (6.5, 1.9, 2.7, 5.1, 16.4, 1.7, 3.0, 4.6, 6.6, 0.27, 1.4, 3.4, 2.5, 9.8, 2.6, 0.67, 0.02, 7.0,
           7.3, 6.2, 4.2, 0.85, 1.9, 0.03, 0.04, 1.1),
    "es": (11.5, 2.2, 4.0, 5.0, 12.2, 0.7, 1.8, 0.7, 6.2, 0.5, 0.01, 5.0, 3.2, 6.7, 8.7, 2.5, 0.9, 6.9,
           8.0, 4.6, 2.9, 1.1, 0.02, 0.2, 1.0, 0.47),
    "it": (11.7, 0.9, 4.5, 3.7, 11.8, 1.2, 1.6, 0.6, 10.1, 0.01, 0.01, 6.5, 2.5, 6.9, 9.8, 3.1, 0.5, 6.4,
           5.0, 5.6, 3.0, 2.1, 0.03, 0.003, 0.02, 1.2),
    "pt": (14.6, 1.0, 3.9, 5.0, 12.6, 1.0, 1.3, 0.8, 6.2, 0.4, 0.02, 2.8, 4.7, 4.4, 9.7, 2.5, 1.2, 6.5,
           6.8, 4.3, 3.6, 1.6, 0.04, 0.25, 0.01, 0.47),
    "nl": (7.5, 1.6, 1.2, 5.9, 18.9, 0.8, 3.4, 2.4, 6.5, 1.5, 2.2, 3.6, 2.2, 10.0, 6.1, 1.6, 0.01, 6.4,
           3.7, 6.8, 2.0, 2.9, 1.5, 0.04, 0.04, 1.4),
}  # fmt: skip
# Frequent function words per language (folded like the text before comparing).
_FUNCTION_WORD_LISTS: dict[str, str] = {
    "en": "the of and to in a is that for it as with was on be by are this an or at from which not have",
    "fr": "le la les de des du et un une est que qui dans pour pas sur au par avec ce il elle sont",
    "de": "der die das und ist nicht ein eine zu den von mit sich des auf für im dem auch es",
    "es": "el los las y en que por con para una es del al lo se",
    "it": "il di che e per un non sono della la le",
    "pt": "o os as do da em um uma com não que de",
    "nl": "het een van en op te dat zijn voor met niet aan er ook als",
}


@dataclass(frozen=True)
class TextQuality:
    """The garbage test's measures of one text, and its verdict.

    Attributes:
        garbled: whether the text fails the test (it should be OCR'd instead).
        reason: why it fails (``None`` when it passes).
        letters: Latin letters counted.
        letter_similarity: cosine similarity of the letter frequencies to the closest reference
            language (``None``: too few Latin letters to judge).
        mean_token: mean length of the Latin tokens (``None``: too few letters).
        function_words: share of the Latin tokens that are function words (reported only).
        bad_share: share of U+FFFD, private-use and ``(cid:NN)`` characters.
    """

    garbled: bool
    reason: str | None
    letters: int
    letter_similarity: float | None
    mean_token: float | None
    function_words: float | None
    bad_share: float

    def to_json(self) -> dict[str, object]:
        """The measures, rounded, for reports and benchmarks."""
        return {
            "garbled": self.garbled,
            "reason": self.reason,
            "letters": self.letters,
            "letter_similarity": _rounded(self.letter_similarity),
            "mean_token": _rounded(self.mean_token),
            "function_words": _rounded(self.function_words),
            "bad_share": round(self.bad_share, 4),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fold(text: str) -> str:
    """Lower case, accents removed (``é`` -> ``e``, ``ß`` -> ``ss``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_FUNCTION_WORDS = frozenset(_fold(word) for words in _FUNCTION_WORD_LISTS.values() for word in words.split())


def _bad_share(text: str) -> float:
    cids = len(_CID.findall(text))
    rest = _CID.sub("", text)
    bad = sum(1 for ch in rest if ch == "\ufffd" or unicodedata.category(ch) == "Co")
    visible = sum(1 for ch in rest if not ch.isspace()) + cids
    return (bad + cids) / visible if visible else 0.0


def _similarity(counts: list[int]) -> float:
    """Cosine similarity of letter counts to the closest reference language."""
    norm = math.sqrt(sum(c * c for c in counts))
    best = 0.0
    for reference in _REFERENCE.values():
        ref_norm = math.sqrt(sum(r * r for r in reference))
        dot = sum(c * r for c, r in zip(counts, reference, strict=True))
        best = max(best, dot / (norm * ref_norm))
    return best


def assess_text(text: str) -> TextQuality:
    """The garbage test of one page's text (see the module docstring for the measures).

    Args:
        text: the page's (cleaned) text.

    Returns:
        The measures and the verdict.
    """
    bad_share = _bad_share(text)
    folded = _fold(_CID.sub(" ", text))
    tokens = _LATIN_TOKEN.findall(folded)
    counts = [0] * len(_LETTERS)
    for token in tokens:
        for ch in token:
            counts[ord(ch) - 97] += 1
    letters = sum(counts)
    alphabetic = sum(1 for ch in folded if ch.isalpha())
    similarity = mean_token = function_words = None
    if letters >= MIN_LETTERS and letters * 2 >= alphabetic:  # mostly Latin script
        similarity = _similarity(counts)
        # Run-together words are measured on the text's own tokens (split at whitespace only).
        latin_tokens = [t for t in folded.split() if _LATIN_TOKEN.search(t)]
        mean_token = sum(map(len, latin_tokens)) / len(latin_tokens)
        function_words = sum(1 for token in tokens if token in _FUNCTION_WORDS) / len(tokens)
    reason: str | None = None
    if bad_share > MAX_BAD_SHARE:
        reason = f"{bad_share:.0%} of its characters have no Unicode mapping (U+FFFD, private use, cid codes)"
    elif similarity is not None and similarity < MIN_LETTER_SIMILARITY:
        reason = (
            f"its letter frequencies match no common Latin-script language (similarity {similarity:.2f} "
            f"< {MIN_LETTER_SIMILARITY}): a font that maps codes to the wrong letters"
        )
    elif mean_token is not None and mean_token > MAX_MEAN_TOKEN:
        reason = f"its words run together (mean token {mean_token:.0f} characters > {MAX_MEAN_TOKEN:.0f})"
    return TextQuality(
        garbled=reason is not None,
        reason=reason,
        letters=letters,
        letter_similarity=similarity,
        mean_token=mean_token,
        function_words=function_words,
        bad_share=bad_share,
    )
