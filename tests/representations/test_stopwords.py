"""The BM25 stop words and tokenizer are scikit-learn's, without importing scikit-learn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from representations import stopwords
from representations.sparse import SparseEncoder

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve façade: résumé of 3 items, a-b c_d e2e x 42 7x",
    "Straße, Größe, ÆØÅ; ünïcödé ŝtrîñg — “quoted” and 'single' words",
    "email@example.com https://example.org/path?q=1 C++ and C# and F#",
    "Тест на русском языке, 漢字かな交じり文, عربى نص",
    "",
    "a I x",
]


def test_stop_words_are_scikit_learns() -> None:
    assert stopwords.ENGLISH_STOP_WORDS == ENGLISH_STOP_WORDS


def test_tokenizer_is_count_vectorizers() -> None:
    tokenize = CountVectorizer().build_tokenizer()
    for text in TEXTS:
        assert stopwords.TOKEN_PATTERN.findall(text) == tokenize(text)


def test_terms_leave_stop_words_out() -> None:
    terms = SparseEncoder().terms("The keepers were keeping the lamps burning")
    assert terms == ["keeper", "keep", "lamp", "burn"]


def test_sparse_vectors_do_not_import_scikit_learn() -> None:
    code = (
        "import sys\n"
        "from representations.sparse import SparseEncoder\n"
        "encoder = SparseEncoder()\n"
        "assert encoder.document('lighthouse keepers keep lamps')[0]\n"
        "assert encoder.query('who keeps the lamp')[0]\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
