"""Exact in-process scoring for the embedded (and in-memory) Qdrant store.

Qdrant's local mode is a reference implementation: every query converts the query to float64,
re-normalises every stored vector for cosine collections, scores sparse vectors with a Python
loop over all points, and sorts all scores. At 50k chunks that is about 50 ms for a dense query
and over a second for a sparse (BM25) one, while the same arithmetic in numpy/scipy takes a few
milliseconds.

:class:`LocalIndex` holds the collection's vectors in numpy and scipy arrays (read once through
the public ``scroll`` API) and scores exactly what Qdrant local scores:

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

import logging
import math
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from store.payload import PENDING_KEY
from store.points import scroll_pages
from store.writes import note_write, write_state

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from scipy import sparse as sp

logger = logging.getLogger(__name__)

#: After a write, searches within this many seconds are answered by Qdrant (no rebuild).
QUIET_SECONDS = 2.0
#: Points read per ``scroll`` call while building.
_SCROLL_BATCH = 2048


@dataclass
class _Sparse:
    matrix: sp.csc_matrix  # (points, columns)
    columns: dict[int, int]  # term index -> column
    df: np.ndarray  # documents per column
    documents: int  # points that have the sparse vector
    idf: bool  # Qdrant's IDF modifier is on


@dataclass
class _Multi:
    vectors: np.ndarray  # (vectors, dim), rows grouped by owner
    rows: np.ndarray  # owner row of each group
    starts: np.ndarray  # first vector of each group


@dataclass
class LocalIndex:
    """A collection's vectors in numpy/scipy, scored exactly as Qdrant local scores them.

    Attributes:
        ids: point id of each row.
        dense: dense vectors by vector name (``""``: the unnamed default vector); rows of points
            without that vector are masked out by ``present``.
        present: per dense vector name, which rows have it.
        sparse: sparse vectors by name.
        multi: multivectors by name.
        pending: which rows are pending chunks (never returned); ``None``: none is.
        build_seconds: how long the build took.
    """

    ids: list[Any]
    dense: dict[str, np.ndarray] = field(default_factory=dict)
    present: dict[str, np.ndarray] = field(default_factory=dict)
    sparse: dict[str, _Sparse] = field(default_factory=dict)
    multi: dict[str, _Multi] = field(default_factory=dict)
    pending: np.ndarray | None = None
    build_seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.ids)

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, client: QdrantClient, collection: str) -> LocalIndex:
        """Read every point's vectors of ``collection`` (public ``scroll`` API) into arrays.

        Args:
            client: the (local) client.
            collection: the collection.

        Returns:
            The index.
        """
        from qdrant_client import models as qm

        started = time.perf_counter()
        params = client.get_collection(collection).config.params
        dense_cfg, multi_names = _searched_vectors(params.vectors)
        sparse_cfg = params.sparse_vectors or {}
        sparse_names = set(sparse_cfg)

        ids: list[Any] = []
        pending: list[bool] = []
        dense_rows: dict[str, list[np.ndarray]] = {name: [] for name in dense_cfg}
        dense_have: dict[str, list[bool]] = {name: [] for name in dense_cfg}
        sparse_rows: dict[str, list[tuple[list[int], list[float]] | None]] = {n: [] for n in sparse_names}
        multi_rows: dict[str, list[np.ndarray | None]] = {name: [] for name in multi_names}
        for records in scroll_pages(
            client, collection, payload=[PENDING_KEY], vectors=True, limit=_SCROLL_BATCH
        ):
            for record in records:
                ids.append(record.id)
                pending.append(bool((record.payload or {}).get(PENDING_KEY)))
                vector = record.vector
                named: dict[str, Any] = vector if isinstance(vector, dict) else {"": vector}
                for name, cfg in dense_cfg.items():
                    value = named.get(name)
                    dense_have[name].append(value is not None)
                    dense_rows[name].append(
                        np.asarray(value, dtype=np.float32)
                        if value is not None
                        else np.zeros(cfg.size, dtype=np.float32)
                    )
                for name in sparse_names:
                    value = named.get(name)
                    sparse_rows[name].append(
                        (list(value.indices), list(value.values)) if value is not None else None
                    )
                for name in multi_names:
                    value = named.get(name)
                    multi_rows[name].append(np.asarray(value, dtype=np.float32) if value else None)

        index = cls(ids=ids, pending=np.asarray(pending, dtype=bool) if any(pending) else None)
        for name, cfg in dense_cfg.items():
            matrix = _build_dense(dense_rows[name], cfg)
            if matrix is not None:
                index.dense[name] = matrix
                index.present[name] = np.asarray(dense_have[name], dtype=bool)
        for name in sparse_names:
            index.sparse[name] = _build_sparse(
                sparse_rows[name], len(ids), idf=sparse_cfg[name].modifier == qm.Modifier.IDF
            )
        for name in multi_names:
            built = _build_multi(multi_rows[name])
            if built is not None:
                index.multi[name] = built
        index.build_seconds = time.perf_counter() - started
        logger.info(
            "in-process index of %s: %d points (%d pending) in %.2f s",
            collection,
            len(ids),
            sum(pending),
            index.build_seconds,
        )
        return index

    # -- scoring -------------------------------------------------------------------------------

    def supports(self, using: str | None, kind: str) -> bool:
        """Whether the index can score vector ``using`` of ``kind`` (dense, sparse or multi)."""
        name = using or ""
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
        matrix = self.dense[name]
        query = _unit(vector)
        # einsum's own SIMD loop, not BLAS: OpenBLAS worker threads keep spinning after a call
        # and slow down the next query's embedding (ONNX Runtime) on a small CPU; single-threaded,
        # the memory-bound scan is as fast (3.8 ms for 50k x 384 here, against 7.8 ms through BLAS).
        scores = np.einsum("ij,j->i", matrix, query)
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
        data = self.multi[using]
        query = _unit(vector)
        best = np.maximum.reduceat(np.einsum("ij,j->i", data.vectors, query), data.starts)
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


def _searched_vectors(vectors_cfg: Any) -> tuple[dict[str, Any], set[str]]:
    """The dense vector configs (by name, ``""``: unnamed) and multivector names a collection searches."""
    from qdrant_client import models as qm

    dense_cfg: dict[str, Any] = {}
    multi_names: set[str] = set()
    if isinstance(vectors_cfg, qm.VectorParams):
        dense_cfg[""] = vectors_cfg
    elif isinstance(vectors_cfg, dict):
        for name, cfg in vectors_cfg.items():
            if cfg.hnsw_config is not None and cfg.hnsw_config.m == 0:
                continue  # not indexed: kept for other uses, never searched
            if cfg.multivector_config is not None:
                multi_names.add(name)
            else:
                dense_cfg[name] = cfg
    return dense_cfg, multi_names


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


def _build_dense(rows: list[np.ndarray], cfg: Any) -> np.ndarray | None:
    """The rows as one matrix, unit-normalised for cosine; ``None`` for distances not scored here."""
    from qdrant_client import models as qm

    matrix = (
        np.vstack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, cfg.size), dtype=np.float32)
    )
    if cfg.distance == qm.Distance.COSINE:
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.where(norms > 0, norms, 1.0)
    elif cfg.distance != qm.Distance.DOT:
        return None  # euclid/manhattan: not used by instructor-search; Qdrant answers those
    return np.ascontiguousarray(matrix)


def _build_sparse(rows: list[tuple[list[int], list[float]] | None], n: int, *, idf: bool) -> _Sparse:
    from scipy import sparse as sp

    columns: dict[int, int] = {}
    data: list[float] = []
    row_ind: list[int] = []
    col_ind: list[int] = []
    documents = 0
    for row, value in enumerate(rows):
        if value is None:
            continue
        documents += 1
        for term, weight in zip(*value, strict=True):
            col = columns.setdefault(int(term), len(columns))
            row_ind.append(row)
            col_ind.append(col)
            data.append(float(weight))
    matrix = sp.csc_matrix(
        (np.asarray(data, dtype=np.float64), (np.asarray(row_ind), np.asarray(col_ind))),
        shape=(n, max(1, len(columns))),
    )
    matrix.sum_duplicates()
    df = np.diff(matrix.indptr)
    return _Sparse(matrix=matrix, columns=columns, df=df, documents=documents, idf=idf)


def _build_multi(rows: list[np.ndarray | None]) -> _Multi | None:
    blocks: list[np.ndarray] = []
    owners: list[int] = []
    starts: list[int] = []
    total = 0
    for row, value in enumerate(rows):
        if value is None or value.size == 0:
            continue
        matrix = value.reshape(-1, value.shape[-1])
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        blocks.append(matrix / np.where(norms > 0, norms, 1.0))
        owners.append(row)
        starts.append(total)
        total += matrix.shape[0]
    if not blocks:
        return None
    return _Multi(
        vectors=np.ascontiguousarray(np.vstack(blocks), dtype=np.float32),
        rows=np.asarray(owners, dtype=np.int64),
        starts=np.asarray(starts, dtype=np.int64),
    )


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


def acquire(client: Any, collection: str, *, quiet_seconds: float = QUIET_SECONDS) -> LocalIndex | None:
    """The collection's current index, built if needed; ``None`` while writes are still arriving.

    The index is current while the collection's write generation (:func:`store.writes.write_state`)
    is the one it was built from.

    Args:
        client: the local client (the same object the writes went through).
        collection: the collection.
        quiet_seconds: a stale index is rebuilt only when the last write is this old; until
            then the caller should let Qdrant answer.

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
        built = LocalIndex.build(client, collection)
        if write_state(client, collection).generation == state.generation:
            entry.index, entry.built_generation = built, state.generation
        return built


__all__ = ["QUIET_SECONDS", "LocalIndex", "acquire", "invalidate"]
