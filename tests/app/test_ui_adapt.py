"""The page's "Adapt to this collection" action through streamlit.testing.v1.AppTest.

The app runs the tiny fixture model (a real sentence-transformers model; a collection of the
fake embedder cannot be fine-tuned) on an embedded store in a temp folder; the adaptation is
real (data, a training step, re-embedding) and runs in its background thread while the page
goes on searching.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from pdfgen import long_text
from streamlit.testing.v1 import AppTest
from testdata import FIXTURES, ROOT

from app import adapting
from app.service import SearchService
from config import load_settings
from ingest import discover

APP = str(ROOT / "streamlit_app.py")
TINY = FIXTURES / "tiny-instructor" / "model"
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _fresh_resources() -> Iterator[None]:
    yield
    st.cache_resource.clear()
    adapting._JOBS.clear()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    env = {
        "DATA_DIR": str(data),
        "MODEL__NAME": str(TINY),
        "MODEL__RUNTIME": "torch",
        "MODEL__DEVICE": "cpu",
        "CHUNK__SIZE": "200",
        "CHUNK__OVERLAP": "16",
        "TRAIN__MAX_STEPS": "1",
        "TRAIN__BATCH_SIZE": "4",
        "TRAIN__MINI_BATCH_SIZE": "2",
        "TRAIN__SAVE_STEPS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(f"INSTRUCTOR_SEARCH_{key}", value)
    docs = tmp_path / "docs"
    docs.mkdir()
    for topic in ("volcano", "bread", "glacier"):
        (docs / f"{topic}.txt").write_text(f"# {topic.title()}\n\n" + long_text(topic, 3), encoding="utf-8")
    files, _ = discover([docs])
    with SearchService.open(load_settings()) as service:  # closed before the page opens the store
        assert service.ingest(files).points > 0
    return data


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _job(collection: str = "documents") -> adapting.AdaptJob:
    [job] = [job for (_, name), job in adapting._JOBS.items() if name == collection]
    return job


def test_adapt_action_runs_in_the_background_and_adds_the_collection(data_dir: Path) -> None:
    at = _app()
    assert at.selectbox(key="collection").options == ["documents", "+ New collection…"]

    at.button(key="adapt:documents").click()
    at.run()
    assert not at.exception, at.exception
    job = _job()  # the action started a job
    assert any("Adapting" in md.value for md in at.sidebar.markdown)

    at.text_input(key="query").input("magma chamber volcano")  # the page goes on searching
    at.run()
    assert not at.exception, at.exception
    assert any("hit-card" in el.proto.body for el in at.get("html"))

    assert job.done.wait(TIMEOUT), "the adaptation did not finish"
    assert job.error is None and job.result is not None, job.error
    at.run()
    assert not at.exception, at.exception
    assert "documents-adapted" in at.selectbox(key="collection").options
    assert any("Created" in s.value and "documents-adapted" in s.value for s in at.sidebar.success)
    assert job.result.reembed.complete and job.result.reembed.points > 0

    at.button(key="dismiss_adapt:documents").click()
    at.run()
    assert not adapting._JOBS and at.button(key="adapt:documents")  # the action is offered again


def test_cancel_stops_the_job_and_a_new_run_resumes(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_TRAIN__MAX_STEPS", "500")
    at = _app()
    at.button(key="adapt:documents").click()
    at.run()
    job = _job()
    at.button(key="cancel_adapt:documents").click()
    at.run()
    assert job.done.wait(TIMEOUT), "the cancelled adaptation did not stop"
    assert job.cancelled and job.result is None
    at.run()
    assert any("Cancelled" in w.value for w in at.sidebar.warning)
    assert "documents-adapted" not in at.selectbox(key="collection").options


def test_a_fake_embedder_collection_cannot_be_adapted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INSTRUCTOR_SEARCH_MODEL__BACKEND", "fake")
    (tmp_path / "bread.txt").write_text(long_text("bread", 2), encoding="utf-8")
    files, _ = discover([tmp_path / "bread.txt"])
    with SearchService.open(load_settings()) as service:
        service.ingest(files)
    at = _app()
    button = at.button(key="adapt:documents")
    assert button.disabled and "fake embedder" in (button.help or "")
