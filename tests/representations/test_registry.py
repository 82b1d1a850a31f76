"""A new representation is one class and one registration: modes, schema, ingest and search follow.

The toy representation here (``reversed``: the chunk's dense vector with its components in
reverse order, queried by the reversed query vector) is registered by the test alone; nothing
else in the product is told about it. Reversing both sides keeps every dot product, so its
ranking must be the dense ranking, through Qdrant and through the in-process index alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from config import load_settings
from embedder import make_embedder
from ingest.pipeline import ingest_files
from ingest.sources import SourceFile
from representations.base import (
    BuildContext,
    Built,
    Encoder,
    QueryVector,
    RecordContext,
    Representation,
    RepresentationRecord,
    VectorSchema,
)
from representations.registry import REGISTRY
from retrieval.engine import search
from retrieval.errors import QueryError
from retrieval.modes import MODES, available_modes, check_mode
from store.client import open_client
from store.core import VectorStore

DOCS = {
    "cats.txt": "Cats sleep most of the day. A sleeping cat dreams of warm sunlight on the windowsill.",
    "volcano.txt": "Lava erupts from volcanoes under high pressure. Volcanic ash travels far in the wind.",
    "statins.txt": "Statins lower blood cholesterol levels. Doctors prescribe statins after heart attacks.",
    "aspirin.txt": "Aspirin reduces fever and headache pain. It also thins the blood a little.",
}
TOY_VECTOR = "reversed"


class ReversedRecord(RepresentationRecord):
    vector: str = TOY_VECTOR
    transform: str = "components in reverse order"


class _ReverseBatches(Encoder):
    def build(self, texts: Sequence[str], dense: NDArray[np.float32]) -> Built:
        return Built(
            vectors=[{TOY_VECTOR: row[::-1].tolist()} for row in dense], payloads=[], items=len(texts)
        )


class Reversed(Representation[ReversedRecord]):
    name = "reversed"
    record_type = ReversedRecord
    vector = TOY_VECTOR
    setting = "registering the reversed representation"

    def configure(self, context: RecordContext) -> ReversedRecord:
        return ReversedRecord()

    def schema(self, record: ReversedRecord, dimension: int) -> VectorSchema:
        from qdrant_client import models

        return VectorSchema(
            vectors={TOY_VECTOR: models.VectorParams(size=dimension, distance=models.Distance.COSINE)}
        )

    def encoder(self, record: ReversedRecord, context: BuildContext) -> Encoder:
        return _ReverseBatches()

    def query(self, record: ReversedRecord, text: str, dense: list[float] | None) -> QueryVector:
        assert dense is not None
        return QueryVector(kind="dense", using=TOY_VECTOR, dense=dense[::-1])


@pytest.fixture
def toy() -> Iterator[Representation[Any]]:
    with REGISTRY.registered(Reversed()) as representation:
        yield representation


def _store(tmp_path: Path) -> VectorStore:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    store = VectorStore(open_client(settings), "toy")
    files = [SourceFile(source=f"t:{n}", file_name=n, data=text.encode()) for n, text in DOCS.items()]
    report = ingest_files(files, settings=settings, embedder=make_embedder(settings.model), store=store)
    assert report.counts()["ingested"] == len(DOCS)
    return store


def test_a_registered_representation_is_built_stored_and_searched(
    toy: Representation[Any], tmp_path: Path
) -> None:
    assert MODES["reversed"] == ("reversed",) and "reversed" in MODES
    check_mode("reversed")
    store = _store(tmp_path)
    embedder = make_embedder(load_settings(model={"backend": "fake"}).model)

    # The collection schema and the stored record have it; the record reads back from Qdrant.
    params = store.client.get_collection(store.collection).config.params.vectors
    assert isinstance(params, dict) and set(params) == {"", TOY_VECTOR}
    record = store.require_record()
    assert record.representations.available() == ["dense", "sparse", "reversed"]
    assert record.representations.get("reversed") == ReversedRecord()
    assert "reversed" in available_modes(record)

    # Every point has the reversed dense vector.
    points, _ = store.client.scroll(store.collection, with_vectors=True, limit=10)
    for point in points:
        assert isinstance(point.vector, dict)
        np.testing.assert_allclose(point.vector[TOY_VECTOR], point.vector[""][::-1], atol=1e-6)

    # Its mode ranks as dense does, through Qdrant and through the in-process index.
    for local_index in (False, True):
        dense = search(
            "statins cholesterol", store=store, embedder=embedder, mode="dense", local_index=local_index
        )
        toy_result = search(
            "statins cholesterol", store=store, embedder=embedder, mode="reversed", local_index=local_index
        )
        assert toy_result.mode == "reversed" and toy_result.hits
        assert [hit.id for hit in toy_result.hits] == [hit.id for hit in dense.hits]
        assert [hit.score for hit in toy_result.hits] == pytest.approx(
            [hit.score for hit in dense.hits], abs=1e-5
        )
        # A cosine representation takes a score threshold; "all" fuses it with the others.
        assert search("statins", store=store, embedder=embedder, mode="reversed", score_threshold=0.01).hits
        assert search("statins", store=store, embedder=embedder, mode="all", local_index=local_index).hits


def test_an_unregistered_mode_is_refused_with_the_valid_modes(tmp_path: Path) -> None:
    assert "reversed" not in MODES  # the fixture's registration ended with its test
    with pytest.raises(
        QueryError, match=r"unknown search mode 'reversed'; use one of: dense, sparse, .*hybrid"
    ):
        check_mode("reversed")
