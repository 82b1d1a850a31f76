"""Exact in-process scoring for the embedded (and in-memory) Qdrant store.

Qdrant's local mode is a reference implementation: every query converts the query to float64,
re-normalises every stored vector for cosine collections, scores sparse vectors with a Python
loop over all points, and sorts all scores. At 50k chunks that is about 50 ms for a dense query
and over a second for a sparse (BM25) one, while the same arithmetic in numpy/scipy takes a few
milliseconds.

:class:`LocalIndex` holds the collection's vectors in numpy and scipy arrays (each read once, on
first use, through the public ``scroll`` and ``retrieve`` API in time linear in the collection's
size: :mod:`retrieval.local_reading`) and scores exactly what Qdrant local scores:

- dense and named dense vectors: the dot product of the unit-normalised query with the stored
  (unit-normalised, cosine collections) vectors;
- the sparse ``bm25`` vector with Qdrant's IDF modifier: ``sum(q_t * idf_t * w_dt)`` with
  ``idf = ln((N - df + 0.5) / (df + 0.5) + 1)``, over the points sharing a term with the query;
- the ``sentences`` multivector with MaxSim: the best sentence's cosine for a one-vector query.

Points flagged pending (chunks of a file not committed yet, :data:`store.payload.PENDING_KEY`)
are read too, so that the BM25 statistics match Qdrant's (its IDF counts every point), but no
ranking ever returns one: they are masked as :func:`store.payload.committed_filter` leaves them
out of Qdrant's own queries.

:class:`retrieval.local.LocalRetriever` ranks with it behind the same interface as Qdrant and fuses
several rankings with Qdrant's own client-side functions (:mod:`qdrant_client.hybrid.fusion`),
so results match ``query_points`` with prefetches. The tests compare both on the same collections.

The index belongs to one client and collection (:func:`acquire`); every write made through
:class:`store.core.VectorStore` moves the collection's write generation on (:mod:`store.writes`),
and the next search rebuilds the index. A
search arriving while writes are still coming in (an ingest in progress) is answered by Qdrant
itself instead, so a long ingest never makes searches rebuild the index over and over.
A server (``url``) has its own HNSW index and never uses this module.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.local_reading import (
    HeldArrays,
    Layout,
    MultiIndex,
    SparseIndex,
    read_dense,
    read_ids,
    read_multi,
    read_sparse,
)
from store.manifest import pending_chunk_ids
from store.writes import note_write, write_state

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

logger = logging.getLogger(__name__)

#: After a write, searches within this many seconds are answered by Qdrant (no rebuild).
QUIET_SECONDS = 2.0
#: Threads a large dense scan is split over (bandwidth-bound: more than a few do not help).
SCAN_THREADS = min(4, os.cpu_count() or 1)
#: Rows from which a dense scan is split (below, one thread is as fast).
PARALLEL_ROWS = 32_768
_SCAN_POOL: ThreadPoolExecutor | None = None
_SCAN_POOL_LOCK = threading.Lock()


@dataclass
class LocalIndex:
    """A collection's vectors in numpy/scipy, scored exactly as Qdrant local scores them.

    Each vector is read on first use (:meth:`build` with ``vectors`` reads some at once), from
    the ids read when the index was built: a dense search never reads the sparse vectors.

    Attributes:
        ids: point id of each row.
        dense: the dense vectors read so far by vector name (``""``: the unnamed default
            vector); rows of points without that vector are masked out by ``present``.
        present: per dense vector name, which rows have it.
        sparse: the sparse vectors read so far, by name.
        multi: the multivectors read so far, by name.
        pending: which rows are pending chunks (never returned); ``None``: none is.
        build_seconds: how long the build took (ids, pending flags and the vectors it read).
        layout: the vectors the collection has (``None``: only those already read).
    """

    ids: list[Any]
    dense: dict[str, np.ndarray] = field(default_factory=dict)
    present: dict[str, np.ndarray] = field(default_factory=dict)
    sparse: dict[str, SparseIndex] = field(default_factory=dict)
    multi: dict[str, MultiIndex] = field(default_factory=dict)
    pending: np.ndarray | None = None
    build_seconds: float = 0.0
    layout: Layout | None = None
    # A weak reference: the per-client registry below holds the index, and a strong one would
    # keep every client it was built for (and the whole collection qdrant-client holds) alive.
    _source: tuple[weakref.ref[Any], str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _missing: set[str] = field(default_factory=set, repr=False)
    # The rows of qdrant-client's held arrays the ids came from, and (weakly) their owner:
    # vectors read later come from the same rows (:class:`retrieval.local_reading.HeldArrays`).
    _held: tuple[weakref.ref[Any], np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(
        cls, client: QdrantClient, collection: str, *, vectors: Iterable[str] | None = None
    ) -> LocalIndex:
        """Read the ids and pending flags of ``collection``, and the vectors named (public API).

        Reading is linear in the collection's size (:mod:`retrieval.local_reading`); the
        pending flags are looked for only while a write mark is set
        (:func:`store.manifest.pending_chunk_ids`).

        Args:
            client: the (local) client.
            collection: the collection.
            vectors: the vector names to read now (``None``: every vector searches score);
                the others are read when a search first needs them.

        Returns:
            The index.
        """
        started = time.perf_counter()
        layout = Layout.of(client, collection)
        held = HeldArrays.of(client, collection)
        ids = held.ids() if held is not None else read_ids(client, collection)
        flagged = pending_chunk_ids(client, collection, local=True)  # after the ids: see its docstring
        pending = (
            np.fromiter((pid in flagged for pid in ids), dtype=bool, count=len(ids)) if flagged else None
        )
        index = cls(ids=ids, pending=pending, layout=layout, _source=(weakref.ref(client), collection))
        if held is not None:
            index._held = (weakref.ref(held.source), held.rows)
        names = [*layout.dense, *layout.sparse, *layout.multi] if vectors is None else list(vectors)
        for name in names:
            index.read(name)
        index.build_seconds = time.perf_counter() - started
        logger.info(
            "in-process index of %s: %d points (%d pending) in %.2f s",
            collection,
            len(ids),
            len(flagged),
            index.build_seconds,
        )
        return index

    def read(self, name: str) -> None:
        """Read vector ``name`` of every row now.

        Nothing is read if it is read already, if the collection has no such vector scored here,
        or if the client the index was built from is gone.
        """
        layout, source = self.layout, self._source
        if layout is None or source is None:
            return
        with self._lock:
            if name in self.dense or name in self.sparse or name in self.multi or name in self._missing:
                return
            started = time.perf_counter()
            client, collection = source[0](), source[1]
            if client is None:
                return  # the client is gone (closed and collected): nothing left to read from
            held = self._held_arrays()
            if self._held is not None and held is None:
                return  # the collection the rows came from is gone: a rebuild reads the new one
            if name in layout.dense:
                self.dense[name], self.present[name] = read_dense(
                    client, collection, self.ids, name, layout, held
                )
            elif name in layout.sparse:
                self.sparse[name] = read_sparse(client, collection, self.ids, name, layout, held)
            elif name in layout.multi:
                built = read_multi(client, collection, self.ids, name, layout, held)
                if built is None:
                    self._missing.add(name)
                else:
                    self.multi[name] = built
            else:
                return
        logger.info(
            "in-process index of %s: vector %r of %d points read in %.2f s",
            collection,
            name,
            len(self.ids),
            time.perf_counter() - started,
        )

    def _held_arrays(self) -> HeldArrays | None:
        """The held arrays the ids were read from (``None``: read through the API, or gone)."""
        if self._held is None:
            return None
        source = self._held[0]()
        return HeldArrays(source=source, rows=self._held[1]) if source is not None else None

    # -- scoring -------------------------------------------------------------------------------

    def supports(self, using: str | None, kind: str) -> bool:
        """Whether the index can score vector ``using`` of ``kind`` (dense, sparse or multi).

        A vector the collection has is read now if it was not yet.
        """
        name = using or ""
        self.read(name)
        if kind == "dense":
            return name in self.dense
        if kind == "sparse":
            return name in self.sparse
        return name in self.multi

    def search_dense(
        self, vector: Sequence[float] | np.ndarray, using: str | None, limit: int
    ) -> list[tuple[Any, float]]:
        """Top ``limit`` ``(id, score)`` of a dense query (cosine: the query is normalised)."""
        name = using or ""
        self.read(name)
        matrix = self.dense[name]
        query = _unit(vector)
        scores = scan(matrix, query)
        present = self.present[name]
        if not present.all():
            scores = np.where(present, scores, -np.inf)
        return self._top(scores, limit)  # _top masks the pending rows

    def search_sparse(
        self, indices: Sequence[int], values: Sequence[float], using: str, limit: int
    ) -> list[tuple[Any, float]]:
        """Top ``limit`` ``(id, score)`` of a sparse query under the IDF modifier.

        Points sharing no term with the query are not returned (as in Qdrant).
        """
        self.read(using)
        data = self.sparse[using]
        cols: list[int] = []
        weights: list[float] = []
        for term, value in zip(indices, values, strict=True):
            col = data.columns.get(int(term))
            if col is None:
                continue  # no point has the term
            idf = (
                math.log((data.documents - data.df[col] + 0.5) / (data.df[col] + 0.5) + 1.0)
                if data.idf
                else 1.0
            )
            cols.append(col)
            weights.append(float(value) * idf)
        if not cols:
            return []
        sub = data.matrix[:, cols]
        scores = sub @ np.asarray(weights, dtype=np.float64)
        touched = np.zeros(len(self.ids), dtype=bool)
        touched[sub.indices] = True  # points sharing a term with the query (a mask: no sort)
        scores = np.where(touched, scores, -np.inf)
        return self._top(scores, limit)  # _top leaves out the -inf (untouched) points

    def search_maxsim(
        self, vector: Sequence[float] | np.ndarray, using: str, limit: int
    ) -> list[tuple[Any, float]]:
        """Top ``limit`` ``(id, score)`` of a one-vector MaxSim query (cosine)."""
        self.read(using)
        data = self.multi[using]
        query = _unit(vector)
        best = np.maximum.reduceat(scan(data.vectors, query), data.starts)
        if self.pending is not None:
            best = np.where(self.pending[data.rows], -np.inf, best)
        order = _top_order(best, limit)
        return [(self.ids[int(data.rows[i])], float(best[i])) for i in order if np.isfinite(best[i])]

    def _top(self, scores: np.ndarray, limit: int) -> list[tuple[Any, float]]:
        """The ``limit`` best finite scores of rows that are not pending, best first."""
        if self.pending is not None:
            scores = np.where(self.pending, -np.inf, scores)
        order = _top_order(scores, limit)
        return [(self.ids[int(i)], float(scores[i])) for i in order if np.isfinite(scores[i])]


def scan(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``matrix @ query``, split over :data:`SCAN_THREADS` threads from :data:`PARALLEL_ROWS` rows on.

    einsum's own SIMD loop, not BLAS: OpenBLAS worker threads keep spinning after a call and
    slow down the next query's embedding (ONNX Runtime) on a small CPU. The scan is bound by
    memory bandwidth, which one core does not saturate, and einsum releases the GIL, so a large
    matrix is split into row blocks scanned by idle pool threads at once (200,000 x 384: 19.9 ms
    in one thread, 10.1 ms in two, here; ``scripts/scan_threads.py``).
    """
    rows = matrix.shape[0]
    if SCAN_THREADS < 2 or rows < PARALLEL_ROWS:
        whole: np.ndarray = np.einsum("ij,j->i", matrix, query)
        return whole
    out = np.empty(rows, dtype=np.result_type(matrix.dtype, query.dtype))
    bounds = np.linspace(0, rows, SCAN_THREADS + 1).astype(int)
    pool = _scan_pool()
    parts = [
        pool.submit(np.einsum, "ij,j->i", matrix[start:end], query, out=out[start:end])
        for start, end in itertools.pairwise(bounds.tolist())
    ]
    for part in parts:
        part.result()
    return out


def _scan_pool() -> ThreadPoolExecutor:
    global _SCAN_POOL
    with _SCAN_POOL_LOCK:
        if _SCAN_POOL is None:
            _SCAN_POOL = ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="local-index-scan")
        return _SCAN_POOL


def _unit(vector: Sequence[float] | np.ndarray) -> np.ndarray:
    """A query vector as float32, normalised to unit length (cosine scoring; zero stays zero)."""
    query = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(query))
    return query / norm if norm > 0 else query


def _top_order(scores: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the ``limit`` largest scores, best first."""
    if limit <= 0 or scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, limit - 1)[:limit] if scores.size > limit else np.arange(scores.size)
    return part[np.argsort(-scores[part], kind="stable")]


# -- the per-client registry -----------------------------------------------------------------------


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    index: LocalIndex | None = None
    built_generation: int = -1


_REGISTRY: weakref.WeakKeyDictionary[Any, dict[str, _Entry]] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def _entry(client: Any, collection: str) -> _Entry:
    with _REGISTRY_LOCK:
        per_client = _REGISTRY.get(client)
        if per_client is None:
            per_client = _REGISTRY[client] = {}
        entry = per_client.get(collection)
        if entry is None:
            entry = per_client[collection] = _Entry()
        return entry


def invalidate(client: Any, collection: str) -> None:
    """Mark a collection's index stale, as a write through the store does."""
    note_write(client, collection)


def acquire(
    client: Any, collection: str, *, quiet_seconds: float = QUIET_SECONDS, lazy: bool = True
) -> LocalIndex | None:
    """The collection's current index, built if needed; ``None`` while writes are still arriving.

    The index is current while the collection's write generation (:func:`store.writes.write_state`)
    is the one it was built from.

    Args:
        client: the local client (the same object the writes went through).
        collection: the collection.
        quiet_seconds: a stale index is rebuilt only when the last write is this old; until
            then the caller should let Qdrant answer.
        lazy: a rebuilt index reads each vector when a search first needs it (``False``: all
            of them now, e.g. to time the whole build).

    Returns:
        The index, or ``None`` (the collection is being written to: ask Qdrant).
    """
    entry = _entry(client, collection)
    state = write_state(client, collection)
    index = entry.index
    if index is not None and entry.built_generation == state.generation:
        return index
    if state.last_write and time.monotonic() - state.last_write < quiet_seconds:
        return None
    with entry.lock:
        if entry.index is not None and entry.built_generation == state.generation:
            return entry.index
        built = LocalIndex.build(client, collection, vectors=() if lazy else None)
        if write_state(client, collection).generation == state.generation:
            entry.index, entry.built_generation = built, state.generation
        return built


__all__ = ["QUIET_SECONDS", "LocalIndex", "acquire", "invalidate"]
