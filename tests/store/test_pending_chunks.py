"""Chunks of files that are not completely stored never take the place of stored ones.

A large upload on the same topic as a stored document (or the leftovers of an ingest that was
killed) can hold hundreds of chunks that outrank the stored document's. Every search mode must
still return the stored document: while the ingest runs, after it crashed, through Qdrant's own
query and through the in-process index; and re-opening a crashed embedded store repairs it
without any write. Real embedded Qdrant, real PDFs, the fake (lexical) embedder.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from crashes import Crash, killable
from pdfgen import pdf_bytes
from qdrant_client import QdrantClient, models
from testdata import FIXTURES

from app.cli import main
from app.service import SearchService
from config import Settings, load_settings
from embedder import make_embedder
from ingest.pipeline import ingest_files
from ingest.report import ProgressEvent
from ingest.sources import SourceFile
from retrieval.engine import search
from retrieval.local_index import acquire
from retrieval.modes import available_modes, mode_components
from store.client import open_client, repair_interrupted
from store.core import VectorStore
from store.payload import PENDING_KEY
from store.points import ChunkPoints

ROOT = Path(__file__).resolve().parents[2]
QUERY = "zebra stripes savanna"
#: The stored document: the query's words among many others (it scores well below BIG's pages).
STORED = (
    "Zebra herds cross the open savanna each dry season, following the rains toward fresh grass. "
    "Their black and white stripes confuse lions, biting flies and other predators on the "
    "grassland, and researchers count stripes, hooves and foals along the river every year."
)
#: Pages of the big upload: little but the query's words, so each page outranks STORED.
BIG_PAGES = 400
#: More unfinished chunks than this must be written before the checks (search used to look at
#: no more than 4 rounds of 10 candidates for top_k=5).
OUTRANKING = 120


def big_pages() -> list[str]:
    return [f"Zebra stripes savanna. Zebra stripes on the savanna, page {n}." for n in range(BIG_PAGES)]


def settings_for(tmp_path: Path, generator: Path | None = None) -> Settings:
    """Fake embedder, embedded store; every representation that builds offline.

    ``generator``: a question generator's folder (builds the ``questions`` representation too).
    """
    index: dict[str, object] = {
        "sparse": {"enabled": True},
        "sentences": {"enabled": True},
        "keywords": {"enabled": True},
    }
    if generator is not None:
        index["questions"] = {"generator": str(generator), "count": 2, "max_new_tokens": 8}
    return load_settings(
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake"},
        qdrant={"path": str(tmp_path / "q")},
        index=index,
    )


def tiny_generator(folder: Path) -> Path:
    """A tiny, randomly initialised T5 (the tiny-instructor fixture's tokenizer): real generation, offline."""
    import torch  # heavy: only the tests with questions load it
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    fixture = FIXTURES / "tiny-instructor" / "model"
    torch.manual_seed(0)
    config = T5Config.from_pretrained(fixture, architectures=["T5ForConditionalGeneration"], use_cache=True)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(fixture).save_pretrained(folder)
    return folder


def modes_of(store: VectorStore) -> list[tuple[str, str]]:
    """``(mode, fusion)`` of every mode the collection offers; the fused ones with both fusions."""
    record = store.require_record()
    modes = available_modes(record)
    expected = {
        "dense",
        "sparse",
        "hybrid",
        "sentences",
        "keywords",
        "hybrid+sentences",
        "hybrid+keywords",
        "all",
    }
    if record.representations.questions is not None:
        expected |= {"questions", "hybrid+questions"}
    assert set(modes) == expected
    return [
        (mode, fusion)
        for mode in modes
        for fusion in ("dbsf", "rrf")
        if fusion == "dbsf" or len(mode_components(mode, record)) > 1
    ]


def assert_stored_document_found(service: SearchService, *, local_index: bool, when: str) -> None:
    store = service.store()
    for mode, fusion in modes_of(store):
        result = search(
            QUERY,
            store=store,
            embedder=service.embedder,
            mode=mode,
            fusion=fusion,
            top_k=5,
            local_index=local_index,
        )
        names = [hit.file_name for hit in result.hits]
        assert "savanna.txt" in names, f"{when}: mode {mode} ({fusion}, local_index={local_index}): {names}"
        assert "big.pdf" not in names, f"{when}: mode {mode} returned an unfinished file"


def outranked_by_big(service: SearchService, n: int) -> bool:
    """Whether the ``n`` best chunks of the unfiltered dense ranking all belong to big.pdf."""
    store = service.store()
    vector = service.embedder.embed([QUERY], store.require_record().instruction_set.query)[0].tolist()
    top = service.client.query_points(store.collection, query=vector, limit=n, with_payload=True)
    return len(top.points) == n and all(
        (p.payload or {})["metadata"]["file_name"] == "big.pdf" for p in top.points
    )


@pytest.fixture(params=["offline"])
def stored(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SearchService]:
    """A store holding savanna.txt (committed), opened through the service.

    Parametrised indirectly with ``"questions"``, the collection has questions too.
    """
    generator = tiny_generator(tmp_path / "generator") if request.param == "questions" else None
    service = SearchService.open(settings_for(tmp_path, generator))
    report = service.ingest(
        [SourceFile(source="upload:savanna.txt", file_name="savanna.txt", data=STORED.encode())]
    )
    assert [f.status for f in report.files] == ["ingested"]
    yield service
    service.close()


@pytest.mark.parametrize("stored", ["offline", "questions"], indirect=True)
def test_unfinished_chunks_never_hide_a_stored_document(
    stored: SearchService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = stored
    dead = killable(monkeypatch)
    store = service.store()
    big = SourceFile(source="upload:big.pdf", file_name="big.pdf", data=pdf_bytes(big_pages()))
    checks: list[int] = []

    def during_ingest(event: ProgressEvent) -> None:
        if event.file_name != "big.pdf" or event.stage != "embedding":
            return
        written = store.count_source("upload:big.pdf")
        if written >= (len(checks) + 1) * OUTRANKING // 2:
            # Outranked by the written chunks (the unfiltered ranking shows it), and found anyway.
            assert outranked_by_big(service, OUTRANKING // 2)
            assert_stored_document_found(
                service, local_index=True, when=f"during the ingest ({written} written)"
            )
            checks.append(written)
        if written >= OUTRANKING and len(checks) >= 2:
            dead.set()
            raise Crash(f"killed after {written} of the big file's chunks")

    with pytest.raises(Crash):
        service.ingest([big], on_progress=during_ingest)
    dead.clear()
    assert len(checks) >= 2

    # After the crash: the unfinished chunks are still there, the write mark too.
    assert store.write_interrupted()
    assert store.count_source("upload:big.pdf") >= OUTRANKING
    assert_stored_document_found(service, local_index=False, when="after the crash, Qdrant's query")
    assert acquire(service.client, store.collection, quiet_seconds=0) is not None  # build the index now
    assert_stored_document_found(service, local_index=True, when="after the crash, in-process index")
    # The point count leaves the unfinished chunks out.
    stored_chunks = sum(m.chunks for m in store.documents())
    assert store.count() == stored_chunks
    assert store.count(pending=True) >= stored_chunks + OUTRANKING

    # Re-opening the store repairs it: no ingest or delete needed.
    settings = service.settings
    service.close()
    reopened = SearchService.open(settings)
    try:
        again = reopened.store()
        assert not again.write_interrupted()
        assert again.count_source("upload:big.pdf") == 0
        assert again.count(pending=True) == again.count() == stored_chunks
        assert_stored_document_found(reopened, local_index=True, when="after re-opening")
    finally:
        reopened.close()


def _points_written(storage: Path) -> int:
    """Rows of an embedded collection's storage, read without opening the store (it is locked)."""
    try:
        with sqlite3.connect(f"file:{storage}?mode=ro", uri=True, timeout=0.2) as db:
            return int(db.execute("SELECT count(*) FROM points").fetchone()[0])
    except sqlite3.OperationalError:  # being written just now
        return 0


def test_a_killed_ingest_process_never_hides_a_stored_document(
    tmp_path: Path, stored: SearchService, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = stored.settings
    before = stored.store().count()
    stored.close()
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "big.pdf").write_bytes(pdf_bytes(big_pages()))
    script = Path(sys.executable).parent / "instructor-search"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]
    command += ["ingest", str(folder), "--qdrant-path", settings.qdrant_location, "--no-progress"]
    env = {
        **os.environ,
        "INSTRUCTOR_SEARCH_MODEL__BACKEND": "fake",
        "INSTRUCTOR_SEARCH_DATA_DIR": str(settings.data_dir),
        "INSTRUCTOR_SEARCH_MODEL__BATCH_SIZE": "8",
    }
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    storage = Path(settings.qdrant_location) / "collection" / "documents" / "storage.sqlite"
    deadline = time.monotonic() + 120
    while _points_written(storage) < before + OUTRANKING and process.poll() is None:
        assert time.monotonic() < deadline, "the ingest wrote nothing for two minutes"
        time.sleep(0.02)
    still_running = process.poll() is None
    process.kill()  # SIGKILL: no clean-up of any kind
    _, err = process.communicate()
    assert still_running, f"the ingest finished before it could be killed: {err.decode()[-2000:]}"

    # The dead run's chunks are still there and never win a search. A raw client: open_client
    # would repair the store before we could look at what the kill left.
    client = QdrantClient(path=settings.qdrant_location)
    try:
        store = VectorStore(client, "documents")
        assert store.write_interrupted()
        service = SearchService(settings=settings, embedder=stored.embedder, client=client)
        assert outranked_by_big(service, OUTRANKING // 2)
        assert_stored_document_found(service, local_index=False, when="after kill -9, Qdrant's query")
        assert acquire(client, store.collection, quiet_seconds=0) is not None
        assert_stored_document_found(service, local_index=True, when="after kill -9, in-process index")
        assert store.count(pending=True) >= before + OUTRANKING
        assert store.count() == before
        # documents list counts the stored document's chunks only
        client.close()
        code = main(
            ["documents", "list", "--qdrant-path", settings.qdrant_location, "--backend", "fake", "--json"]
        )
        listing = json.loads(capsys.readouterr().out)
        assert code == 0 and listing["points"] == before
        assert [d["file_name"] for d in listing["documents"]] == ["savanna.txt"]
    finally:
        client.close()

    reopened = SearchService.open(settings)
    try:
        store = reopened.store()
        assert not store.write_interrupted()
        assert store.count(pending=True) == store.count() == before
        assert_stored_document_found(reopened, local_index=True, when="after re-opening")
    finally:
        reopened.close()


def test_a_crash_between_manifest_and_flag_is_committed_on_reopening(
    stored: SearchService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest is written, the process dies before the file's chunks lose the pending flag."""
    dead = killable(monkeypatch)
    clear = ChunkPoints.clear_pending

    def die_first(self: ChunkPoints, ids: list[object]) -> None:
        dead.set()
        raise Crash("killed between the manifest and the flag")

    monkeypatch.setattr(ChunkPoints, "clear_pending", die_first)
    text = "Lions rest in the shade of acacia trees through the hottest hours of the savanna day."
    with pytest.raises(Crash):
        stored.ingest([SourceFile(source="upload:lions.txt", file_name="lions.txt", data=text.encode())])
    dead.clear()
    monkeypatch.setattr(ChunkPoints, "clear_pending", clear)
    store = stored.store()
    manifest = store.document_snapshot().get("upload:lions.txt")
    assert manifest is not None and store.write_interrupted()
    assert not store.has_chunks(manifest)  # written, not committed: the next ingest stores it again
    assert store.count() == sum(m.chunks for m in store.documents()) - manifest.chunks

    settings = stored.settings
    stored.close()
    reopened = SearchService.open(settings)
    try:
        store = reopened.store()
        assert not store.write_interrupted()
        assert store.has_chunks(manifest)
        assert store.count(pending=True) == store.count() == sum(m.chunks for m in store.documents())
        hits = reopened.search("lions acacia shade", top_k=1, mode="dense").hits
        assert [hit.file_name for hit in hits] == ["lions.txt"]
    finally:
        reopened.close()


def test_documents_list_counts_only_stored_chunks_after_a_crash(
    stored: SearchService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = killable(monkeypatch)
    store = stored.store()
    before = store.count()
    assert before == sum(m.chunks for m in store.documents()) > 0

    def crash(event: ProgressEvent) -> None:
        if event.stage == "embedding" and store.count_source("upload:big.pdf") >= 20:
            dead.set()
            raise Crash("killed")

    big = SourceFile(source="upload:big.pdf", file_name="big.pdf", data=pdf_bytes(big_pages()[:80]))
    with pytest.raises(Crash):
        stored.ingest([big], on_progress=crash)
    dead.clear()
    assert store.count_source("upload:big.pdf") >= 20  # orphans are there, not yet repaired
    stored.close()
    location = stored.settings.qdrant_location
    assert main(["documents", "list", "--qdrant-path", location, "--backend", "fake", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [d["file_name"] for d in listing["documents"]] == ["savanna.txt"]
    assert listing["points"] == before == sum(d["chunks"] for d in listing["documents"])
    assert main(["collections", "list", "--qdrant-path", location, "--backend", "fake", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["collections"]
    assert [(row["name"], row["points"]) for row in rows] == [("documents", before)]


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect")
def test_server_queries_filter_the_flag_inside_qdrant_and_index_it(tmp_path: Path) -> None:
    """What a server gets (local=False, the HNSW path): the flag indexed, every query and prefetch filtered."""
    settings = settings_for(tmp_path)
    client = open_client(settings)
    try:
        indexed: list[tuple[str, object]] = []
        create_index = client.create_payload_index

        def spy_index(collection: str, field: str, schema: object = None, **kwargs: object) -> object:
            indexed.append((field, schema))
            return create_index(collection, field, schema, **kwargs)  # type: ignore[arg-type]

        client.create_payload_index = spy_index  # type: ignore[method-assign]
        store = VectorStore(client, "srv", local=False)
        files = [SourceFile(source="upload:savanna.txt", file_name="savanna.txt", data=STORED.encode())]
        ingest_files(files, settings=settings, embedder=make_embedder(settings.model), store=store)
        assert (PENDING_KEY, models.PayloadSchemaType.BOOL) in indexed

        calls: list[dict[str, object]] = []
        query_points = client.query_points

        def spy_query(*args: object, **kwargs: object) -> object:
            calls.append(kwargs)
            return query_points(*args, **kwargs)  # type: ignore[arg-type]

        client.query_points = spy_query  # type: ignore[method-assign]
        for mode in ("dense", "sparse", "hybrid", "all"):
            result = search(
                QUERY,
                store=store,
                embedder=make_embedder(settings.model),
                mode=mode,
                documents=["savanna.txt"],
            )
            assert [hit.file_name for hit in result.hits][:1] == ["savanna.txt"]
        pending = models.FieldCondition(key=PENDING_KEY, match=models.MatchValue(value=True))
        for call in calls:
            flt = call["query_filter"]
            assert isinstance(flt, models.Filter) and flt.must_not == [pending]
            for prefetch in call.get("prefetch") or []:
                assert isinstance(prefetch, models.Prefetch) and prefetch.filter == flt
        # A server is never repaired on opening: another process may be ingesting.
        server = load_settings(qdrant={"url": "http://localhost:6333"})
        assert repair_interrupted(object(), server) == {}  # type: ignore[arg-type]
    finally:
        client.close()
