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

**The held arrays.** An embedded client has already read every point into memory when it opened
the store: qdrant-client's local collection keeps the ids, the dense vectors as one numpy matrix
per name, the sparse vectors and multivectors as lists, and deletion masks. Where the client is
one (:class:`HeldArrays` finds it through the attributes qdrant-client 1.x has, and checks them),
the readers take the vectors from there instead of through ``retrieve``, which copies each point
into a validated model: at 200,000 points of 384 dimensions the first dense search reads its
matrix in well under a second instead of 8 s (:mod:`evaluation.scale`). Where the attributes are
not what is expected (another qdrant-client, a server), the public API above is used; the tests
build the index both ways on the same collections, deletions and overwrites included, and compare.
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
#: Rows copied at a time from a held dense matrix.
_COPY_ROWS = 16_384


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


@dataclass(frozen=True)
class HeldArrays:
    """The vectors qdrant-client's local mode holds in memory for one collection, read in place.

    Attributes:
        source: qdrant-client's local collection object (its attributes are read, never written).
        rows: its live rows (not deleted), in its own order: row ``i`` of the index is ``rows[i]``.
    """

    source: Any
    rows: np.ndarray

    #: What the local collection must have (qdrant-client 1.x) for the held arrays to be read.
    NEEDED = ("ids_inv", "deleted", "deleted_per_vector", "vectors", "sparse_vectors", "multivectors")

    @classmethod
    def of(cls, client: QdrantClient, collection: str) -> HeldArrays | None:
        """The held arrays of ``collection`` if ``client`` is an embedded one that has them, else ``None``."""
        collections = getattr(getattr(client, "_client", None), "collections", None)
        source = collections.get(collection) if isinstance(collections, dict) else None
        if source is None or not all(hasattr(source, name) for name in cls.NEEDED):
            return None
        count = len(source.ids_inv)
        deleted = np.asarray(source.deleted, dtype=bool)
        if not isinstance(source.vectors, dict) or deleted.ndim != 1 or deleted.shape[0] < count:
            return None
        return cls(source=source, rows=np.flatnonzero(~deleted[:count]))

    def ids(self) -> list[Any]:
        """The point id of each live row."""
        ids_inv = self.source.ids_inv
        return [ids_inv[int(row)] for row in self.rows]

    def _present(self, name: str) -> np.ndarray:
        deleted = np.asarray(self.source.deleted_per_vector.get(name, ()), dtype=bool)
        present = np.zeros(len(self.rows), dtype=bool)
        inside = self.rows < deleted.shape[0]
        present[inside] = ~deleted[self.rows[inside]]
        return present

    def dense(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(float32 matrix, present)`` of dense vector ``name`` (not normalised); ``None`` if not held."""
        held = self.source.vectors.get(name)
        if not isinstance(held, np.ndarray) or held.ndim != 2:
            return None
        matrix = np.empty((len(self.rows), held.shape[1]), dtype=np.float32)
        for start in range(0, len(self.rows), _COPY_ROWS):  # no full-size temporary in qdrant's dtype
            matrix[start : start + _COPY_ROWS] = held[self.rows[start : start + _COPY_ROWS]]
        return matrix, self._present(name)

    def pages(self, name: str) -> Iterator[tuple[list[int], list[Any]]] | None:
        """``(rows, values)`` of sparse or multivector ``name``, as :func:`_pages`; ``None`` if not held."""
        held = self.source.sparse_vectors.get(name)
        if held is None:
            held = self.source.multivectors.get(name)
        if not isinstance(held, list):
            return None
        present = self._present(name)
        rows = [i for i in np.flatnonzero(present).tolist() if int(self.rows[i]) < len(held)]

        def batches() -> Iterator[tuple[list[int], list[Any]]]:
            for start in range(0, len(rows), READ_BATCH):
                part = rows[start : start + READ_BATCH]
                yield part, [held[int(self.rows[i])] for i in part]

        return batches()


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
    client: QdrantClient, collection: str, ids: Sequence[Any], name: str, held: HeldArrays | None = None
) -> Iterator[tuple[list[int], list[Any]]]:
    """``(rows, values)`` of vector ``name`` for the points of ``ids`` that have it, a batch at a time.

    From ``held`` where it holds the vector (``ids`` are then its own), else through ``retrieve``.
    """
    pages = held.pages(name) if held is not None else None
    if pages is not None:
        yield from pages
        return
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
    client: QdrantClient,
    collection: str,
    ids: Sequence[Any],
    name: str,
    layout: Layout,
    held: HeldArrays | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense vector ``name`` of every point: ``(matrix, present)``, rows unit-normalised for cosine.

    From ``held`` where it holds the vector (``ids`` are then its own), else through ``retrieve``.
    """
    from qdrant_client import models as qm

    cfg = layout.dense[name]
    taken = held.dense(name) if held is not None else None
    if taken is not None:
        matrix, present = taken
    else:
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
    client: QdrantClient,
    collection: str,
    ids: Sequence[Any],
    name: str,
    layout: Layout,
    held: HeldArrays | None = None,
) -> SparseIndex:
    """Sparse vector ``name`` of every point, with the document frequency of each term."""
    from scipy import sparse as sp

    row_parts: list[np.ndarray] = []
    term_parts: list[np.ndarray] = []
    weight_parts: list[np.ndarray] = []
    documents = 0
    for rows, values in _pages(client, collection, ids, name, held):
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
    client: QdrantClient,
    collection: str,
    ids: Sequence[Any],
    name: str,
    layout: Layout,
    held: HeldArrays | None = None,
) -> MultiIndex | None:
    """Multivector ``name`` of every point that has one, unit-normalised; ``None`` if none has."""
    blocks: list[np.ndarray] = []
    owners: list[int] = []
    starts: list[int] = []
    total = 0
    for rows, values in _pages(client, collection, ids, name, held):
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
    "HeldArrays",
    "Layout",
    "MultiIndex",
    "SparseIndex",
    "read_dense",
    "read_ids",
    "read_multi",
    "read_sparse",
]
