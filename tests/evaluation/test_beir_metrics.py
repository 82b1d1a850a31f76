"""BEIR reading and metrics on a tiny generated folder, against values computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evaluation.beir import evaluate_run, load_beir
from evaluation.errors import EvaluationError


def make_beir(root: Path) -> Path:
    folder = root / "tiny"
    (folder / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "Aspirin", "text": "Aspirin lowers fever."},
        {"_id": "d2", "title": "", "text": "Statins lower cholesterol."},
        {"_id": "d3", "title": "Cats", "text": "Cats sleep a lot."},
        {"_id": "5", "title": "Five", "text": "A document whose id looks like a query id."},
    ]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    queries = [
        {"_id": "q1", "text": "what lowers fever and cholesterol"},
        {"_id": "q2", "text": "sleepy cats"},
        {"_id": "7", "text": "a query with a numeric id"},
        {"_id": "train-only", "text": "this query belongs to another split"},
    ]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    # Official BEIR qrels use CRLF line endings and a header line.
    rows = ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td2\t2", "q2\td3\t1", "7\t5\t1"]
    (folder / "qrels" / "test.tsv").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    (folder / "qrels" / "train.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\ntrain-only\td3\t1\r\n")
    return folder


def test_load_beir_keeps_only_the_split_and_strips_crlf(tmp_path: Path) -> None:
    data = load_beir(make_beir(tmp_path), "test")
    assert set(data.queries) == {"q1", "q2", "7"}
    assert data.qrels == {"q1": {"d1": 1, "d2": 2}, "q2": {"d3": 1}, "7": {"5": 1}}
    assert data.corpus_size == 4
    docs = {d.doc_id: d for d in data.corpus()}
    assert docs["d1"].full_text == "Aspirin Aspirin lowers fever."
    assert docs["d2"].full_text == "Statins lower cholesterol."


def test_missing_split_names_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match=r"split 'dev'.*\['test', 'train'\]"):
        load_beir(make_beir(tmp_path), "dev")


def test_metrics_match_hand_computation() -> None:
    qrels = {"q1": {"d1": 1, "d2": 2}, "q2": {"d3": 1}}
    run = {"q1": {"d3": 0.9, "d1": 0.8, "d2": 0.7}, "q2": {"d3": 0.5, "d1": 0.1}}
    got = evaluate_run(qrels, run)
    # q1: DCG = 1/log2(3) + 2/log2(4); IDCG = 2/log2(2) + 1/log2(3); q2: 1.0
    ndcg_q1 = (1 / math.log2(3) + 2 / math.log2(4)) / (2 + 1 / math.log2(3))
    assert got["ndcg_at_10"] == pytest.approx((ndcg_q1 + 1.0) / 2, abs=1e-6)
    assert got["mrr_at_10"] == pytest.approx((0.5 + 1.0) / 2)
    assert got["recall_at_100"] == pytest.approx(1.0)
    assert got["map_at_100"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1.0) / 2)


def test_mrr_is_cut_at_10_and_missing_queries_count_as_zero() -> None:
    qrels = {"q1": {"rel": 1}, "q2": {"x": 1}}
    run = {"q1": {f"n{i}": 1.0 - i / 100 for i in range(10)} | {"rel": 0.5}}
    got = evaluate_run(qrels, run)
    assert got["mrr_at_10"] == 0.0  # the relevant doc is 11th
    assert got["recall_at_100"] == pytest.approx(0.5)  # q1 finds it within 100, q2 has no results


def test_identical_ids_are_ignored_like_beir() -> None:
    qrels = {"7": {"5": 1}}
    run = {"7": {"7": 0.99, "5": 0.5}}
    assert evaluate_run(qrels, run)["mrr_at_10"] == 1.0
    assert evaluate_run(qrels, run, ignore_identical_ids=False)["mrr_at_10"] == 0.5
