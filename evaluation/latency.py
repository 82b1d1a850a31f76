"""Query latency (embed + search) at 10k and 50k chunks in the embedded store, per runtime.

Encoding 50k chunks takes over an hour on 2 cores, so the store is filled with *real* chunk
vectors (a few hundred real passages embedded by the model, under the document instruction),
repeated with light Gaussian perturbation and renormalised. The queries are real texts encoded
for real, and every query goes through :func:`retrieval.engine.search`, the function users call.
"""

from __future__ import annotations

import json
import resource
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qdrant_client import models

from config import Settings, override
from evaluation.errors import EvaluationError
from ingest.extract import extract_text
from ingest.sample_corpus import sample_paths
from representations.dense import DENSE_VECTOR
from representations.records import with_sparse_avg_length
from representations.sparse import SPARSE_VECTOR, SparseEncoder
from retrieval.engine import search
from retrieval.local_index import LocalIndex, acquire, invalidate
from store.client import open_client
from store.core import VectorStore
from store.manifest import DocumentManifest
from store.payload import (
    CHUNK_INDEX,
    CONTENT_KEY,
    FILE_NAME,
    FILE_SHA256,
    METADATA_KEY,
    PAGE,
    SOURCE,
    metadata_of,
)
from store.record import CollectionRecord, expected_record

if TYPE_CHECKING:
    from embedder import Embedder

#: Perturbation of the repeated vectors (before renormalisation).
NOISE = 0.02
#: The figures of each runtime and store size (suffixed ``_10k``-style), in the order they are reported.
FIGURES = (
    "query_p50_ms",
    "query_p95_ms",
    "hybrid_p50_ms",
    "hybrid_p95_ms",
    "embed_ms",
    "vector_search_ms",
    "qdrant_local_scan_ms",
    "index_build_s",
    "manifest_check_ms",
)


@dataclass(frozen=True)
class Corpus:
    """Real passages and queries for the speed measurements."""

    name: str
    passages: list[str]
    queries: list[str]


def load_corpus(shared: Path | None, passages: int, queries: int) -> Corpus:
    """NFCorpus passages and test queries when ``../shared`` is there, else the bundled sample corpus."""
    if shared is not None and (shared / "beir" / "nfcorpus" / "corpus.jsonl").is_file():
        folder = shared / "beir" / "nfcorpus"
        texts: list[str] = []
        with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                texts.append(f"{row.get('title', '')} {row.get('text', '')}".strip())
                if len(texts) == passages:
                    break
        qs: list[str] = []
        with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                qs.append(json.loads(line)["text"])
                if len(qs) == queries:
                    break
        return Corpus("nfcorpus", texts, qs)
    return _sample_corpus(passages, queries)


def _sample_corpus(passages: int, queries: int) -> Corpus:
    """Chunks of the bundled public-domain sample PDFs; queries are their first sentences."""
    texts: list[str] = []
    for path in sample_paths():
        extracted = extract_text(path.read_bytes(), file_name=path.name)
        for page in extracted.pages:
            texts += [p.strip() for p in page.text.split("\n\n") if len(p.strip()) > 80]
    texts = texts[:passages]
    qs = [text.split(". ")[0][:200] for text in texts[: max(queries, 1)]]
    return Corpus("sample corpus", texts, qs[:queries])


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def fill_store(
    store: Any,
    base: np.ndarray,
    texts: Sequence[str],
    size: int,
    *,
    seed: int = 0,
    sparse: Sequence[tuple[list[int], list[float]]] | None = None,
) -> None:
    """Write ``size`` points: the base vectors repeated, lightly perturbed and renormalised.

    With ``sparse`` (the BM25 vectors of ``texts``), each point also gets its passage's sparse
    vector, so the hybrid mode can be timed too.
    """
    rng = np.random.default_rng(seed)
    written = 0
    batch = 1024
    while written < size:
        n = min(batch, size - written)
        rows = np.arange(written, written + n) % len(base)
        vectors = base[rows] + rng.normal(0.0, NOISE, size=(n, base.shape[1])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        points = [
            models.PointStruct(
                id=written + i,
                vector=(
                    {
                        DENSE_VECTOR: vectors[i].tolist(),
                        SPARSE_VECTOR: models.SparseVector(
                            indices=sparse[int(rows[i])][0], values=sparse[int(rows[i])][1]
                        ),
                    }
                    if sparse is not None
                    else vectors[i].tolist()
                ),
                payload={
                    CONTENT_KEY: texts[int(rows[i])],
                    METADATA_KEY: {
                        SOURCE: f"bench:{int(rows[i])}",
                        FILE_NAME: f"passage-{int(rows[i])}.txt",
                        FILE_SHA256: "bench",
                        PAGE: None,
                        CHUNK_INDEX: (written + i) // len(base),
                    },
                },
            )
            for i in range(n)
        ]
        store.upsert_chunks(points, pending=False)  # filler: never committed chunk by chunk
        written += n


def _time_ms(fn: Any, *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000


def measure_latency(
    settings: Settings,
    embedders: Mapping[str, Embedder],
    corpus: Corpus,
    sizes: Sequence[int],
    *,
    repeats: int = 5,
) -> dict[str, dict[str, Any]]:
    """p50/p95 of embed+search per runtime and store size; each figure is the median over ``repeats`` passes.

    Each size is filled once (in the embedded local mode, in memory: the same search code as
    the on-disk embedded store, without writing the points to disk) and searched with every
    runtime's query embedder, in the ``dense`` and the ``hybrid`` (dense + BM25, fused with
    :func:`retrieval.engine.search`'s default fusion, DBSF) mode.
    Besides the end-to-end time of :func:`retrieval.engine.search`, the parts are timed alone: the
    query embedding, the dense vector search by the in-process index (:mod:`retrieval.local_index`)
    and by Qdrant local's own scan, the index build after a write, and the manifest check of
    the hits' files.

    Args:
        settings: base settings (the store is a temporary in-memory embedded store).
        embedders: query embedders by runtime; the first also embeds the passages.
        corpus: passages (embedded once) and queries.
        sizes: store sizes in chunks.
        repeats: passes over the queries per size.

    Returns:
        ``runtime -> figures`` keyed ``query_p50_ms_10k``-style.
    """
    settings = override(settings, **{"index.sparse.enabled": True})
    filler = _Filler.embed(settings, next(iter(embedders.values())), corpus)
    results: dict[str, dict[str, Any]] = {
        runtime: {
            "runtime": runtime,
            "corpus": corpus.name,
            "base_passages": len(corpus.passages),
            "queries": len(corpus.queries),
            "repeats": repeats,
        }
        for runtime in embedders
    }
    for size in sizes:
        run_settings = override(settings, qdrant={"path": ":memory:", "url": None, "api_key": None})
        client = open_client(run_settings)
        try:
            store = filler.fill(client, size)
            label = f"{size // 1000}k" if size % 1000 == 0 else str(size)
            # as after a write: the next search rebuilds; the last build stays in use
            builds = []
            for _ in range(3):  # one index alive at a time: the store's peak memory stays as in use
                index = _rebuilt_index(client, store.collection)
                builds.append(index.build_seconds)
            for runtime, embedder in embedders.items():
                passes = _time_passes(
                    store, index, embedder, corpus.queries, filler.query_instruction, repeats
                )
                passes["index_build_s"] = builds
                for name in FIGURES:
                    results[runtime][f"{name}_{label}"] = round(statistics.median(passes[name]), 2)
        finally:
            client.close()
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    for figures in results.values():
        figures["peak_rss_mb"] = peak
    return results


@dataclass(frozen=True)
class _Filler:
    """The real passage vectors (dense and BM25) that fill each store, and the collection's record."""

    record: CollectionRecord
    passages: list[str]
    base: np.ndarray
    sparse: list[tuple[list[int], list[float]]]

    @classmethod
    def embed(cls, settings: Settings, embedder: Embedder, corpus: Corpus) -> _Filler:
        """Embed the corpus's passages once, under the document instruction, with their BM25 vectors."""
        record = expected_record(settings, embedder)
        reps = with_sparse_avg_length(record.representations, corpus.passages)
        record = record.model_copy(update={"representations": reps})
        if reps.sparse is None:  # enabled by measure_latency; a guard for the type checker
            raise EvaluationError("the latency bench needs the sparse representation")
        encoder = SparseEncoder.from_record(reps.sparse)
        sparse = [encoder.document(text) for text in corpus.passages]
        base = embedder.embed(corpus.passages, record.instructions.get("document"))
        return cls(record, corpus.passages, base, sparse)

    @property
    def query_instruction(self) -> str | None:
        """The query instruction of the filled collection."""
        return self.record.instructions.get("query")

    def fill(self, client: Any, size: int) -> VectorStore:
        """A ``bench`` collection of ``size`` points, every passage's file committed."""
        store = VectorStore(client, "bench", local=True)
        store.ensure(self.record)
        fill_store(store, self.base, self.passages, size, sparse=self.sparse)
        for i in range(len(self.passages)):
            store.commit_document(
                DocumentManifest(
                    source=f"bench:{i}",
                    file_name=f"passage-{i}.txt",
                    file_sha256="bench",
                    chunks=0,
                    ingested_at="",
                )
            )
        return store


def _time_passes(
    store: VectorStore,
    index: LocalIndex,
    embedder: Embedder,
    queries: Sequence[str],
    query_instruction: str | None,
    repeats: int,
) -> dict[str, list[float]]:
    """Per figure (``query_p50_ms``, ``hybrid_p95_ms``, ``embed_ms``, ...), its value in each of ``repeats`` passes."""
    for query in queries[:5]:  # warm-up
        search(query, store=store, embedder=embedder, top_k=10, mode="hybrid")
    vectors = [embedder.embed([q], query_instruction)[0] for q in queries]
    passes: dict[str, list[float]] = {name: [] for name in FIGURES if name != "index_build_s"}
    for _ in range(repeats):
        for mode, prefix in (("dense", "query"), ("hybrid", "hybrid")):
            timings = [
                _time_ms(search, query, store=store, embedder=embedder, top_k=10, mode=mode)
                for query in queries
            ]
            passes[f"{prefix}_p50_ms"].append(_percentile(timings, 50))
            passes[f"{prefix}_p95_ms"].append(_percentile(timings, 95))
        passes["embed_ms"].append(
            statistics.median(_time_ms(embedder.embed, [query], query_instruction) for query in queries)
        )
        passes["vector_search_ms"].append(
            statistics.median(_time_ms(index.search_dense, vector, "", 20) for vector in vectors)
        )
        scan, check = _time_qdrant_scan(store, vectors[:10])
        passes["qdrant_local_scan_ms"].append(scan)
        passes["manifest_check_ms"].append(check)
    return passes


def _time_qdrant_scan(store: VectorStore, vectors: Sequence[np.ndarray]) -> tuple[float, float]:
    """Median ms of Qdrant local's own scan (for comparison) and of the manifest check of its hits."""
    searched, checked = [], []
    for vector in vectors:
        started = time.perf_counter()
        response = store.client.query_points(
            store.collection, query=vector.tolist(), limit=20, with_payload=True
        )
        searched.append((time.perf_counter() - started) * 1000)
        sources = {metadata_of(p.payload).get(SOURCE) for p in response.points}
        checked.append(_time_ms(_committed, store, {s for s in sources if isinstance(s, str)}))
    return statistics.median(searched), statistics.median(checked)


def _rebuilt_index(client: Any, collection: str) -> LocalIndex:
    """The collection's in-process index, rebuilt as the first search after a write rebuilds it."""
    invalidate(client, collection)
    index = acquire(client, collection, quiet_seconds=0, lazy=False)  # every vector: the whole build
    if index is None:  # quiet_seconds=0 never defers the build
        raise EvaluationError(f"the in-process index of {collection!r} was not built")
    return index


def _committed(store: VectorStore, sources: set[str]) -> dict[str, str]:
    """The manifest check :func:`retrieval.engine.search` makes for a page of hits."""
    return store.manifests.committed_hashes(sources)
