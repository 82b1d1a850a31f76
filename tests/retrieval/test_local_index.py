"""The in-process index of the embedded store returns what Qdrant local returns, in every mode.

Each search runs twice through :func:`retrieval.engine.search`: once scored by
:mod:`retrieval.local_index`, once by Qdrant's own ``query_points``, on the same collection (fake
embedder; real Qdrant, real BM25 vectors, sentence multivectors and keyword vectors).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from crashes import Crash, killable

from config import Settings, load_settings
from embedder import make_embedder
from ingest.pipeline import ingest_files
from ingest.report import ProgressEvent
from ingest.sources import SourceFile
from retrieval import local_index
from retrieval.engine import search
from retrieval.local_index import LocalIndex, acquire
from store.client import open_client
from store.core import VectorStore

WORDS = [
    "cat",
    "dog",
    "volcano",
    "lava",
    "ash",
    "statin",
    "cholesterol",
    "aspirin",
    "fever",
    "blood",
    "heart",
    "river",
    "mountain",
    "glacier",
    "protein",
    "enzyme",
    "vitamin",
    "diet",
    "sleep",
    "memory",
    "neuron",
    "cancer",
    "tumour",
    "gene",
    "cell",
    "virus",
    "vaccine",
    "bone",
    "muscle",
    "kidney",
    "liver",
    "insulin",
    "sugar",
    "salt",
    "coffee",
    "tea",
    "exercise",
    "pressure",
    "oxygen",
    "lung",
    "skin",
]


def _corpus(n: int, seed: int = 0) -> dict[str, str]:
    """``n`` documents of two sentences; every sentence and every document has its own length.

    The fake embedder hashes words, so two texts of equal length and overlap would tie exactly,
    and the order of exact ties is arbitrary in both implementations. Distinct lengths keep the
    comparison about scoring, not tie-breaking.
    """
    rng = random.Random(seed)
    docs = {}
    for i in range(n):
        first = " ".join(rng.choice(WORDS) for _ in range(4 + i)).capitalize() + "."
        second = " ".join(rng.choice(WORDS) for _ in range(n + 10 + 2 * i)).capitalize() + "."
        docs[f"doc{i:03d}.txt"] = f"{first} {second}"
    return docs


QUERIES = [
    "cat volcano",
    "blood pressure and heart",
    "vitamin diet sleep",
    "gene",
    "zebra",
    "lung oxygen skin",
]
#: Fusion ranks by position, so exact ties inside one ranking (all the points a short query
#: does not touch score 0) would make the fused order depend on tie-breaking. These queries
#: touch every document.
LONG_QUERIES = [
    "cat dog volcano lava ash statin cholesterol aspirin fever blood heart river",
    "protein enzyme vitamin diet sleep memory neuron cancer tumour gene cell virus vaccine",
    "bone muscle kidney liver insulin sugar salt coffee tea exercise pressure oxygen lung skin",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, VectorStore]:
    tmp = tmp_path_factory.mktemp("local-index")
    settings = load_settings(
        data_dir=str(tmp / "data"),
        model={"backend": "fake"},
        index={"sparse": {"enabled": True}, "sentences": {"enabled": True}, "keywords": {"enabled": True}},
    )
    store = VectorStore(open_client(settings), "idx")
    files = [
        SourceFile(source=f"t:{name}", file_name=name, data=text.encode())
        for name, text in _corpus(40).items()
    ]
    report = ingest_files(files, settings=settings, embedder=make_embedder(settings.model), store=store)
    assert report.counts()["ingested"] == 40
    return settings, store


def _both(settings: Settings, store: VectorStore, query: str, **options: object) -> tuple[list, list]:
    embedder = make_embedder(settings.model)
    local_index.invalidate(store.client, store.collection)
    assert acquire(store.client, store.collection, quiet_seconds=0) is not None
    fast = search(query, store=store, embedder=embedder, local_index=True, **options)  # type: ignore[arg-type]
    slow = search(query, store=store, embedder=embedder, local_index=False, **options)  # type: ignore[arg-type]
    return (
        [(hit.id, hit.score) for hit in fast.hits],
        [(hit.id, hit.score) for hit in slow.hits],
    )


def _same(fast: list, slow: list) -> None:
    """Same scores in the same order; ids equal up to the order of exactly tied scores."""
    assert len(fast) == len(slow)
    np.testing.assert_allclose([s for _, s in fast], [s for _, s in slow], rtol=1e-5, atol=1e-6)

    def groups(ranked: list) -> list[set[str]]:
        out: list[set[str]] = []
        last = None
        for pid, score in ranked:
            if last is None or abs(score - last) > 1e-6:
                out.append(set())
            out[-1].add(pid)
            last = score
        return out

    fast_groups, slow_groups = groups(fast), groups(slow)
    assert fast_groups[:-1] == slow_groups[:-1]  # the last tie group may be cut at different members


@pytest.mark.parametrize("mode", ["dense", "sparse", "sentences", "keywords"])
@pytest.mark.parametrize("query", QUERIES + LONG_QUERIES)
def test_every_representation_matches_qdrant(
    built: tuple[Settings, VectorStore], mode: str, query: str
) -> None:
    settings, store = built
    fast, slow = _both(settings, store, query, mode=mode, top_k=15)
    _same(fast, slow)
    if mode != "sparse" or query != "zebra":
        assert fast  # the comparison is not vacuous


@pytest.mark.parametrize("mode", ["hybrid", "hybrid+sentences", "hybrid+keywords", "all"])
@pytest.mark.parametrize("query", LONG_QUERIES)
def test_every_fused_mode_matches_qdrant(built: tuple[Settings, VectorStore], mode: str, query: str) -> None:
    settings, store = built
    fast, slow = _both(settings, store, query, mode=mode, top_k=15)
    _same(fast, slow)
    assert len(fast) == 15


@pytest.mark.parametrize(
    "options",
    [
        {"fusion": "dbsf"},
        {"fusion": "rrf", "rrf_k": 60},
        {"fusion": "rrf", "weights": {"sparse": 0.5}},
        {"fusion": "rrf", "rrf_k": 10, "weights": {"dense": 2.0, "sparse": 0.7}},
        {"candidates": 20},
    ],
)
def test_fusion_options_match_qdrant(built: tuple[Settings, VectorStore], options: dict[str, object]) -> None:
    settings, store = built
    for query in LONG_QUERIES:
        fast, slow = _both(settings, store, query, mode="hybrid", top_k=12, **options)
        _same(fast, slow)


def test_score_threshold_and_paging_match_qdrant(built: tuple[Settings, VectorStore]) -> None:
    settings, store = built
    fast, slow = _both(settings, store, "blood pressure", mode="dense", top_k=40, score_threshold=0.1)
    _same(fast, slow)
    assert all(score > 0.1 for _, score in fast)


def test_index_follows_writes_and_deletes(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=str(tmp_path / "data"), model={"backend": "fake"}, index={"sparse": {"enabled": True}}
    )
    store = VectorStore(open_client(settings), "w")
    embedder = make_embedder(settings.model)
    first = [SourceFile(source="t:a", file_name="a.txt", data=b"Glaciers carve mountain valleys slowly.")]
    ingest_files(first, settings=settings, embedder=embedder, store=store)
    index = acquire(store.client, store.collection, quiet_seconds=0)
    assert index is not None and len(index) == 1
    assert acquire(store.client, store.collection, quiet_seconds=0) is index  # cached until a write

    second = [SourceFile(source="t:b", file_name="b.txt", data=b"Zebras graze on the savanna grass.")]
    ingest_files(second, settings=settings, embedder=embedder, store=store)
    # Right after a write the caller is told to ask Qdrant, so an ingest does not cause rebuilds.
    assert acquire(store.client, store.collection) is None
    result = search("zebra savanna", store=store, embedder=embedder, mode="sparse")
    assert [hit.file_name for hit in result.hits] == ["b.txt"]
    rebuilt = acquire(store.client, store.collection, quiet_seconds=0)
    assert rebuilt is not None and len(rebuilt) == 2
    result = search("zebra savanna", store=store, embedder=embedder, mode="sparse")
    assert [hit.file_name for hit in result.hits] == ["b.txt"]

    store.delete_document("t:b")
    after = acquire(store.client, store.collection, quiet_seconds=0)
    assert after is not None and len(after) == 1
    assert search("zebra savanna", store=store, embedder=embedder, mode="sparse").hits == []


def test_filtered_searches_are_answered_by_qdrant(built: tuple[Settings, VectorStore]) -> None:
    settings, store = built
    embedder = make_embedder(settings.model)
    result = search(
        "gene", store=store, embedder=embedder, mode="hybrid", documents=["doc001.txt", "doc002.txt"]
    )
    assert {hit.file_name for hit in result.hits} <= {"doc001.txt", "doc002.txt"}


def test_build_reads_every_vector_kind(built: tuple[Settings, VectorStore]) -> None:
    _, store = built
    index = LocalIndex.build(store.client, store.collection)
    assert len(index) == store.count()
    assert index.supports("", "dense") and index.supports("keywords", "dense")
    assert index.supports("bm25", "sparse") and index.supports("sentences", "multi")
    assert "keywords_mean" not in index.dense  # stored for re-weighting, never searched
    unit = np.linalg.norm(index.dense[""], axis=1)
    np.testing.assert_allclose(unit, 1.0, rtol=1e-5)


def test_unfiltered_searches_do_not_ask_qdrant_to_score(
    built: tuple[Settings, VectorStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, store = built
    embedder = make_embedder(settings.model)
    acquire(store.client, store.collection, quiet_seconds=0)
    calls: list[str] = []
    original = store.client.query_points

    def counting(*args: object, **kwargs: object) -> object:
        calls.append("query_points")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store.client, "query_points", counting)
    for mode in ("dense", "sparse", "hybrid", "hybrid+sentences"):
        assert search(LONG_QUERIES[0], store=store, embedder=embedder, mode=mode).hits
    assert calls == []
    search(LONG_QUERIES[0], store=store, embedder=embedder, mode="hybrid", local_index=False)
    assert calls == ["query_points"]


def test_sparse_without_the_idf_modifier_is_a_plain_dot_product() -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(location=":memory:")
    client.create_collection(
        "plain", vectors_config={}, sparse_vectors_config={"s": models.SparseVectorParams()}
    )
    rng = np.random.default_rng(3)
    points = []
    for i in range(50):
        indices = sorted(rng.choice(40, size=int(rng.integers(1, 8)), replace=False).tolist())
        values = rng.uniform(0.1, 2.0, size=len(indices)).round(3).tolist()
        points.append(
            models.PointStruct(id=i, vector={"s": models.SparseVector(indices=indices, values=values)})
        )
    client.upsert("plain", points=points)
    index = LocalIndex.build(client, "plain")
    query = models.SparseVector(indices=[3, 7, 11], values=[1.0, 0.5, 2.0])
    ours = index.search_sparse(query.indices, query.values, "s", 10)
    theirs = client.query_points("plain", query=query, using="s", limit=10).points
    assert [pid for pid, _ in ours] == [p.id for p in theirs]
    np.testing.assert_allclose([score for _, score in ours], [p.score for p in theirs], rtol=1e-6)


def test_pending_chunks_are_masked_and_scores_still_match_qdrant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of an unfinished file: in the index (BM25 statistics count them, as Qdrant's do), never ranked."""
    settings = load_settings(
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake"},
        index={"sparse": {"enabled": True}, "sentences": {"enabled": True}, "keywords": {"enabled": True}},
    )
    store = VectorStore(open_client(settings), "pending")
    embedder = make_embedder(settings.model)
    files = [
        SourceFile(source=f"t:{n}", file_name=n, data=t.encode()) for n, t in _corpus(12, seed=1).items()
    ]
    ingest_files(files, settings=settings, embedder=embedder, store=store)
    rng = random.Random(2)
    pages = [" ".join(rng.choice(WORDS) for _ in range(30 + i % 17)) + "." for i in range(400)]
    big = SourceFile(source="t:big", file_name="big.txt", data="\n\n".join(pages).encode())

    dead = killable(monkeypatch)

    def crash(event: ProgressEvent) -> None:
        if event.stage == "embedding" and store.count_source("t:big") >= 30:
            dead.set()
            raise Crash("killed")

    with pytest.raises(Crash):
        ingest_files([big], settings=settings, embedder=embedder, store=store, on_progress=crash)
    dead.clear()
    committed = store.count()
    assert store.count(pending=True) >= committed + 30
    index = LocalIndex.build(store.client, store.collection)
    assert len(index) == store.count(pending=True)
    assert index.pending is not None and int(index.pending.sum()) == store.count(pending=True) - committed
    for mode in ("dense", "sparse", "sentences", "keywords"):
        for query in LONG_QUERIES:
            fast, slow = _both(settings, store, query, mode=mode, top_k=15)
            _same(fast, slow)
            assert len(fast) == 12  # every committed chunk, and nothing else
    for mode in ("hybrid", "hybrid+sentences", "hybrid+keywords", "all"):
        for query in LONG_QUERIES:
            fast, slow = _both(settings, store, query, mode=mode, top_k=15)
            _same(fast, slow)
            assert len(fast) == 12
    ranked = index.search_dense(embedder.embed([LONG_QUERIES[0]], None)[0], "", 1000)
    assert len(ranked) == committed


def test_a_dense_search_reads_the_dense_vector_alone(built: tuple[Settings, VectorStore]) -> None:
    settings, store = built
    embedder = make_embedder(settings.model)
    local_index.invalidate(store.client, store.collection)
    index = acquire(store.client, store.collection, quiet_seconds=0)
    assert index is not None and len(index) == store.count()
    assert not index.dense and not index.sparse and not index.multi  # ids only, so far
    assert search(LONG_QUERIES[1], store=store, embedder=embedder, mode="dense").hits
    assert list(index.dense) == [""] and not index.sparse and not index.multi
    assert search(LONG_QUERIES[1], store=store, embedder=embedder, mode="sparse").hits
    assert list(index.sparse) == ["bm25"] and not index.multi


@pytest.mark.parametrize("mode", ["dense", "sparse", "sentences", "hybrid"])
def test_reading_in_small_pages_gives_the_same_index(
    built: tuple[Settings, VectorStore], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Ids over several scroll pages and vectors over several batches, with their ends not aligned."""
    from retrieval import local_reading

    settings, store = built
    whole = LocalIndex.build(store.client, store.collection)
    monkeypatch.setattr(local_reading, "LOCAL_ID_PAGE", 7)
    monkeypatch.setattr(local_reading, "READ_BATCH", 5)
    paged = LocalIndex.build(store.client, store.collection)
    assert paged.ids == whole.ids
    np.testing.assert_array_equal(paged.dense[""], whole.dense[""])
    assert paged.sparse["bm25"].columns.keys() == whole.sparse["bm25"].columns.keys()
    assert (paged.sparse["bm25"].matrix != whole.sparse["bm25"].matrix).nnz == 0
    np.testing.assert_array_equal(paged.multi["sentences"].starts, whole.multi["sentences"].starts)
    for query in LONG_QUERIES:
        fast, slow = _both(settings, store, query, mode=mode, top_k=15)
        _same(fast, slow)


def test_the_index_does_not_keep_its_client_alive() -> None:
    """The registry holds each client's index; the index must not hold the client (a closed store's memory)."""
    import gc
    import weakref

    from qdrant_client import QdrantClient, models

    client = QdrantClient(location=":memory:")
    client.create_collection("c", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
    client.upsert("c", points=[models.PointStruct(id=1, vector=[1.0, 0.0])])
    index = acquire(client, "c", quiet_seconds=0)
    assert index is not None and index.search_dense([1.0, 0.0], None, 1)[0][0] == 1
    gone = weakref.ref(client)
    client.close()
    del client
    gc.collect()
    assert gone() is None
    assert not index.supports("", "sparse")  # nothing left to read from, and no error


def _by_id(index: LocalIndex) -> dict[str, object]:
    """What an index holds, keyed by point id (the two readers order rows differently)."""
    row = {pid: i for i, pid in enumerate(index.ids)}
    sparse = index.sparse["bm25"]
    terms = {col: term for term, col in sparse.columns.items()}
    csr = sparse.matrix.tocsr()
    multi = index.multi["sentences"]
    ends = [*multi.starts[1:].tolist(), len(multi.vectors)]
    groups = {
        int(owner): (int(start), end)
        for owner, start, end in zip(multi.rows, multi.starts, ends, strict=True)
    }
    out: dict[str, object] = {}
    for pid, i in row.items():
        if not index.present[""][i]:
            continue
        line = csr.getrow(i)
        start, end = groups[i]
        out[pid] = (
            index.dense[""][i],
            sorted((terms[int(c)], round(float(v), 6)) for c, v in zip(line.indices, line.data, strict=True)),
            multi.vectors[start:end],
        )
    return out


def _assert_same_index(held: LocalIndex, api: LocalIndex) -> None:
    a, b = _by_id(held), _by_id(api)
    assert a.keys() == b.keys()
    for pid in a:
        dense_a, sparse_a, multi_a = a[pid]  # type: ignore[misc]
        dense_b, sparse_b, multi_b = b[pid]  # type: ignore[misc]
        np.testing.assert_allclose(dense_a, dense_b, rtol=1e-6, atol=1e-7)
        assert sparse_a == sparse_b
        np.testing.assert_allclose(multi_a, multi_b, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(
        np.sort(held.sparse["bm25"].df), np.sort(api.sparse["bm25"].df)
    )  # the same document frequencies, so the same IDF
    assert held.sparse["bm25"].documents == api.sparse["bm25"].documents


def test_held_arrays_give_the_index_the_api_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """qdrant-client's in-memory arrays, read in place, after deletes and overwrites and after a reopen."""
    from retrieval import local_reading

    settings = load_settings(
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake"},
        index={"sparse": {"enabled": True}, "sentences": {"enabled": True}},
    )
    embedder = make_embedder(settings.model)
    corpus = _corpus(12, seed=3)
    files = [SourceFile(source=f"t:{n}", file_name=n, data=t.encode()) for n, t in corpus.items()]
    store = VectorStore(open_client(settings), "held")
    ingest_files(files, settings=settings, embedder=embedder, store=store)
    store.delete_document(files[0].source)  # deleted rows stay in qdrant-client's arrays
    changed = SourceFile(source=files[1].source, file_name=files[1].file_name, data=b"Lava and ash. Volcano.")
    ingest_files([changed], settings=settings, embedder=embedder, store=store)  # re-ingest: overwrite

    def both(client: object) -> tuple[LocalIndex, LocalIndex]:
        assert local_reading.HeldArrays.of(client, "held") is not None  # type: ignore[arg-type]
        held = LocalIndex.build(client, "held")  # type: ignore[arg-type]
        with monkeypatch.context() as patch:
            patch.setattr(local_reading.HeldArrays, "of", classmethod(lambda cls, c, n: None))
            api = LocalIndex.build(client, "held")  # type: ignore[arg-type]
        return held, api

    held, api = both(store.client)
    assert held._held is not None and api._held is None
    assert len(held) == store.count() == len(api)
    _assert_same_index(held, api)
    store.client.close()

    reopened = open_client(settings)  # qdrant-client's load path (float64, not normalised)
    _assert_same_index(*both(reopened))
    reopened.close()


def test_held_arrays_are_not_read_from_what_is_not_an_embedded_client() -> None:
    from retrieval.local_reading import HeldArrays

    assert HeldArrays.of(object(), "c") is None  # type: ignore[arg-type]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_split_scan_scores_every_row_as_one_scan(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    from retrieval.local_index import scan

    monkeypatch.setattr(local_index, "PARALLEL_ROWS", 10)
    monkeypatch.setattr(local_index, "SCAN_THREADS", threads)
    monkeypatch.setattr(local_index, "_SCAN_POOL", None)  # a pool of this many threads
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((101, 16)).astype(np.float32)  # blocks of unequal size
    query = rng.standard_normal(16).astype(np.float32)
    np.testing.assert_allclose(scan(matrix, query), matrix @ query, rtol=1e-5, atol=1e-5)
    assert scan(matrix[:5], query).shape == (5,)  # below the threshold: one scan
