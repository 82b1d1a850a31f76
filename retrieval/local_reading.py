"""Reading a local collection's vectors into numpy/scipy arrays, in time linear in its size.

The in-process index (:mod:`retrieval.local_index`) reads the point ids once
(:func:`read_ids`: a few large ``scroll`` pages of ids alone) and then each vector it needs by id
(``retrieve`` of :data:`READ_BATCH` points at a time, only that vector, no payload). qdrant-client's
local ``scroll`` sorts every id and skips to the offset on each call, so reading a collection
through it page by page is quadratic; reading by id is not. Measured (:mod:`evaluation.scale`,
50,000 chunks of 64 dimensions with BM25, CPU seconds): the ids 0.57 s, the dense vectors 1.1 s,
the sparse vectors 2.4 s (qdrant-client copies each one into a new model), against 5.8 s for the
whole index through ``scroll`` at 50,000 and 94 s at 200,000.

Each reader builds its array without a Python object per element: the dense matrix is allocated
once and filled a batch at a time, the sparse terms are gathered as numpy arrays and their columns
numbered by ``np.unique``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from store.points import LOCAL_ID_PAGE

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from scipy import sparse as sp

#: Points per ``retrieve`` call while a vector is read.
READ_BATCH = 2048


@dataclass
class SparseIndex:
    """A sparse vector of every point, as a scipy matrix with Qdrant's IDF statistics."""

    matrix: sp.csc_matrix  # (points, columns)
    columns: dict[int, int]  # term index -> column
    df: np.ndarray  # documents per column
    documents: int  # points that have the sparse vector
    idf: bool  # Qdrant's IDF modifier is on


@dataclass
class MultiIndex:
    """A multivector of every point that has one, rows grouped by owner."""

    vectors: np.ndarray  # (vectors, dim), unit-normalised
    rows: np.ndarray  # owner row of each group
    starts: np.ndarray  # first vector of each group


@dataclass(frozen=True)
class Layout:
    """The vectors a collection's searches score, from its config.

    Attributes:
        dense: dense vector configs by name (``""``: the unnamed default), cosine or dot only.
        sparse: sparse vector names and whether each has Qdrant's IDF modifier.
        multi: multivector configs by name.
    """

    dense: dict[str, Any]
    sparse: dict[str, bool]
    multi: dict[str, Any]

    @classmethod
    def of(cls, client: QdrantClient, collection: str) -> Layout:
        """The layout of ``collection``."""
        from qdrant_client import models as qm

        params = client.get_collection(collection).config.params
        scored = (qm.Distance.COSINE, qm.Distance.DOT)  # euclid/manhattan: Qdrant answers those
        dense: dict[str, Any] = {}
        multi: dict[str, Any] = {}
        vectors = params.vectors
        named: dict[str, Any] = {"": vectors} if isinstance(vectors, qm.VectorParams) else dict(vectors or {})
        for name, cfg in named.items():
            if cfg.hnsw_config is not None and cfg.hnsw_config.m == 0:
                continue  # not indexed: kept for other uses, never searched
            if cfg.multivector_config is not None:
                multi[name] = cfg
            elif cfg.distance in scored:
                dense[name] = cfg
        sparse = {
            name: cfg.modifier == qm.Modifier.IDF for name, cfg in (params.sparse_vectors or {}).items()
        }
        return cls(dense=dense, sparse=sparse, multi=multi)


def read_ids(client: QdrantClient, collection: str) -> list[Any]:
    """Every point id of ``collection``, in Qdrant's id order (ids only, :data:`LOCAL_ID_PAGE` per call)."""
    ids: list[Any] = []
    offset: Any = None
    while True:
        records, offset = client.scroll(
            collection, limit=LOCAL_ID_PAGE, offset=offset, with_payload=False, with_vectors=False
        )
        ids += [record.id for record in records]
        if offset is None:
            return ids


def _vector_of(vector: Any, name: str) -> Any:
    """Vector ``name`` of a point retrieved with that vector alone (``None`` if it has none).

    qdrant-client gives a dict of the named vectors, or the vector itself when it is the unnamed
    one (asked for alone, or the collection's only vector).
    """
    return vector.get(name) if isinstance(vector, dict) else vector


def _pages(
    client: QdrantClient, collection: str, ids: Sequence[Any], name: str
) -> Iterator[tuple[list[int], list[Any]]]:
    """``(rows, values)`` of vector ``name`` for the points of ``ids`` that have it, a batch at a time."""
    for start in range(0, len(ids), READ_BATCH):
        part = ids[start : start + READ_BATCH]
        row_of = {point_id: start + offset for offset, point_id in enumerate(part)}
        records = client.retrieve(collection, ids=list(part), with_payload=False, with_vectors=[name])
        rows: list[int] = []
        values: list[Any] = []
        for record in records:
            value = _vector_of(record.vector, name)
            row = row_of.get(record.id)
            if value is not None and row is not None:
                rows.append(row)
                values.append(value)
        yield rows, values


def read_dense(
    client: QdrantClient, collection: str, ids: Sequence[Any], name: str, layout: Layout
) -> tuple[np.ndarray, np.ndarray]:
    """Dense vector ``name`` of every point: ``(matrix, present)``, rows unit-normalised for cosine."""
    from qdrant_client import models as qm

    cfg = layout.dense[name]
    matrix = np.zeros((len(ids), cfg.size), dtype=np.float32)
    present = np.zeros(len(ids), dtype=bool)
    for rows, values in _pages(client, collection, ids, name):
        if rows:
            matrix[rows] = np.asarray(values, dtype=np.float32)
            present[rows] = True
    if cfg.distance == qm.Distance.COSINE:
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.where(norms > 0, norms, 1.0)
    return matrix, present


def read_sparse(
    client: QdrantClient, collection: str, ids: Sequence[Any], name: str, layout: Layout
) -> SparseIndex:
    """Sparse vector ``name`` of every point, with the document frequency of each term."""
    from scipy import sparse as sp

    row_parts: list[np.ndarray] = []
    term_parts: list[np.ndarray] = []
    weight_parts: list[np.ndarray] = []
    documents = 0
    for rows, values in _pages(client, collection, ids, name):
        documents += len(values)
        lengths = np.fromiter((len(v.indices) for v in values), dtype=np.int64, count=len(values))
        total = int(lengths.sum())
        row_parts.append(np.repeat(np.asarray(rows, dtype=np.int64), lengths))
        chained = itertools.chain.from_iterable
        term_parts.append(np.fromiter(chained(v.indices for v in values), dtype=np.int64, count=total))
        weight_parts.append(np.fromiter(chained(v.values for v in values), dtype=np.float64, count=total))
    rows_all = np.concatenate(row_parts) if row_parts else np.zeros(0, dtype=np.int64)
    terms = np.concatenate(term_parts) if term_parts else np.zeros(0, dtype=np.int64)
    weights = np.concatenate(weight_parts) if weight_parts else np.zeros(0, dtype=np.float64)
    unique, cols = np.unique(terms, return_inverse=True)
    matrix = sp.csc_matrix((weights, (rows_all, cols.ravel())), shape=(len(ids), max(1, len(unique))))
    matrix.sum_duplicates()
    return SparseIndex(
        matrix=matrix,
        columns=dict(zip(unique.tolist(), range(len(unique)), strict=True)),
        df=np.diff(matrix.indptr),
        documents=documents,
        idf=layout.sparse[name],
    )


def read_multi(
    client: QdrantClient, collection: str, ids: Sequence[Any], name: str, layout: Layout
) -> MultiIndex | None:
    """Multivector ``name`` of every point that has one, unit-normalised; ``None`` if none has."""
    blocks: list[np.ndarray] = []
    owners: list[int] = []
    starts: list[int] = []
    total = 0
    for rows, values in _pages(client, collection, ids, name):
        for row, value in zip(rows, values, strict=True):
            matrix = np.asarray(value, dtype=np.float32)
            if matrix.size == 0:
                continue
            matrix = matrix.reshape(-1, matrix.shape[-1])
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            blocks.append(matrix / np.where(norms > 0, norms, 1.0))
            owners.append(row)
            starts.append(total)
            total += matrix.shape[0]
    if not blocks:
        return None
    return MultiIndex(
        vectors=np.ascontiguousarray(np.vstack(blocks), dtype=np.float32),
        rows=np.asarray(owners, dtype=np.int64),
        starts=np.asarray(starts, dtype=np.int64),
    )


__all__ = [
    "READ_BATCH",
    "Layout",
    "MultiIndex",
    "SparseIndex",
    "read_dense",
    "read_ids",
    "read_multi",
    "read_sparse",
]
