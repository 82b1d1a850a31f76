"""The one retriever interface: Qdrant's query API and the in-process index answer the same request.

Modeled on qdrant-client's ``QdrantBase`` (local and remote behind one API): a
:class:`Request` says what to rank by (one query per representation; several are fused) and
which page of the ranking to return; a :class:`Retriever` returns that page as scored points
with their payloads. :class:`retrieval.qdrant.QdrantRetriever` asks Qdrant;
:class:`retrieval.local.LocalRetriever` scores with the in-process index of the embedded store.
Both leave pending chunks out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from qdrant_client import models

    from representations.base import QueryVector


@dataclass(frozen=True)
class Request:
    """One page of a search: what to rank by and how much to return.

    Attributes:
        queries: ``(representation name, query)`` per representation ranked by (several: fused).
        limit: points to return.
        offset: points of the ranking to skip.
        score_threshold: leave out points scoring below it (a single representation only).
        fusion: ``rrf`` or ``dbsf``, for several representations.
        candidates: points each fused representation contributes.
        rrf_k: rank constant of ``rrf`` (``None``: Qdrant's default).
        weights: per-representation weights of ``rrf`` (missing names weigh 1).
        filter: the user's document / domain restriction (``None``: none).
    """

    queries: tuple[tuple[str, QueryVector], ...]
    limit: int
    offset: int = 0
    score_threshold: float | None = None
    fusion: str = "dbsf"
    candidates: int = 100
    rrf_k: int | None = None
    weights: Mapping[str, float] | None = None
    filter: models.Filter | None = None

    def page(self, index: int) -> Request:
        """Page ``index`` (0-based) of ``limit`` points; fused representations contribute enough."""
        offset = index * self.limit
        return replace(self, offset=offset, candidates=max(self.candidates, offset + self.limit))

    def rrf_weights(self, used: Sequence[str]) -> list[float] | None:
        """Per-ranking RRF weights of the representations fused, in order (``None``: all 1)."""
        if not self.weights:
            return None
        return [float(self.weights.get(name, 1.0)) for name in used]


class Retriever(Protocol):
    """Answers a :class:`Request` with scored points (id, score, payload), best first."""

    def retrieve(self, request: Request) -> list[models.ScoredPoint]:
        """The request's page of the ranking, pending chunks left out."""
        ...
