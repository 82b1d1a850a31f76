"""The page's and the service's front door: password gate, names, one-line errors, cancel, write lock.

The page runs through Streamlit's AppTest exactly as ``streamlit run streamlit_app.py`` runs it;
uploads run through the real service (real embedded Qdrant, fake embedder).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdfgen import TOPICS
from streamlit.testing.v1 import AppTest
from test_app_ui import APP, TIMEOUT, _all_text, _app, _fresh_resources, _texts, data_dir

from app.service import SearchService, serialize_embedder
from config import InvalidNameError, Settings, load_settings
from embedder import FakeEmbedder
from ingest.report import ProgressEvent
from ingest.sources import upload_source

__all__ = ["_fresh_resources", "data_dir"]  # fixtures used here

BAD_NAMES = ["..", ".", "a\\b", "a:b", "<x>", "x__documents", "evil\u202etxt.exe", "t\x1b]0;pwned\x07"]


@pytest.fixture
def service(fake_settings: Settings) -> Iterator[SearchService]:
    svc = SearchService.open(fake_settings, embedder=serialize_embedder(FakeEmbedder()))
    yield svc
    svc.close()


def _page_text(at: AppTest) -> str:
    return _all_text(at) + "\n".join(str(el.value) for el in at.get("title"))


# -- password gate ---------------------------------------------------------------------------------


def test_password_gate(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_APP__PASSWORD", "correct horse")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert [w.label for w in at.text_input] == ["Password"]  # nothing else: no collection, no upload
    assert not at.selectbox and not at.get("file_uploader") and not at.tabs

    at.text_input(key="password_input").input("correct hors")
    at.button(key="FormSubmitter:password_gate-Enter").click().run()
    assert any("Wrong password" in e for e in _texts(at, "error"))
    assert not at.selectbox
    assert "correct horse" not in _page_text(at)

    at.text_input(key="password_input").input("correct horse")
    at.button(key="FormSubmitter:password_gate-Enter").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="collection").value == "documents"
    assert not at.error
    at.run()  # the session stays signed in
    assert at.selectbox(key="collection").value == "documents"


def test_no_gate_without_password(data_dir: Path) -> None:
    at = _app()
    assert at.selectbox(key="collection").value == "documents"
    assert "Password" not in [w.label for w in at.text_input]


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_new_collection_name_is_a_one_line_message(data_dir: Path, name: str) -> None:
    at = _app()
    at.selectbox(key="collection").set_value("+ New collection…").run()
    at.text_input(key="new_name").input(name)
    at.button(key="create_collection").click().run()
    assert not at.exception, at.exception
    errors = _texts(at, "error")
    assert len(errors) == 1 and "collection name" in errors[0], errors
    assert "Something went wrong" not in errors[0]
    assert "\u202e" not in _page_text(at) and "\x1b" not in _page_text(at)
    assert at.selectbox(key="collection").options == ["documents", "+ New collection…"]


def test_bad_collection_name_in_settings_is_a_message(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_QDRANT__COLLECTION", "..")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    [error] = _texts(at, "error")
    assert "collection name '..'" in error and "Something went wrong" not in error


def test_service_refuses_bad_and_internal_names(service: SearchService) -> None:
    for name in BAD_NAMES:
        with pytest.raises(InvalidNameError, match="collection name"):
            service.create_collection(name, service.new_record())
        with pytest.raises(InvalidNameError, match="collection name"):
            service.ingest([upload_source("a.txt", b"text")], collection=name)
        with pytest.raises(InvalidNameError, match="collection name"):
            service.search("text", collection=name)
    with pytest.raises(InvalidNameError, match="reserved for internal collections"):
        service.delete_document("upload:a.txt", "documents__documents")
    assert service.collections() == []


# -- unreachable server ----------------------------------------------------------------------------


def test_unreachable_server_is_a_one_line_message(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_QDRANT__URL", "http://admin:SECRET@127.0.0.1:1")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    [error] = _texts(at, "error")
    assert "cannot reach the Qdrant server at http://***@127.0.0.1:1" in error, error
    assert "--qdrant-url" in error and "Something went wrong" not in error
    assert "SECRET" not in _page_text(at)


# -- cancel and the write lock -----------------------------------------------------------------------


def _texts_files(*names: str) -> list[tuple[str, bytes]]:
    topics = list(TOPICS)
    return [(name, TOPICS[topics[i % len(topics)]].encode()) for i, name in enumerate(names)]


def test_cancel_keeps_stored_files_and_rolls_back_the_rest(tmp_path: Path) -> None:
    # One chunk per batch: each file is embedded and handed to the writer as soon as it is read.
    settings = load_settings(
        data_dir=str(tmp_path / "data"), model={"backend": "fake", "batch_size": 1, "sort_window": 1}
    )
    service = SearchService.open(settings, embedder=serialize_embedder(FakeEmbedder()))
    cancel = threading.Event()

    def on_progress(event: ProgressEvent) -> None:
        # As the Cancel button does once the page shows the first file stored.
        if event.file_index == 2 and not cancel.is_set():
            deadline = time.monotonic() + 20
            while "a.txt" not in {d.file_name for d in service.documents()} and time.monotonic() < deadline:
                time.sleep(0.02)
            cancel.set()

    try:
        files = [upload_source(n, d) for n, d in _texts_files("a.txt", "b.txt", "c.txt", "d.txt")]
        report = service.ingest(files, on_progress=on_progress, cancel=cancel)
        statuses = {r.file_name: r.status for r in report.files}
        assert statuses["a.txt"] == "ingested" and statuses["d.txt"] == "cancelled", statuses
        assert set(statuses.values()) == {"ingested", "cancelled"}
        kept = sorted(name for name, status in statuses.items() if status == "ingested")
        assert sorted(d.file_name for d in service.documents()) == kept
        assert report.points == service.store().count() > 0
        hits = service.search(TOPICS[next(iter(TOPICS))][:80], top_k=10).hits
        assert hits and {h.file_name for h in hits} <= set(kept) and "a.txt" in {h.file_name for h in hits}
        # The lock is free again: another upload goes through.
        again = service.ingest([upload_source("e.txt", TOPICS["chess"].encode())])
        assert [r.status for r in again.files] == ["ingested"]
    finally:
        service.close()


def test_upload_waits_for_the_write_lock_and_cancelling_releases_it(service: SearchService) -> None:
    """Session A's upload holds the lock; B's waits (shown as waiting); cancelling A lets B through."""
    inside, go_on, cancel_a = threading.Event(), threading.Event(), threading.Event()

    def slow_progress(event: ProgressEvent) -> None:
        inside.set()
        go_on.wait(30)

    files_a = [upload_source(name, data) for name, data in _texts_files("a1.txt", "a2.txt")]
    outcome_a: list[object] = []
    thread_a = threading.Thread(
        target=lambda: outcome_a.append(service.ingest(files_a, on_progress=slow_progress, cancel=cancel_a))
    )
    thread_a.start()
    assert inside.wait(30)

    from app.uploads import start_upload

    job_b = start_upload(service, "documents", _texts_files("b1.txt"))
    assert not job_b.done.wait(0.5)  # waiting for A
    assert service.write_lock.locked() and not job_b.events  # what the page shows as "Waiting for ..."

    cancel_a.set()
    go_on.set()
    thread_a.join(30)
    assert job_b.done.wait(30), "B still waits after A was cancelled"
    assert job_b.error is None
    assert [r.status for r in job_b.outcome().results] == ["ingested"]
    [report_a] = outcome_a
    assert {r.status for r in report_a.files} == {"cancelled"}  # type: ignore[attr-defined]
    assert [d.file_name for d in service.documents()] == ["b1.txt"]


def test_cancel_while_waiting_for_the_lock(service: SearchService) -> None:
    from app.uploads import start_upload

    with service.write_lock:  # another session's upload or delete
        job = start_upload(service, "documents", _texts_files("x.txt", "y.txt"))
        assert not job.done.wait(0.3)
        job.cancel.set()
        assert job.done.wait(5)
    outcome = job.outcome()
    assert [r.status for r in outcome.results] == ["cancelled", "cancelled"]
    assert all(r.note and "waiting" in r.note for r in outcome.results)
    assert service.documents() == []
