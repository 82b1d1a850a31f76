"""Collection names in the store layer: an internal (manifest) collection is never a user's.

Collection ``x`` keeps its document list in ``x__documents``. A store opened on ``x__documents``
would write, repair or drop ``x``'s document list as if it were chunks; the store refuses such
a name everywhere. A new collection's name follows :func:`config.names.validate_collection_name`;
one created before those rules stays usable under the name it has. Real embedded Qdrant, the
fake embedder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from crashes import Crash, killable
from qdrant_client import models

from app.cli import main
from app.service import SearchService
from config import ConfigError, Settings, load_settings
from config.names import InvalidNameError
from ingest.pipeline import ingest_files
from ingest.report import ProgressEvent
from ingest.sources import SourceFile
from representations.dense import DENSE_VECTOR
from representations.sparse import SPARSE_VECTOR
from retrieval.engine import search
from store.client import list_collections, open_client
from store.core import VectorStore
from store.record import expected_record

TEXT = "Glaciers carve U-shaped valleys and leave moraines behind as they melt in summer."


def _file(name: str = "glacier.txt", text: str = TEXT) -> SourceFile:
    return SourceFile(source=f"upload:{name}", file_name=name, data=text.encode())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=str(tmp_path / "data"), model={"backend": "fake"}, qdrant={"path": str(tmp_path / "q")}
    )


@pytest.fixture
def service(settings: Settings) -> Iterator[SearchService]:
    svc = SearchService.open(settings)
    yield svc
    svc.close()


def _crash(event: ProgressEvent) -> None:
    if event.stage == "embedding":
        raise Crash("killed")


@pytest.mark.parametrize("name", ["x__documents", " x__documents ", "documents__documents", "a__documents"])
def test_the_store_refuses_internal_names(service: SearchService, name: str) -> None:
    with pytest.raises(InvalidNameError, match="reserved for internal collections"):
        VectorStore(service.client, name)
    assert issubclass(InvalidNameError, ConfigError)  # the front doors report it as a usage error


def test_an_interrupted_ingest_into_a_manifest_name_cannot_touch_its_owner(
    service: SearchService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the Python API (``ingest_files`` on a ``VectorStore``), below the front doors' checks."""
    client, embedder = service.client, service.embedder

    def ingest(collection: str, **options: object) -> None:
        store = VectorStore(client, collection)
        ingest_files([_file("other.txt")], settings=settings, embedder=embedder, store=store, **options)  # type: ignore[arg-type]

    # An ingest into "x__documents" is killed (it would leave its chunks and write mark) ...
    dead = killable(monkeypatch)

    def die(event: ProgressEvent) -> None:
        if event.stage == "embedding":
            dead.set()
            raise Crash("killed")

    with contextlib.suppress(InvalidNameError, Crash):
        ingest("x__documents", on_progress=die)
    dead.clear()
    # ... then "x" stores a document (its document list is "x__documents") ...
    owner = VectorStore(client, "x")
    ingest_files([_file()], settings=settings, embedder=embedder, store=owner)
    assert [m.source for m in owner.documents()] == ["upload:glacier.txt"]
    # ... and the next run into "x__documents" repairs first: it must not touch x's list.
    with contextlib.suppress(InvalidNameError):
        ingest("x__documents")
    assert [m.source for m in owner.documents()] == ["upload:glacier.txt"]
    hits = search("glaciers valleys", store=owner, embedder=embedder, top_k=1).hits
    assert [h.file_name for h in hits] == ["glacier.txt"]
    # Each of those was refused before anything was written, as are a repair, a delete and a drop.
    for attempt in (
        lambda: ingest("x__documents"),
        lambda: VectorStore(client, "x__documents").repair(force=True),
        lambda: VectorStore(client, "x__documents").delete_document("upload:glacier.txt"),
        lambda: VectorStore(client, "x__documents").drop(),
    ):
        with pytest.raises(InvalidNameError, match="x__documents"):
            attempt()
    assert not client.collection_exists("x__documents__documents")
    assert list_collections(client) == ["x"]
    assert [m.source for m in owner.documents()] == ["upload:glacier.txt"]


def test_dropping_the_default_collections_document_list_is_refused(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    service = SearchService.open(settings)
    service.ingest([_file()])
    assert service.default_collection == "documents"
    service.close()
    location = settings.qdrant_location
    code = main(["collections", "drop", "documents__documents", "--yes", "--qdrant-path", location])
    assert code != 0
    assert "reserved for internal collections" in capsys.readouterr().err
    client = open_client(settings)
    try:
        store = VectorStore(client, "documents")
        assert [m.source for m in store.documents()] == ["upload:glacier.txt"]
        assert list_collections(client) == ["documents"]
    finally:
        client.close()


def test_a_new_collection_needs_a_valid_name(service: SearchService) -> None:
    record = expected_record(service.settings, service.embedder)
    with pytest.raises(InvalidNameError, match="'&'"):
        VectorStore(service.client, "Tom & Jerry").ensure(record)
    with pytest.raises(InvalidNameError, match="white space"):
        VectorStore(service.client, " padded ").ensure(record)
    with pytest.raises(InvalidNameError, match="empty"):
        VectorStore(service.client, "  ")
    with pytest.raises(InvalidNameError):
        service.ingest([_file()], collection="Tom & Jerry")
    assert list_collections(service.client) == []


def test_an_existing_collection_with_a_now_invalid_name_stays_usable(
    service: SearchService, settings: Settings
) -> None:
    """Created before the name rules (Qdrant itself accepts it): listed, written, searched, dropped."""
    legacy = "Tom's notes & more"
    record = expected_record(settings, service.embedder)
    assert record.representations.available() == ["dense", "sparse"]  # the default settings
    service.client.create_collection(
        legacy,
        vectors_config={
            DENSE_VECTOR: models.VectorParams(size=record.dimension, distance=models.Distance.COSINE)
        },
        sparse_vectors_config={SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        metadata={"instructor_search": record.model_dump(mode="json")},
    )
    store = VectorStore(service.client, legacy)
    report = ingest_files([_file()], settings=settings, embedder=service.embedder, store=store)
    assert [f.status for f in report.files] == ["ingested"]
    assert legacy in list_collections(service.client)
    hits = search("glaciers valleys", store=store, embedder=service.embedder, top_k=1).hits
    assert [h.file_name for h in hits] == ["glacier.txt"]
    store.drop()
    assert legacy not in list_collections(service.client)
    assert not service.client.collection_exists(legacy + "__documents")
