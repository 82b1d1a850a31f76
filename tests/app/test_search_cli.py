"""The `search` subcommand end to end: real embedded Qdrant, fake embedder, output formats and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pdfgen import TOPICS, pdf_bytes, write_pdf

from app.cli import main
from app.commands.search import format_result
from app.service import LocatedResult, SearchService
from config import load_settings
from ingest.sources import upload_source
from retrieval.engine import Hit, SearchResult


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


def test_json_hits_name_their_page_ocr_and_stored_file(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file ingested from disk is its own path; an upload is its kept copy; a moved file is null."""
    settings = load_settings(data_dir=str(data_dir), model={"backend": "fake"})
    upload = pdf_bytes([TOPICS["bread"]])
    with SearchService.open(settings) as service:
        service.ingest([upload_source("kitchen.pdf", upload)])
    capsys.readouterr()
    assert _run(data_dir, "magma eruption lava", "--json", "--top-k", "1") == 0
    top = json.loads(capsys.readouterr().out)["hits"][0]
    earth = tmp_path / "docs" / "earth.pdf"
    assert (top["file_name"], top["page"], top["ocr"]) == ("earth.pdf", 2, False)
    assert top["file_path"] == str(earth.resolve())

    assert _run(data_dir, "flour yeast kneading gluten dough", "--json", "--top-k", "1") == 0
    top = json.loads(capsys.readouterr().out)["hits"][0]
    assert (top["file_name"], top["page"], top["ocr"]) == ("kitchen.pdf", 1, False)
    kept = Path(top["file_path"])
    assert kept.is_relative_to(data_dir / "files") and kept.read_bytes() == upload

    earth.rename(tmp_path / "elsewhere.pdf")
    assert _run(data_dir, "magma eruption lava", "--json", "--top-k", "1") == 0
    top = json.loads(capsys.readouterr().out)["hits"][0]
    assert top["file_name"] == "earth.pdf" and top["file_path"] is None


def test_human_output_numbers_hits_with_file_page_score_and_passage(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (
        _run(data_dir, "chess player pieces king queen rooks bishops knights pawns checkmate", "-k", "1") == 0
    )
    out = capsys.readouterr().out
    assert "1 hit in 'documents'" in out
    assert "1. games.md · text · score " in out
    assert _run(data_dir, "magma eruption lava", "-k", "1") == 0
    assert "1. earth.pdf · page 2 · score " in capsys.readouterr().out
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


def test_human_output_marks_an_ocr_page() -> None:
    hit = Hit(id="1", score=0.5, text="scanned words", file_name="scan.pdf", page=3, chunk_index=0, ocr=True)
    result = SearchResult(query="q", hits=[hit], instruction=None, collection="documents", model="m", top_k=1)
    out = format_result(LocatedResult(result=result, files=[None]))
    assert "1. scan.pdf · page 3 (OCR) · score 0.500" in out
