"""The retriever that scores with the in-process index of the embedded store.

:class:`LocalRetriever` ranks with :class:`retrieval.local_index.LocalIndex` exactly as Qdrant
local ranks (fusion by Qdrant's own client-side RRF / DBSF functions) and reads the payloads of
the page it returns. A request the index cannot answer (a vector it does not hold) goes to the
fallback retriever, Qdrant itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models

    from representations.base import QueryVector
    from retrieval.local_index import LocalIndex
    from retrieval.retriever import Request, Retriever

Ranking = list[tuple[Any, float]]


class LocalRetriever:
    """The in-process index's ranking of unfiltered requests.

    Args:
        index: the collection's current index.
        client: the local client (for the payloads).
        collection: the chunk collection.
        fallback: answers what the index cannot (Qdrant).
    """

    def __init__(self, index: LocalIndex, client: QdrantClient, collection: str, fallback: Retriever) -> None:
        self.index = index
        self.client = client
        self.collection = collection
        self.fallback = fallback

    def retrieve(self, request: Request) -> list[models.ScoredPoint]:
        """The index's page of the ranking with payloads; the fallback's if the index lacks a vector."""
        ranked = self.rank(request)
        if ranked is None:
            return self.fallback.retrieve(request)
        return fetch(self.client, self.collection, ranked)

    def rank(self, request: Request) -> Ranking | None:
        """The request's page as ``(id, score)``; ``None`` if the index lacks a vector it needs."""
        limit, offset = request.limit, request.offset
        if len(request.queries) == 1:
            ranked = self._rank(request.queries[0][1], limit + offset)
            if ranked is None:
                return None
            if request.score_threshold is not None:
                threshold = request.score_threshold
                ranked = [(pid, score) for pid, score in ranked if score > threshold]  # as Qdrant local
            return ranked[offset : offset + limit]
        rankings: list[Ranking] = []
        used: list[str] = []
        for name, query in request.queries:
            ranking = self._rank(query, request.candidates)
            if ranking is None:
                return None
            if query.matches_nothing():
                continue  # as Qdrant: a query without indexed terms has no lexical prefetch
            rankings.append(ranking)
            used.append(name)
        rrf = request.fusion == "rrf"
        fused = fuse(
            rankings,
            fusion=request.fusion,
            limit=limit + offset,
            rrf_k=request.rrf_k if rrf else None,
            weights=request.rrf_weights(used) if rrf else None,
        )
        return fused[offset : offset + limit]

    def _rank(self, query: QueryVector, size: int) -> Ranking | None:
        index = self.index
        if not index.supports(query.using, query.kind):
            return None
        if query.matches_nothing():
            return []
        if query.kind == "sparse" and query.sparse is not None:
            indices, values = query.sparse
            return index.search_sparse(indices, values, query.using, size)
        if query.dense is None:
            return None
        if query.kind == "multi":
            return index.search_maxsim(query.dense, query.using, size)
        return index.search_dense(query.dense, query.using, size)


def fuse(
    rankings: Sequence[Ranking],
    *,
    fusion: str,
    limit: int,
    rrf_k: int | None = None,
    weights: Sequence[float] | None = None,
) -> Ranking:
    """Fuse rankings with Qdrant's own RRF / DBSF functions (as ``query_points`` does locally)."""
    from qdrant_client import models as qm
    from qdrant_client.hybrid.fusion import distribution_based_score_fusion, reciprocal_rank_fusion

    responses = [[qm.ScoredPoint(id=pid, version=0, score=score) for pid, score in r] for r in rankings]
    if fusion == "dbsf":
        fused = distribution_based_score_fusion(responses=responses, limit=limit)
    else:  # rrf_k=None and weights=None are Qdrant's own defaults
        fused = reciprocal_rank_fusion(
            responses=responses,
            limit=limit,
            ranking_constant_k=rrf_k,
            weights=list(weights) if weights else None,
        )
    return [(point.id, float(point.score)) for point in fused]


def fetch(
    client: QdrantClient, collection: str, ranked: Sequence[tuple[Any, float]]
) -> list[models.ScoredPoint]:
    """The ranked points with their payloads, as ``ScoredPoint`` (best first)."""
    from qdrant_client import models as qm

    if not ranked:
        return []
    records = client.retrieve(collection, ids=[pid for pid, _ in ranked], with_payload=True)
    payloads = {str(record.id): record.payload for record in records}
    return [
        qm.ScoredPoint(id=pid, version=0, score=score, payload=payloads.get(str(pid)))
        for pid, score in ranked
        if str(pid) in payloads
    ]
