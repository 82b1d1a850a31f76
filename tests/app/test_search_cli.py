"""The `search` subcommand end to end: real embedded Qdrant, fake embedder, output formats and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pdfgen import TOPICS, write_pdf

from app.cli import main


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "earth.pdf", [TOPICS["photosynthesis"], TOPICS["volcano"]])
    (docs / "games.md").write_text("# Games\n\n" + TOPICS["chess"], encoding="utf-8")
    data = tmp_path / "data"
    assert main(["ingest", str(docs), "--data-dir", str(data), "--backend", "fake", "--no-progress"]) == 0
    return data


def _run(data: Path, *args: str) -> int:
    return main(["search", *args, "--data-dir", str(data), "--backend", "fake"])


def test_json_output(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _run(data_dir, "magma eruption lava", "--json", "--top-k", "2") == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["hits"]) == 2
    top = data["hits"][0]
    assert {"file_name", "page", "chunk_index", "score", "text", "id"} <= set(top)
    assert (top["file_name"], top["page"]) == ("earth.pdf", 2)
    assert "magma" in top["text"]
    assert data["instruction"] == "Represent the question for retrieving supporting documents:"


def test_human_output_numbers_hits_with_file_page_score_and_passage(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (
        _run(data_dir, "chess player pieces king queen rooks bishops knights pawns checkmate", "-k", "1") == 0
    )
    out = capsys.readouterr().out
    assert "1 hits in 'documents'" in out
    assert "1. games.md · text · score " in out
    assert "checkmate the opposing king" in out


def test_document_filter_by_name_and_by_path(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert _run(data_dir, "chess king", "--json", "--document", "earth.pdf") == 0
    assert {h["file_name"] for h in json.loads(capsys.readouterr().out)["hits"]} == {"earth.pdf"}
    assert _run(data_dir, "volcano", "--json", "--document", str(tmp_path / "docs" / "games.md")) == 0
    assert {h["file_name"] for h in json.loads(capsys.readouterr().out)["hits"]} == {"games.md"}


def test_threshold_with_no_hits_says_so(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _run(data_dir, "chess", "--threshold", "0.999", "--mode", "dense") == 0
    assert "no hits above the score threshold 0.999" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "the query is empty"),
        ("   ", "the query is empty"),
        ("q" * 2001, "2001 characters long; the limit is 2000"),
    ],
)
def test_bad_queries(data_dir: Path, capsys: pytest.CaptureFixture[str], query: str, message: str) -> None:
    capsys.readouterr()
    assert _run(data_dir, query) == 1
    assert message in capsys.readouterr().err


def test_missing_collection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path / "empty", "anything", "--collection", "papers") == 1
    err = capsys.readouterr().err
    assert "collection 'papers' does not exist yet" in err
    assert "instructor-search ingest PATH --collection papers" in err
