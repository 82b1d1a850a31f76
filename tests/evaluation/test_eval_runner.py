"""The BEIR runner goes through the real ingest and search path (fake embedder, tiny corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from beirgen import make_folder

from app.cli import main
from config import Settings
from embedder import make_embedder
from evaluation.beir import load_beir
from evaluation.errors import EvaluationError
from evaluation.runner import InstructionChoice, run_beir


@pytest.mark.parametrize("corpus_format", ["json", "pdf"])
def test_lexically_obvious_queries_score_perfectly(
    tmp_path: Path, fake_settings: Settings, corpus_format: str
) -> None:
    dataset = load_beir(make_folder(tmp_path), "test")
    result = run_beir(
        dataset,
        settings=fake_settings,
        embedder=make_embedder(fake_settings.model),
        instructions=InstructionChoice.parse("default"),
        corpus_format=corpus_format,  # type: ignore[arg-type]
        pdf_folder=tmp_path / "pdfs",
    )
    assert result.queries == 3 and result.documents == 4
    assert result.failed_documents == 0
    assert result.ndcg_at_10 == pytest.approx(1.0)
    assert result.mrr_at_10 == pytest.approx(1.0)
    assert result.recall_at_100 == pytest.approx(1.0)
    assert result.document_instruction == "Represent the document for retrieval:"
    if corpus_format == "json":
        assert result.chunks == 4  # one chunk per document
    else:
        assert sorted(p.name for p in (tmp_path / "pdfs").iterdir()) == [f"d{i}.pdf" for i in range(1, 5)]


def test_instruction_choices(fake_settings: Settings) -> None:
    assert InstructionChoice.parse("none").apply(fake_settings).instructions.enabled is False
    custom = InstructionChoice.parse("Represent the claim::Represent the abstract").apply(fake_settings)
    assert (custom.instructions.query, custom.instructions.document) == (
        "Represent the claim",
        "Represent the abstract",
    )
    with pytest.raises(EvaluationError, match="not understood"):
        InstructionChoice.parse("weird")


def test_no_instruction_run_records_none(tmp_path: Path, fake_settings: Settings) -> None:
    result = run_beir(
        load_beir(make_folder(tmp_path), "test"),
        settings=fake_settings,
        embedder=make_embedder(fake_settings.model),
        instructions=InstructionChoice.parse("none"),
    )
    assert result.query_instruction is None and result.document_instruction is None
    assert result.ndcg_at_10 == pytest.approx(1.0)


def test_cli_json_and_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path)
    docs = tmp_path / "docs"
    code = main(
        [
            "eval",
            "beir",
            str(folder),
            "--mode",
            "dense",
            "--json",
            "--record",
            "--docs-dir",
            str(docs),
            "--backend",
            "fake",
            "--data-dir",
            str(tmp_path / "data"),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("ndcg_at_10", "recall_at_100", "mrr_at_10", "map_at_100", "seconds"):
        assert key in out
    markdown = (docs / "benchmarks.md").read_text()
    assert "| tiny | test | json | dense | default | 1.0000 |" in markdown
    assert "instructor-search eval beir" in markdown
    assert (docs / "img" / "beir_ndcg.png").stat().st_size > 1000


def test_identical_documents_are_stored_once_but_both_count(tmp_path: Path, fake_settings: Settings) -> None:
    folder = make_folder(tmp_path)
    twin = {"_id": "d5", "title": "Statins", "text": "statins lower blood cholesterol levels"}  # same as d2
    with (folder / "corpus.jsonl").open("a") as handle:
        handle.write(json.dumps(twin) + "\n")
    (folder / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\nq2\td5\t1\r\n")
    result = run_beir(
        load_beir(folder, "test"),
        settings=fake_settings,
        embedder=make_embedder(fake_settings.model),
        instructions=InstructionChoice.parse("default"),
    )
    assert result.chunks == 4  # d5 is not stored twice
    assert result.mrr_at_10 == pytest.approx(1.0)  # a hit on d2 stands for its twin d5


def test_tune_scores_a_grid_on_the_train_split_and_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_folder(tmp_path)
    (folder / "qrels" / "test.tsv").rename(folder / "qrels" / "train.tsv")
    docs = tmp_path / "docs"
    code = main(
        [
            "eval",
            "tune",
            str(folder),
            "--store",
            str(tmp_path / "store"),
            "--json",
            "--record",
            "--docs-dir",
            str(docs),
            "--backend",
            "fake",
            "--data-dir",
            str(tmp_path / "data"),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "train"
    configs = [row["config"] for row in out["rows"]]
    # the default build has dense and sparse vectors: both alone, RRF over a k x weight grid, DBSF
    assert configs[:2] == ["dense", "sparse"]
    assert "hybrid rrf(k=60,sparse=0.5)" in configs and "hybrid dbsf" in configs
    assert len(configs) == len(set(configs)) == 15
    for row in out["rows"]:
        assert row["queries"] == 3 and 0.0 <= row["ndcg_at_10"] <= 1.0
    assert max(row["ndcg_at_10"] for row in out["rows"]) == 1.0  # lexically obvious queries
    recorded = sorted((docs / "results" / "tuning").glob("tiny-train-*.json"))
    assert len(recorded) == 15
    assert "hybrid rrf(k=60,sparse=0.5)" in (docs / "benchmarks.md").read_text()


def test_sample_queries_is_reproducible(tmp_path: Path) -> None:
    from evaluation.tuning import sample_queries

    dataset = load_beir(make_folder(tmp_path), "test")
    first, second = sample_queries(dataset, 2), sample_queries(dataset, 2)
    assert first.queries == second.queries and len(first.queries) == 2
    assert set(first.qrels) <= set(first.queries)
    assert sample_queries(dataset, None) is dataset
