"""The command line's front door: one-line errors, names, secrets, argument order, pipes, display.

Everything runs the real CLI (``app.cli.main`` or the installed ``instructor-search`` script in a
subprocess) against a real embedded Qdrant with the fake embedder. The unreachable server is
``http://127.0.0.1:1``: loopback, where nothing listens.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pdfgen import TOPICS, write_pdf

from app.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "instructor-search"
UNREACHABLE = "http://127.0.0.1:1"
BAD_NAMES = ["..", ".", "a\\b", "a:b", "<x>", "x__documents", "evil\u202etxt.exe", "t\x1b]0;pwned\x07"]


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_DATA_DIR", str(tmp_path / "data"))


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str) -> str:
    """The stderr of a failed command: exactly one line, an ``error:`` without a traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _script(
    *argv: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """A store with two documents in the default collection and one in ``games``."""
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "earth.pdf", [TOPICS["photosynthesis"], TOPICS["volcano"]])
    (docs / "games.md").write_text("# Games\n\n" + TOPICS["chess"], encoding="utf-8")
    options = ["--qdrant-path", str(tmp_path / "q"), "--backend", "fake"]
    assert main(["ingest", str(docs), *options, "--no-progress"]) == 0
    assert main(["ingest", str(docs / "games.md"), *options, "--no-progress", "--collection", "games"]) == 0
    capsys.readouterr()
    return options


# -- D4/D5: names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_collection_name_is_one_line_and_exit_1(
    name: str, store: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["search", "lava", "--collection", name, *store],
        ["ingest", str(ROOT / "README.md"), "--collection", name, *store],
        ["documents", "list", "--collection", name, *store],
        ["collections", "info", name, *store],
        ["collections", "drop", name, "--yes", *store],
        ["collections", "create", name, *store],
    ):
        code, _, err = _cli(capsys, *argv)
        line = _one_line_error(err)
        assert code == 1, (argv, err)
        assert "collection name" in line, line
        # The name is shown escaped: no control or bidi character reaches the terminal.
        assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err


def test_internal_collection_cannot_be_dropped_or_written(
    store: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for argv in (
        ["collections", "drop", "games__documents", "--yes", *store],
        ["ingest", str(ROOT / "README.md"), "--collection", "documents__documents", *store],
        ["documents", "delete", "games.md", "--collection", "games__documents", *store],
    ):
        code, _, err = _cli(capsys, *argv)
        assert code == 1 and "reserved for internal collections" in _one_line_error(err), err
    code, out, _ = _cli(capsys, "collections", "list", *store, "--json")
    names = [row["name"] for row in json.loads(out)["collections"]]
    assert names == ["documents", "games"]  # nothing was dropped, no internal one is listed
    code, out, _ = _cli(capsys, "documents", "list", "--collection", "games", *store, "--json")
    assert [d["file_name"] for d in json.loads(out)["documents"]] == ["games.md"]


def test_collections_create(store: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "collections", "create", "papers", "--domain", "Medicine", *store)
    assert code == 0, err
    assert "created collection 'papers'" in out
    code, _, err = _cli(capsys, "collections", "create", "papers", *store)
    assert code == 1 and "exists already" in _one_line_error(err)
    code, out, _ = _cli(capsys, "collections", "info", "papers", *store, "--json")
    assert (
        json.loads(out)["record"]["instructions"]["document"]
        == "Represent the Medicine document for retrieval:"
    )


# -- D5: unreachable server ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["documents", "list"], ["documents", "delete", "a.pdf"], ["collections", "list"], ["search", "lava"]],
    ids=["documents-list", "documents-delete", "collections-list", "search"],
)
def test_unreachable_server_is_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, *argv, "--qdrant-url", UNREACHABLE, "--backend", "fake")
    line = _one_line_error(err)
    assert code == 1
    assert "cannot reach the Qdrant server at http://127.0.0.1:1" in line, line
    assert "--qdrant-url" in line  # names the fix


def test_unreachable_server_traceback_only_with_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "collections", "list", "--qdrant-url", UNREACHABLE, "-v")
    assert code == 1
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("error: cannot reach the Qdrant server")


def test_unexpected_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "meta.json").write_text("not json")  # a damaged embedded store
    code, _, err = _cli(capsys, "documents", "list", "--qdrant-path", str(tmp_path / "q"))
    line = _one_line_error(err)
    assert code == 1 and "JSONDecodeError" in line and "run again with -v" in line, line
    code, _, err = _cli(capsys, "documents", "list", "--qdrant-path", str(tmp_path / "q"), "-v")
    assert code == 1 and "Traceback" in err


# -- D7: credentials in URLs -------------------------------------------------------------------------


def test_password_in_qdrant_url_is_never_printed() -> None:
    result = _script(
        "search", "x", "--qdrant-url", "http://admin:SECRET@127.0.0.1:99999", "--backend", "fake"
    )
    assert result.returncode == 1
    assert "SECRET" not in result.stdout + result.stderr, result.stderr
    assert "***@127.0.0.1:99999" in result.stderr
    assert "Traceback" not in result.stderr
    verbose = _script(
        "collections", "list", "--qdrant-url", "http://admin:SECRET@127.0.0.1:1", "-v", "--backend", "fake"
    )
    assert verbose.returncode == 1
    assert "SECRET" not in verbose.stdout + verbose.stderr, verbose.stderr


def test_password_in_url_is_redacted_in_settings_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_QDRANT__URL", "http://admin:SECRET@127.0.0.1:1")
    monkeypatch.setenv("INSTRUCTOR_SEARCH_QDRANT__PATH", str(tmp_path / "q"))  # both set: a settings error
    code, _, err = _cli(capsys, "documents", "list")
    line = _one_line_error(err)
    assert code == 1 and "ambiguous" in line and "***@127.0.0.1:1" in line
    assert "SECRET" not in err


# -- D8: display spoofing -----------------------------------------------------------------------------


def test_file_names_are_printed_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    title = "\x1b]0;pwned\x07report.txt"
    rtl = "invoice\u202etxt.exe.md"
    (docs / title).write_text(TOPICS["volcano"], encoding="utf-8")
    (docs / rtl).write_text(TOPICS["glacier"], encoding="utf-8")
    options = ["--qdrant-path", str(tmp_path / "q"), "--backend", "fake"]
    outputs = [
        _cli(capsys, "ingest", str(docs), *options, "--no-progress"),
        _cli(capsys, "documents", "list", *options),
        _cli(capsys, "search", "magma lava glacier ice", *options),
        _cli(capsys, "collections", "list", *options),
        _cli(capsys, "collections", "info", *options),
    ]
    for code, out, err in outputs:
        assert code == 0, err
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in out and raw not in err, out
    ingest_out, list_out, search_out = outputs[0][1], outputs[1][1], outputs[2][1]
    for out in (ingest_out, list_out, search_out):
        assert "\\x1b]0;pwned\\x07report.txt" in out, out
        assert "invoice\\u202etxt.exe.md" in out, out


def test_collection_names_from_another_tool_are_printed_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection(
        "x\x1b[2Jy", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE)
    )
    client.close()
    code, out, err = _cli(capsys, "collections", "list", "--qdrant-path", str(tmp_path / "q"))
    assert code == 0, err
    assert "\x1b" not in out and "x\\x1b[2Jy" in out


# -- D9: argument order, pipes ------------------------------------------------------------------------


def test_common_options_anywhere(store: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "documents", "delete", "--collection", "games", "games.md", *store)
    assert code == 0, err
    assert "deleted" in out
    code, out, err = _cli(capsys, *store, "collections", "drop", "--yes", "games")
    assert code == 0, err
    assert "dropped collection 'games'" in out
    code, out, err = _cli(capsys, "documents", *store, "list", "--json")
    assert code == 0, err
    assert {d["file_name"] for d in json.loads(out)["documents"]} == {"earth.pdf", "games.md"}


def test_closed_stdout_ends_quietly(store: list[str]) -> None:
    process = subprocess.Popen(
        [str(SCRIPT), "search", "lava", "--json", *store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` that has already exited
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


# -- serve: loopback warning -------------------------------------------------------------------------


def test_serve_warns_when_not_on_loopback(tmp_path: Path) -> None:
    with socket.socket() as sock:  # the port is taken, so serve stops right after its warning
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = str(sock.getsockname()[1])
        result = _script("serve", "--address", "0.0.0.0", "--port", port, "--no-sample", "--backend", "fake")
        secured = _script(
            "serve",
            "--address",
            "0.0.0.0",
            "--port",
            port,
            "--no-sample",
            "--backend",
            "fake",
            env={"INSTRUCTOR_SEARCH_APP__PASSWORD": "hunter2"},
        )
        local = _script("serve", "--port", port, "--no-sample", "--backend", "fake")
    assert result.returncode == 1 and "cannot listen" in result.stderr
    assert (
        "warning:" in result.stderr and "anyone on the network can read, upload and delete" in result.stderr
    )
    assert "warning:" in secured.stderr and "anyone on the network" not in secured.stderr
    assert "hunter2" not in secured.stdout + secured.stderr
    assert "warning:" not in local.stderr


def test_hidden_files_left_out_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    (docs / ".drafts").mkdir(parents=True)
    (docs / ".drafts" / "old.txt").write_text(TOPICS["bread"], encoding="utf-8")
    (docs / ".private.md").write_text(TOPICS["chess"], encoding="utf-8")
    (docs / "notes.txt").write_text(TOPICS["volcano"], encoding="utf-8")
    options = ["--qdrant-path", str(tmp_path / "q"), "--backend", "fake", "--no-progress"]
    code, out, err = _cli(capsys, "ingest", str(docs), "--recursive", *options)
    assert code == 0, err
    assert re.search(r"skipped +0 chunks +\S*\.private\.md\n +note: hidden file", out), out
    assert re.search(r"skipped +0 chunks +\S*\.drafts\n +note: hidden folder", out), out
    assert "1 ingested, 2 skipped" in out
    code, out, _ = _cli(capsys, "ingest", str(docs), "-r", *options, "--json")
    skipped = [f for f in json.loads(out)["files"] if f["status"] == "skipped"]
    assert {Path(f["path"]).name for f in skipped} == {".private.md", ".drafts"}
