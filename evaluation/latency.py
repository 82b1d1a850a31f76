"""Query latency (embed + search) at 10k and 50k chunks in the embedded store, per runtime.

Encoding 50k chunks takes over an hour on 2 cores, so the store is filled with *real* chunk
vectors (a few hundred real passages embedded by the model, under the document instruction),
repeated with light Gaussian perturbation and renormalised. The queries are real texts encoded
for real, and every query goes through :func:`retrieval.engine.search`, the function users call.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from config import Settings
from evaluation.errors import EvaluationError

if TYPE_CHECKING:
    from embedder import Embedder
    from retrieval.local_index import LocalIndex

#: Perturbation of the repeated vectors (before renormalisation).
NOISE = 0.02


@dataclass(frozen=True)
class Corpus:
    """Real passages and queries for the speed measurements."""

    name: str
    passages: list[str]
    queries: list[str]


def load_corpus(shared: Path | None, passages: int, queries: int) -> Corpus:
    """NFCorpus passages and test queries when ``../shared`` is there, else the bundled sample corpus."""
    import json

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
    from ingest.sample_corpus import sample_paths
    from ingest.extract import extract_text

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
    from qdrant_client import models

    from representations.core import SPARSE_VECTOR
    from store.core import DENSE_VECTOR

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
                    "page_content": texts[int(rows[i])],
                    "metadata": {
                        "source": f"bench:{int(rows[i])}",
                        "file_name": f"passage-{int(rows[i])}.txt",
                        "file_sha256": "bench",
                        "page": None,
                        "chunk_index": (written + i) // len(base),
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
    from representations.core import SparseEncoder, with_sparse_avg_length
    from retrieval.engine import search
    from store.core import DocumentManifest, VectorStore, expected_record, open_client

    first = next(iter(embedders.values()))
    settings = settings.model_copy(
        update={
            "index": settings.index.model_copy(
                update={"sparse": settings.index.sparse.model_copy(update={"enabled": True})}
            )
        }
    )
    record = expected_record(settings, first)
    reps = with_sparse_avg_length(record.representations, corpus.passages)
    record = record.model_copy(update={"representations": reps})
    if reps.sparse is None:  # enabled above; a guard for the type checker
        raise EvaluationError("the latency bench needs the sparse representation")
    encoder = SparseEncoder.from_record(reps.sparse)
    sparse = [encoder.document(text) for text in corpus.passages]
    base = first.embed(corpus.passages, record.instructions.get("document"))
    query_instruction = record.instructions.get("query")
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
        run_settings = settings.model_copy(
            update={"qdrant": settings.qdrant.model_copy(update={"path": ":memory:", "url": None})}
        )
        client = open_client(run_settings)
        try:
            store = VectorStore(client, "bench", local=True)
            store.ensure(record)
            fill_store(store, base, corpus.passages, size, sparse=sparse)
            for i in range(len(corpus.passages)):
                store.commit_document(
                    DocumentManifest(
                        source=f"bench:{i}",
                        file_name=f"passage-{i}.txt",
                        file_sha256="bench",
                        chunks=0,
                        ingested_at="",
                    )
                )
            label = f"{size // 1000}k" if size % 1000 == 0 else str(size)
            # as after a write: the next search rebuilds; the last build stays in use
            builds = []
            for _ in range(3):  # one index alive at a time: the store's peak memory stays as in use
                index = _rebuilt_index(client, store.collection)
                builds.append(index.build_seconds)
            for runtime, embedder in embedders.items():
                for query in corpus.queries[:5]:  # warm-up
                    search(query, store=store, embedder=embedder, top_k=10, mode="hybrid")
                vectors = [embedder.embed([q], query_instruction)[0] for q in corpus.queries]
                p50s, p95s, hybrid50, hybrid95, embed_ms, search_ms, scan_ms, manifest_ms = (
                    [] for _ in range(8)
                )
                for _ in range(repeats):
                    timings = [
                        _time_ms(search, query, store=store, embedder=embedder, top_k=10, mode="dense")
                        for query in corpus.queries
                    ]
                    p50s.append(_percentile(timings, 50))
                    p95s.append(_percentile(timings, 95))
                    timings = [
                        _time_ms(search, query, store=store, embedder=embedder, top_k=10, mode="hybrid")
                        for query in corpus.queries
                    ]
                    hybrid50.append(_percentile(timings, 50))
                    hybrid95.append(_percentile(timings, 95))
                    embed_ms.append(
                        statistics.median(
                            _time_ms(embedder.embed, [query], query_instruction) for query in corpus.queries
                        )
                    )
                    search_ms.append(
                        statistics.median(_time_ms(index.search_dense, vector, "", 20) for vector in vectors)
                    )
                    searched, checked = [], []
                    for vector in vectors[:10]:  # Qdrant local's own scan, for comparison
                        started = time.perf_counter()
                        response = client.query_points(
                            store.collection, query=vector.tolist(), limit=20, with_payload=True
                        )
                        searched.append((time.perf_counter() - started) * 1000)
                        sources = {
                            (p.payload or {}).get("metadata", {}).get("source") for p in response.points
                        }
                        checked.append(
                            _time_ms(_committed, store, {s for s in sources if isinstance(s, str)})
                        )
                    scan_ms.append(statistics.median(searched))
                    manifest_ms.append(statistics.median(checked))
                figures = results[runtime]
                figures[f"query_p50_ms_{label}"] = round(statistics.median(p50s), 2)
                figures[f"query_p95_ms_{label}"] = round(statistics.median(p95s), 2)
                figures[f"hybrid_p50_ms_{label}"] = round(statistics.median(hybrid50), 2)
                figures[f"hybrid_p95_ms_{label}"] = round(statistics.median(hybrid95), 2)
                figures[f"embed_ms_{label}"] = round(statistics.median(embed_ms), 2)
                figures[f"vector_search_ms_{label}"] = round(statistics.median(search_ms), 2)
                figures[f"qdrant_local_scan_ms_{label}"] = round(statistics.median(scan_ms), 2)
                figures[f"index_build_s_{label}"] = round(statistics.median(builds), 2)
                figures[f"manifest_check_ms_{label}"] = round(statistics.median(manifest_ms), 2)
        finally:
            client.close()
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    for figures in results.values():
        figures["peak_rss_mb"] = peak
    return results


def _rebuilt_index(client: Any, collection: str) -> LocalIndex:
    """The collection's in-process index, rebuilt as the first search after a write rebuilds it."""
    from retrieval.local_index import acquire, invalidate

    invalidate(client, collection)
    index = acquire(client, collection, quiet_seconds=0)
    if index is None:  # quiet_seconds=0 never defers the build
        raise EvaluationError(f"the in-process index of {collection!r} was not built")
    return index


def _committed(store: Any, sources: set[str]) -> dict[str, str]:
    """The manifest check :func:`retrieval.engine.search` makes for a page of hits."""
    from retrieval.engine import _committed_hashes

    return _committed_hashes(store, sources)
