"""The ingest, documents and collections commands, end to end through ``app.cli.main``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pdfgen import TOPICS, long_text, write_pdf
from qdrant_client import QdrantClient

from app.cli import main
from config import load_settings
from embedder import FakeEmbedder
from ingest import discover, ingest_files
from store.client import open_client
from store.core import VectorStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands (and their subprocesses) keep caches and exports under the test's folder."""
    monkeypatch.setenv("INSTRUCTOR_SEARCH_DATA_DIR", str(tmp_path / "data"))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _corpus(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_pdf(folder / f"{topic}.pdf", [long_text(topic, 3), TOPICS[topic]]) for topic in TOPICS]
    (folder / "notes.md").write_text("# Notes\n\nΚαλημέρα κόσμε. " + TOPICS["vaccine"], encoding="utf-8")
    return [*paths, folder / "notes.md"]


def test_ingest_json_statuses_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    _corpus(docs)
    store = ["--qdrant-path", str(tmp_path / "q"), "--backend", "fake"]
    code, out, _ = run_cli(capsys, "ingest", str(docs), *store, "--json")
    assert code == 0
    summary = json.loads(out)
    assert {f["status"] for f in summary["files"]} == {"ingested"}
    assert len(summary["files"]) == len(TOPICS) + 1
    assert summary["points"] == sum(f["chunks"] for f in summary["files"]) > 0
    assert set(summary["files"][0]) >= {"path", "status", "chunks", "error"}

    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    code, out, _ = run_cli(capsys, "ingest", str(docs), str(tmp_path / "missing.txt"), *store, "--json")
    assert code == 1
    again = json.loads(out)
    statuses = {Path(f["path"]).name: (f["status"], f["error"]) for f in again["files"]}
    assert statuses["missing.txt"][0] == "failed" and "does not exist" in statuses["missing.txt"][1]
    assert statuses["broken.pdf"][0] == "failed" and "malformed" in statuses["broken.pdf"][1]
    assert statuses["bread.pdf"] == ("unchanged", None)
    assert again["points"] == summary["points"]

    code, out, _ = run_cli(capsys, "ingest", str(docs / "bread.pdf"), *store)
    assert code == 0 and "unchanged" in out and f"{summary['points']} points" in out


def test_documents_list_and_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    paths = _corpus(docs)
    store = ["--qdrant-path", str(tmp_path / "q"), "--backend", "fake"]
    assert run_cli(capsys, "ingest", str(docs), *store, "--no-progress")[0] == 0
    code, out, _ = run_cli(capsys, "documents", "list", *store, "--json")
    listing = json.loads(out)
    assert code == 0
    assert {d["source"] for d in listing["documents"]} == {str(p.resolve()) for p in paths}
    points = listing["points"]
    chess = next(d for d in listing["documents"] if d["file_name"] == "chess.pdf")

    code, out, _ = run_cli(capsys, "documents", "delete", "chess.pdf", *store, "--json")
    assert code == 0
    deleted = json.loads(out)
    assert deleted == {
        "deleted": chess["source"],
        "chunks": chess["chunks"],
        "points": points - chess["chunks"],
    }
    code, out, _ = run_cli(capsys, "documents", "delete", str(docs / "bread.pdf"), *store)
    assert code == 0 and "deleted" in out
    code, _, err = run_cli(capsys, "documents", "delete", "chess.pdf", *store)
    assert code == 1 and "no document 'chess.pdf'" in err
    code, out, _ = run_cli(capsys, "documents", "list", *store)
    assert code == 0 and "chess.pdf" not in out and f"{len(paths) - 2} documents" in out


def test_collections_list_info_drop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    _corpus(docs)
    store = ["--qdrant-path", str(tmp_path / "q"), "--backend", "fake"]
    assert (
        run_cli(
            capsys, "ingest", str(docs / "chess.pdf"), *store, "--collection", "games", "--domain", "Games"
        )[0]
        == 0
    )
    code, out, _ = run_cli(capsys, "collections", "list", *store, "--json")
    [row] = json.loads(out)["collections"]
    assert row["name"] == "games" and row["documents"] == 1 and row["model"] == FakeEmbedder.model_id
    code, out, _ = run_cli(capsys, "collections", "info", "games", *store, "--json")
    info = json.loads(out)
    assert info["record"]["instructions"]["document"] == "Represent the Games document for retrieval:"
    assert info["record"]["chunking"]["size"] == 200
    code, _, err = run_cli(capsys, "collections", "info", *store)  # default collection: not there
    assert code == 1 and "does not exist yet" in err
    code, _, err = run_cli(capsys, "collections", "drop", "games", *store)
    assert code == 1 and "--yes" in err
    code, out, _ = run_cli(capsys, "collections", "drop", "games", "--yes", *store)
    assert code == 0 and "dropped" in out
    code, out, _ = run_cli(capsys, "collections", "list", *store, "--json")
    assert json.loads(out)["collections"] == []


def test_model_or_instruction_mismatch_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    _corpus(docs)
    store = ["--qdrant-path", str(tmp_path / "q"), "--backend", "fake"]
    assert run_cli(capsys, "ingest", str(docs / "chess.pdf"), *store)[0] == 0
    code, _, err = run_cli(capsys, "ingest", str(docs / "bread.pdf"), *store, "--domain", "Finance")
    assert code == 1
    assert "found" in err and "expected" in err and "--collection NEW_NAME" in err


def test_second_process_gets_a_readable_lock_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    location = tmp_path / "q"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from qdrant_client import QdrantClient; "
            f"c = QdrantClient(path={str(location)!r}); print('open', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        code, out, err = run_cli(capsys, "documents", "list", "--qdrant-path", str(location))
        assert code == 1 and out == ""
        assert "already open in another process" in err and "--qdrant-url" in err
        assert "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()


def _kill_corpus(folder: Path, count: int) -> None:
    folder.mkdir()
    topics = sorted(TOPICS)
    for index in range(count):
        topic = topics[index % len(topics)]
        pages = [
            f"Report {index} on {topic}.\n\n" + long_text(topic, 4 + index % 5),
            TOPICS[topics[(index + 1) % 6]],
        ]
        write_pdf(folder / f"report-{index:03d}.pdf", pages)


def test_killed_ingest_leaves_no_half_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """kill -9 an ingest in the middle, re-run it: the point count is exactly right."""
    corpus = tmp_path / "corpus"
    files = 120
    _kill_corpus(corpus, files)
    env = {**os.environ, "INSTRUCTOR_SEARCH_MODEL__BATCH_SIZE": "3"}

    # The exact expectation: the same files ingested into a fresh store in this process.
    reference = load_settings(
        qdrant={"path": str(tmp_path / "reference")}, model={"backend": "fake", "batch_size": 3}
    )
    client = open_client(reference)
    sources, _ = discover([corpus])
    expected = ingest_files(
        sources, settings=reference, embedder=FakeEmbedder(), store=VectorStore(client, "documents")
    ).points
    client.close()

    location = str(tmp_path / "q")
    command = [sys.executable, "-m", "app.cli", "ingest", str(corpus), "--backend", "fake"]
    command += ["--qdrant-path", location, "--no-progress", "-v"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    stored_before_kill = 0
    assert process.stderr is not None
    for line in process.stderr:
        if re.search(r"ingest\.pipeline: ingested: ", line):
            stored_before_kill += 1
            if stored_before_kill == files // 4:
                break
    still_running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert still_running, "the ingest finished before it could be killed; use more files"

    # The killed run left committed documents only (plus, possibly, chunks of the file it was on).
    # A raw client: open_client would repair the store before we could look at what the kill left.
    client = QdrantClient(path=location)
    store = VectorStore(client, "documents")
    committed = store.documents()
    assert files // 4 <= len(committed) < files
    assert store.write_interrupted()
    assert all(store.has_chunks(manifest) for manifest in committed)
    client.close()

    code, out, _ = run_cli(
        capsys, "ingest", str(corpus), "--backend", "fake", "--qdrant-path", location, "--json"
    )
    assert code == 0
    summary = json.loads(out)
    assert summary["points"] == expected
    statuses = [f["status"] for f in summary["files"]]
    assert statuses.count("unchanged") == len(committed)
    assert statuses.count("ingested") == files - len(committed)
    code, out, _ = run_cli(capsys, "documents", "list", "--qdrant-path", location, "--json")
    listing = json.loads(out)
    assert len(listing["documents"]) == files and listing["points"] == expected
    assert sum(d["chunks"] for d in listing["documents"]) == expected


def test_ingest_text_output_counts_in_words_and_names_ocr_and_empty_pages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "note.txt"
    note.write_text(TOPICS["chess"], encoding="utf-8")
    code, out, _ = run_cli(
        capsys,
        "ingest",
        str(note),
        "--qdrant-path",
        str(tmp_path / "q"),
        "--backend",
        "fake",
        "--no-progress",
    )
    assert code == 0
    assert re.search(r"^ingested +1 chunk +\S*note\.txt$", out, re.MULTILINE), out
    assert "1 point (1 ingested; 1 chunk embedded in" in out


def test_collection_counts_are_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One point is "1 point" in the list and the drop (the list keeps its columns), two are "2 points"."""
    note = tmp_path / "note.txt"
    note.write_text(TOPICS["chess"], encoding="utf-8")
    store = ["--qdrant-path", str(tmp_path / "q"), "--backend", "fake"]
    assert run_cli(capsys, "ingest", str(note), *store, "--collection", "one", "--no-progress")[0] == 0
    assert "skipped representation" not in capsys.readouterr().out
    other = tmp_path / "other.txt"
    other.write_text(TOPICS["bread"], encoding="utf-8")
    assert (
        run_cli(capsys, "ingest", str(note), str(other), *store, "--collection", "two", "--no-progress")[0]
        == 0
    )
    code, out, _ = run_cli(capsys, "collections", "list", *store)
    assert code == 0
    one, two = sorted(out.splitlines())
    assert re.fullmatch(r"one +1 point   model fake-hashing-embedder", one), one
    assert re.fullmatch(r"two +2 points  model fake-hashing-embedder", two), two
    assert len(one) == len(two)
    code, out, _ = run_cli(capsys, "collections", "drop", "one", "--yes", *store)
    assert code == 0 and "dropped collection 'one' (1 point)" in out


def test_file_lines_report_ocr_pages_and_the_warning() -> None:
    from app.commands.ingest import file_lines
    from ingest.sources import FileResult

    result = FileResult(
        path="/docs/scan.pdf",
        status="ingested",
        chunks=2,
        file_name="scan.pdf",
        pages=4,
        ocr_pages=(1, 3),
        empty_pages=(4,),
        warning="page 4 yielded no text (no text layer, and OCR found none)",
    )
    assert file_lines(result) == [
        "ingested       2 chunks  /docs/scan.pdf",
        "          2 pages OCR'd (pages 1, 3)",
        "          warning: page 4 yielded no text (no text layer, and OCR found none)",
    ]
    one = FileResult(path="/a.pdf", status="ingested", chunks=1, pages=1, ocr_pages=(1,))
    assert file_lines(one) == ["ingested       1 chunk   /a.pdf", "          1 page OCR'd (page 1)"]


SCANNED = ["The harbour pilot boards", "every tanker at dawn"]


@pytest.mark.ocr
def test_ingest_and_search_report_ocr_pages_and_empty_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A text page, a scanned page and a blank page: the blank one is named, the scan is OCR'd and found."""
    from ocrgen import pages_pdf

    path = tmp_path / "mixed.pdf"
    path.write_bytes(pages_pdf([("text", [TOPICS["bread"]]), ("image", SCANNED), ("blank", [])]))
    store = ["--qdrant-path", str(tmp_path / "q"), "--backend", "fake"]
    code, out, _ = run_cli(capsys, "ingest", str(path), *store, "--no-progress")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("ingested") and lines[0].endswith("mixed.pdf")
    assert "          1 page OCR'd (page 2)" in lines
    warning = next(line for line in lines if line.strip().startswith("warning:"))
    assert "page 3" in warning and "page 2" not in warning

    code, out, _ = run_cli(capsys, "search", "harbour pilot boards every tanker", *store, "--json", "-k", "3")
    assert code == 0
    hit = next(h for h in json.loads(out)["hits"] if h["page"] == 2)
    assert hit["ocr"] is True and "tanker" in hit["text"].lower()
    assert hit["file_path"] == str(path.resolve())
    code, out, _ = run_cli(capsys, "search", "harbour pilot boards every tanker", *store, "-k", "3")
    assert "mixed.pdf · page 2 (OCR) · score" in out
