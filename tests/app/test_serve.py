"""`instructor-search serve` (what `make run` calls): the sample-corpus step and the Streamlit launch."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from app.commands.serve import (
    APP_SCRIPT,
    app_url,
    check_port,
    child_environment,
    streamlit_command,
)
from app.errors import AppError
from app.service import SearchService, ensure_sample_corpus
from config import Settings, load_settings
from ingest.sample_corpus import SAMPLE_PREFIX, sample_files, sample_paths
from ingest.sources import upload_source

ROOT = Path(__file__).resolve().parents[2]


def test_sample_corpus_is_ingested_into_an_empty_default_collection(fake_settings: Settings) -> None:
    lines: list[str] = []
    report = ensure_sample_corpus(fake_settings, echo=lines.append)
    assert report is not None
    assert [f.status for f in report.files] == ["ingested"] * len(sample_paths())
    assert any("indexing the sample corpus" in line for line in lines)

    svc = SearchService.open(fake_settings)
    try:
        docs = svc.documents()
        assert {d.source for d in docs} == {SAMPLE_PREFIX + p.name for p in sample_paths()}
        assert all(d.pages and d.pages >= 3 for d in docs)
        hit = svc.search("freedom of speech press religion assemble petition grievances", top_k=1).hits[0]
        assert (hit.file_name, hit.page) == ("us_constitution.pdf", 4)
    finally:
        svc.close()

    # Second start: the collection has documents, nothing is done (and the client was closed,
    # so the store can be reopened, as the app process must).
    assert ensure_sample_corpus(fake_settings, echo=lines.append) is None


def test_no_sample_when_the_collection_has_documents(fake_settings: Settings) -> None:
    svc = SearchService.open(fake_settings)
    svc.ingest([upload_source("mine.txt", b"my own notes about glaciers")])
    svc.close()
    assert ensure_sample_corpus(fake_settings, echo=lambda _: None) is None
    svc = SearchService.open(fake_settings)
    try:
        assert [d.file_name for d in svc.documents()] == ["mine.txt"]
    finally:
        svc.close()


def test_sample_corpus_can_be_switched_off(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path), model={"backend": "fake"}, app={"sample_corpus": False})
    assert ensure_sample_corpus(settings, echo=lambda _: None) is None
    assert (
        ensure_sample_corpus(
            load_settings(model={"backend": "fake"}, qdrant={"path": ":memory:"}), echo=lambda _: None
        )
        is None
    )


def test_sample_pdfs_match_their_public_domain_texts(tmp_path: Path) -> None:
    """The committed PDFs are what scripts/make_sample_corpus.py makes from scripts/sample_texts."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_sample_corpus.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    committed = {p.name: p for p in sample_paths()}
    generated = {p.name: p for p in tmp_path.glob("*.pdf")}
    assert (
        set(committed)
        == set(generated)
        == {t.stem + ".pdf" for t in (ROOT / "scripts/sample_texts").glob("*.txt")}
    )
    for name, path in committed.items():
        ours, fresh = PdfReader(path), PdfReader(generated[name])
        assert len(ours.pages) == len(fresh.pages) >= 3
        assert [p.extract_text() for p in ours.pages] == [p.extract_text() for p in fresh.pages]
    assert all(f.path is not None and f.source.startswith(SAMPLE_PREFIX) for f in sample_files())


def test_child_environment_carries_the_effective_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(
        data_dir="relative-data",
        model={"backend": "fake"},
        qdrant={"collection": "papers"},
        instructions={"domain": "medicine"},
        app={"max_upload_mb": 7},
    )
    env = child_environment(
        settings,
        {
            "PATH": "/usr/bin",
            "INSTRUCTOR_SEARCH_QDRANT__URL": "http://stale:6333",
            "INSTRUCTOR_SEARCH_CONFIG_FILE": "x",
        },
    )
    assert env["PATH"] == "/usr/bin"
    assert "INSTRUCTOR_SEARCH_QDRANT__URL" not in env and "INSTRUCTOR_SEARCH_CONFIG_FILE" not in env
    assert Path(env["INSTRUCTOR_SEARCH_DATA_DIR"]).is_absolute()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    rebuilt = load_settings()
    assert rebuilt.model_dump(exclude={"data_dir"}) == settings.model_dump(exclude={"data_dir"})
    assert rebuilt.data_dir == Path("relative-data").resolve()


def test_streamlit_command() -> None:
    settings = load_settings(app={"max_upload_mb": 12})
    command = streamlit_command(settings, port=8600, address="127.0.0.1")
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT)]
    assert APP_SCRIPT.is_file()
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--server.maxUploadSize"] == "12"
    assert options["--server.port"] == "8600"
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.headless"] == "true"
    assert app_url("127.0.0.1", 8600) == "http://localhost:8600"


def test_busy_port_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(AppError, match=rf"cannot listen on 127.0.0.1:{port}.*another --port"):
            check_port("127.0.0.1", port)
    with pytest.raises(AppError, match="not valid"):
        check_port("127.0.0.1", 70000)


def test_streamlit_command_turns_the_file_watcher_off_unless_dev() -> None:
    settings = load_settings()
    command = streamlit_command(settings, port=8600, address="127.0.0.1")
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--server.fileWatcherType"] == "none"
    dev = streamlit_command(settings, port=8600, address="127.0.0.1", dev=True)
    dev_options = dict(zip(dev[5::2], dev[6::2], strict=True))
    assert dev_options["--server.fileWatcherType"] == "auto"


def test_serve_accepts_dev_flag() -> None:
    from app.cli import build_parser

    args = build_parser().parse_args(["serve", "--dev"])
    assert args.dev is True
    assert build_parser().parse_args(["serve"]).dev is False


def test_password_reaches_the_app_through_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(app={"password": "correct horse"}, qdrant={"url": "http://admin:pw@db:6333"})
    command = streamlit_command(settings, port=8600, address="0.0.0.0")
    assert not any("correct horse" in part for part in command)
    env = child_environment(settings, {})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    rebuilt = load_settings()
    assert rebuilt.app.password is not None
    assert rebuilt.app.password.get_secret_value() == "correct horse"
    assert rebuilt.qdrant.url == "http://admin:pw@db:6333"


def test_address_warning() -> None:
    from app.commands.serve import address_warning

    assert address_warning("127.0.0.1", password=False) is None
    assert address_warning("::1", password=False) is None
    assert address_warning("localhost", password=False) is None
    open_warning = address_warning("0.0.0.0", password=False)
    assert open_warning and "anyone on the network can read, upload and delete" in open_warning
    assert "app.password" in open_warning
    guarded = address_warning("192.168.1.5", password=True)
    assert guarded and "password" in guarded and "anyone on the network" not in guarded
