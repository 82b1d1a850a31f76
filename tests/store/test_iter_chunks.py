"""VectorStore.iter_chunks: the committed chunks of completely stored files, read-only.

Real embedded Qdrant, real ingest with the fake embedder; the left-out chunks are written as an
interrupted or replacing ingest leaves them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from qdrant_client import models

from config import load_settings
from embedder import make_embedder
from ingest.pipeline import ingest_files
from ingest.sources import discover
from store.chunks import StoredChunk
from store.client import open_client
from store.core import store_for
from store.errors import CollectionNotFoundError
from store.payload import CHUNK_INDEX, CONTENT_KEY, FILE_NAME, FILE_SHA256, METADATA_KEY, SOURCE

TEXTS = {
    "a.txt": "Glaciers carve valleys. " * 40,
    "b.txt": "Volcanoes erupt lava and ash. " * 40,
}


def test_iter_chunks_yields_committed_chunks_only(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in TEXTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = load_settings(
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake"},
        qdrant={"path": str(tmp_path / "q"), "collection": "notes"},
        chunk={"size": 64, "overlap": 0},
    )
    client = open_client(settings)
    try:
        store = store_for(settings, client=client)
        with pytest.raises(CollectionNotFoundError):
            list(store.iter_chunks())
        files, _ = discover([docs])
        ingest_files(files, settings=settings, embedder=make_embedder(settings.model), store=store)
        stored = list(store.iter_chunks(batch=3))
        assert len(stored) == store.count() > 2
        assert all(isinstance(chunk, StoredChunk) for chunk in stored)
        assert {chunk.file_name for chunk in stored} == set(TEXTS)
        assert {chunk.source for chunk in stored} == {str((docs / name).resolve()) for name in TEXTS}
        for name in TEXTS:
            mine = sorted((c for c in stored if c.file_name == name), key=lambda c: c.chunk_index)
            assert [c.chunk_index for c in mine] == list(range(len(mine)))
            assert all(c.page is None and c.text.strip() and c.text.split()[0] in TEXTS[name] for c in mine)

        # a pending chunk (an ingest in progress) and one of another content of a stored file
        # (the old version of a file being replaced) are left out
        source = stored[0].source
        first = client.scroll("notes", limit=1, with_vectors=True)[0][0]
        vector = first.vector
        extra = [
            models.PointStruct(
                id=point_id,
                vector=vector,
                payload={
                    CONTENT_KEY: "Leftover chunk text.",
                    METADATA_KEY: {SOURCE: source, FILE_NAME: "a.txt", FILE_SHA256: sha, CHUNK_INDEX: 99},
                },
            )
            for point_id, sha in (
                ("00000000-0000-0000-0000-000000000001", "0" * 64),
                ("00000000-0000-0000-0000-000000000002", "1" * 64),
            )
        ]
        store.upsert_chunks(extra[:1], pending=True)
        store.upsert_chunks(extra[1:], pending=False)
        assert store.count(pending=True) == len(stored) + 2
        assert sorted(c.text for c in store.iter_chunks()) == sorted(c.text for c in stored)
    finally:
        client.close()
