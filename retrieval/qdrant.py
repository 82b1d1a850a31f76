"""The retriever that asks Qdrant: one ``query_points`` call per request.

A single representation is one query; several are fused by Qdrant's query API over one prefetch
each. Pending chunks are left out by :func:`store.payload.committed_filter`, in the query and in
every prefetch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from store.payload import committed_filter

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models

    from representations.base import QueryVector
    from retrieval.retriever import Request


def qdrant_query(query: QueryVector) -> Any:
    """The query as ``query_points`` takes it: a vector, a one-vector multivector, a sparse vector."""
    from qdrant_client import models  # lazy: qdrant_client takes about a second to import

    if query.kind == "sparse":
        indices, values = query.sparse or ([], [])
        return models.SparseVector(indices=indices, values=values)
    if query.kind == "multi":
        return [query.dense]  # a one-vector multivector query: MaxSim
    return query.dense


def fusion_query(request: Request, used: Sequence[str]) -> Any:
    """The fusion of the prefetches of the representations ``used``."""
    from qdrant_client import models

    if request.fusion == "dbsf":
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    if request.rrf_k is not None or request.weights:
        return models.RrfQuery(rrf=models.Rrf(k=request.rrf_k, weights=request.rrf_weights(used)))
    return models.FusionQuery(fusion=models.Fusion.RRF)


class QdrantRetriever:
    """Qdrant's own ranking (server, embedded or in memory).

    Args:
        client: the client.
        collection: the chunk collection.
    """

    def __init__(self, client: QdrantClient, collection: str) -> None:
        self.client = client
        self.collection = collection

    def retrieve(self, request: Request) -> list[models.ScoredPoint]:
        """One ``query_points`` call: a single representation, or a fusion of one prefetch each."""
        from qdrant_client import models

        visible = committed_filter(request.filter)
        if len(request.queries) == 1:
            _, query = request.queries[0]
            if query.matches_nothing():  # a query without any indexed term matches nothing lexically
                return []
            return self.client.query_points(
                self.collection,
                query=qdrant_query(query),
                using=query.using or None,  # None: the unnamed default vector
                query_filter=visible,
                score_threshold=request.score_threshold,
                limit=request.limit,
                offset=request.offset,
                with_payload=True,
            ).points
        prefetch = []
        used: list[str] = []
        for name, query in request.queries:
            if not query.matches_nothing():
                used.append(name)
                prefetch.append(
                    models.Prefetch(
                        query=qdrant_query(query),
                        using=query.using or None,
                        filter=visible,
                        limit=request.candidates,
                    )
                )
        return self.client.query_points(
            self.collection,
            prefetch=prefetch,
            query=fusion_query(request, used),
            query_filter=visible,
            limit=request.limit,
            offset=request.offset,
            with_payload=True,
        ).points
