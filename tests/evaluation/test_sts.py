"""Evidence the real model is wired right: STS-benchmark test matches the published MTEB score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from testdata import shared_path

from embedder import FakeEmbedder, InputError, SentenceTransformerEmbedder
from evaluation.sts import StsPair, load_sts_benchmark, sts_spearman

#: MTEB STSBenchmark (test) main score of sentence-transformers/all-MiniLM-L6-v2.
PUBLISHED_SPEARMAN = 0.8203
TOLERANCE = 0.005


@pytest.mark.real_model
@pytest.mark.shared_data
def test_sts_benchmark_matches_published_mteb_score(real_embedder: SentenceTransformerEmbedder) -> None:
    pairs = load_sts_benchmark(shared_path("data", "sts", "stsbenchmark", "sts-test.csv"))
    assert len(pairs) == 1379
    rho = sts_spearman(real_embedder, pairs, instruction=None)
    assert abs(rho - PUBLISHED_SPEARMAN) <= TOLERANCE, rho


# -- the loader and the metric, on small files made here ------------------------------------------


def _write(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_loader_reads_unquoted_tabs_and_extra_columns(tmp_path: Path) -> None:
    file = _write(
        tmp_path / "sts.csv",
        [
            ["main-captions", "MSRvid", "2012test", "0001", "5.000", 'A "quoted" man.', "A man."],
            ["main-news", "headlines", "2015", "0002", "0.4", "Bonds fell.", "Cats purr.", "src1", "src2"],
        ],
    )
    assert load_sts_benchmark(file) == [
        StsPair('A "quoted" man.', "A man.", 5.0),
        StsPair("Bonds fell.", "Cats purr.", 0.4),
    ]


def test_loader_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_sts_benchmark(tmp_path / "missing.csv")
    short = _write(tmp_path / "short.csv", [["g", "f", "y", "id", "1.0", "only one sentence"]])
    with pytest.raises(InputError, match=r"short\.csv:1: expected at least 7"):
        load_sts_benchmark(short)
    bad_score = _write(tmp_path / "score.csv", [["g", "f", "y", "id", "high", "a", "b"]])
    with pytest.raises(InputError, match=r"score 'high' in column 5"):
        load_sts_benchmark(bad_score)


def test_spearman_with_an_explicit_score_list() -> None:
    embedder = FakeEmbedder()
    pairs = [
        ("aspirin treats fever", "aspirin treats fever"),
        ("aspirin treats fever", "aspirin treats headache"),
        ("aspirin treats fever", "stock prices fell"),
    ]
    # Identical > one word changed > unrelated: the fake embedder ranks them the same way.
    assert sts_spearman(embedder, pairs, [5.0, 3.0, 0.0]) == pytest.approx(1.0)
    assert sts_spearman(embedder, pairs, [0.0, 3.0, 5.0]) == pytest.approx(-1.0)
    # Each distinct sentence is embedded once.
    assert embedder.stats.texts == 2 * 3  # two calls, three distinct sentences each


def test_spearman_uses_cosine_even_for_unnormalized_vectors() -> None:
    pairs = [StsPair("a b c", "a b c d", 4.0), StsPair("a", "a a a a a a", 5.0), StsPair("a", "z", 0.0)]
    normalized = sts_spearman(FakeEmbedder(normalize=True), pairs)
    raw = sts_spearman(FakeEmbedder(normalize=False), pairs)
    assert normalized == pytest.approx(raw)
    assert np.isfinite(raw)


def test_spearman_input_errors() -> None:
    with pytest.raises(InputError, match="2 pairs but 1 scores"):
        sts_spearman(FakeEmbedder(), [("a", "b"), ("c", "d")], [1.0])
    with pytest.raises(InputError, match="at least two pairs"):
        sts_spearman(FakeEmbedder(), [("a", "b")], [1.0])
