"""Fixtures of the ingest tests: fake-embedder settings with small chunks, and their embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings, load_settings
from store.client import open_client
from store.core import VectorStore


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=str(tmp_path / "data"),
        # sort_window=1: batches in arrival order, which these tests reason about
        # (length-sorted windows are tested in tests/embedder/test_speed.py).
        model={"backend": "fake", "batch_size": 8, "sort_window": 1},
        chunk={"size": 60, "overlap": 10},
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[VectorStore]:
    client = open_client(settings)
    yield VectorStore(client, settings.qdrant.collection)
    client.close()
