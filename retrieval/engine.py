"""The one search function: the CLI, the Streamlit page and the tests all call :func:`search`.

A query is embedded under the query instruction recorded in the collection's metadata (never
under whatever the current settings would build), so a collection is always searched the way it
was indexed. Only chunks of completely stored files count: chunks still flagged pending (an
ingest still running, or one that was interrupted; see :data:`store.core.PENDING_KEY`) are
excluded inside Qdrant's query and by the in-process index, so however many there are they
never take the place of stored ones; and a hit whose file has no matching manifest (a file
being replaced or removed) is left out afterwards, so a search that runs while a file is being
ingested or replaced never sees half a file or two versions of it.

A search runs in one retrieval *mode* (see :data:`MODES`): one representation of the chunks
(``dense``, ``sparse`` BM25, sentence ``sentences`` MaxSim, ``keywords``- or
``questions``-augmented vectors), or several fused by Qdrant's query API (reciprocal rank
fusion or distribution-based score fusion over one prefetch per representation). A mode the
collection was not built for is refused with the modes it does offer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypedDict

from representations.core import (
    KEYWORD_VECTOR,
    QUESTION_VECTOR,
    SENTENCE_VECTOR,
    SPARSE_VECTOR,
    SparseEncoder,
    SparseRecord,
)
from retrieval.errors import ModeUnavailableError, QueryError
from store.core import CollectionRecord, committed_filter, manifest_point_id

if TYPE_CHECKING:
    from qdrant_client import models

    from config import SearchSettings
    from embedder import Embedder
    from retrieval.local_index import LocalIndex
    from store.core import VectorStore

#: Longest accepted query in characters (a query is a question, not a document).
MAX_QUERY_CHARS = 2000
#: Largest accepted ``top_k``.
MAX_TOP_K = 1000
#: Most query rounds spent looking for hits of completely stored files.
_MAX_ROUNDS = 4

#: The representations each retrieval mode ranks by (several: fused). ``all``: every one the
#: collection has.
MODES: dict[str, tuple[str, ...]] = {
    "dense": ("dense",),
    "sparse": ("sparse",),
    "hybrid": ("dense", "sparse"),
    "sentences": ("sentences",),
    "keywords": ("keywords",),
    "questions": ("questions",),
    "hybrid+sentences": ("dense", "sparse", "sentences"),
    "hybrid+keywords": ("keywords", "sparse"),
    "hybrid+questions": ("questions", "sparse"),
    "all": (),
}
#: Modes whose scores are cosine similarities (a score threshold applies to them).
COSINE_MODES = frozenset({"dense", "keywords", "questions", "sentences"})
_VECTOR_NAMES = {
    "sentences": SENTENCE_VECTOR,
    "keywords": KEYWORD_VECTOR,
    "questions": QUESTION_VECTOR,
    "sparse": SPARSE_VECTOR,
}


def mode_components(mode: str, record: CollectionRecord) -> tuple[str, ...]:
    """The representations a mode ranks by in a collection.

    Args:
        mode: a key of :data:`MODES`.
        record: the collection's record.

    Returns:
        The representation names (``all``: every representation the collection has).

    Raises:
        QueryError: the mode is unknown.
        ModeUnavailableError: the collection lacks a representation the mode needs; the message
            names the modes it offers and how to build the missing representation.
    """
    if mode not in MODES:
        raise QueryError(f"unknown search mode {mode!r}; use one of: {', '.join(MODES)}")
    available = record.representations.available()
    if mode == "all":
        return tuple(available)
    missing = [name for name in MODES[mode] if name not in available]
    if missing:
        settings_key = {
            "sparse": "INSTRUCTOR_SEARCH_INDEX__SPARSE__ENABLED=true",
            "sentences": "INSTRUCTOR_SEARCH_INDEX__SENTENCES__ENABLED=true",
            "keywords": "INSTRUCTOR_SEARCH_INDEX__KEYWORDS__ENABLED=true",
            "questions": "INSTRUCTOR_SEARCH_INDEX__QUESTIONS__GENERATOR=MODEL_FOLDER",
        }
        fixes = " ".join(settings_key[name] for name in missing)
        raise ModeUnavailableError(
            f"search mode {mode!r} needs the {', '.join(missing)} representation, which this collection "
            f"was not built with (it has: {', '.join(available)}; modes available: "
            f"{', '.join(available_modes(record))}). Fix: choose one of those modes, or ingest the "
            f"documents into a new collection with {fixes} (--collection NEW_NAME)."
        )
    return MODES[mode]


def available_modes(record: CollectionRecord) -> list[str]:
    """The retrieval modes a collection supports."""
    have = set(record.representations.available())
    return [mode for mode, parts in MODES.items() if set(parts) <= have]


def _sparse_encoder(record: SparseRecord) -> SparseEncoder:
    key = (record.k1, record.b, record.avg_length, record.language)
    encoder = _SPARSE_ENCODERS.get(key)
    if encoder is None:
        encoder = _SPARSE_ENCODERS[key] = SparseEncoder.from_record(record)
    return encoder


_SPARSE_ENCODERS: dict[tuple[float, float, float | None, str], SparseEncoder] = {}


class SearchOptions(TypedDict):
    """The keyword arguments of :func:`search` that the ``search`` settings section decides."""

    fusion: str
    candidates: int
    rrf_k: int | None
    weights: Mapping[str, float]
    local_index: bool


def options_from(section: SearchSettings, *, min_candidates: int = 0) -> SearchOptions:
    """The settings' retrieval options, as keyword arguments of :func:`search`.

    Args:
        section: the ``search`` settings section.
        min_candidates: fused representations contribute at least this many candidates.

    Returns:
        ``fusion``, ``candidates``, ``rrf_k``, ``weights`` and ``local_index``.
    """
    return SearchOptions(
        fusion=section.fusion,
        candidates=max(section.candidates, min_candidates),
        rrf_k=section.rrf_k,
        weights=section.weights,
        local_index=section.local_index,
    )


@dataclass(frozen=True)
class Hit:
    """One search hit: a chunk of a stored file.

    Attributes:
        id: the Qdrant point id.
        score: higher is better: cosine similarity in the dense, keywords, questions and sentences
            modes, a BM25 score in ``sparse``, a fused score in the fused modes.
        text: the chunk's text.
        file_name: display name of the file.
        page: 1-based page number (``None`` for text and Markdown files).
        chunk_index: position of the chunk within its file.
        source: the file's logical id (absolute path, ``upload:NAME`` or ``sample:NAME``).
        domain: the domain the file was ingested with.
    """

    id: str
    score: float
    text: str
    file_name: str
    page: int | None
    chunk_index: int
    source: str = ""
    domain: str = ""

    def to_json(self) -> dict[str, Any]:
        """The hit as a JSON-ready dict."""
        return {
            "file_name": self.file_name,
            "page": self.page,
            "chunk_index": self.chunk_index,
            "score": round(self.score, 6),
            "text": self.text,
            "id": self.id,
            "source": self.source,
        }


@dataclass
class SearchResult:
    """The hits of one query and how they were found.

    Attributes:
        query: the query as searched (outer whitespace removed).
        hits: best first.
        instruction: the query instruction used (``None``: the collection uses no instruction).
        collection: the collection searched.
        model: the model id that embedded the query.
        top_k: hits asked for.
        score_threshold: the minimum score applied, if any.
        seconds: wall time of the search.
        mode: the retrieval mode that ran.
        note: why the mode that ran differs from the one asked for, if it does.
    """

    query: str
    hits: list[Hit]
    instruction: str | None
    collection: str
    model: str
    top_k: int
    score_threshold: float | None = None
    seconds: float = 0.0
    filters: dict[str, Any] = field(default_factory=dict)
    mode: str = "dense"
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"hits": [...], "query", "instruction", "collection", ...}``."""
        return {
            "hits": [hit.to_json() for hit in self.hits],
            "query": self.query,
            "instruction": self.instruction,
            "collection": self.collection,
            "model": self.model,
            "top_k": self.top_k,
            "score_threshold": self.score_threshold,
            "filters": dict(self.filters),
            "mode": self.mode,
            "note": self.note,
        }


def validate_query(query: str) -> str:
    """Check a query's text and return it stripped.

    Args:
        query: the query as typed.

    Returns:
        The query without outer whitespace.

    Raises:
        QueryError: the query is not a string, is empty or blank, or is longer than
            :data:`MAX_QUERY_CHARS` characters.
    """
    if not isinstance(query, str):
        raise QueryError(f"the query must be text, got {type(query).__name__}")
    cleaned = query.strip()
    if not cleaned:
        raise QueryError("the query is empty; type a question or a few words to search for")
    if len(cleaned) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is {len(cleaned)} characters long; the limit is {MAX_QUERY_CHARS}. "
            "Shorten it to the question you want answered."
        )
    return cleaned


def _check_options(top_k: int, score_threshold: float | None) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise QueryError(f"top_k={top_k!r} is not valid; use a whole number from 1 to {MAX_TOP_K}")
    if score_threshold is not None and not -1.0 <= score_threshold <= 1.0:
        raise QueryError(f"score threshold {score_threshold!r} is out of range; cosine scores lie in [-1, 1]")


def build_filter(documents: Sequence[str] | None = None, domain: str | None = None) -> models.Filter | None:
    """The Qdrant filter for a document and domain restriction.

    Args:
        documents: file names or sources; a chunk matches when its ``file_name`` or its
            ``source`` is one of them. ``None`` or empty: all documents.
        domain: only chunks ingested with this domain; ``None``: any domain.

    Returns:
        The filter, or ``None`` when nothing is restricted.
    """
    from qdrant_client import models

    must: list[Any] = []
    names = sorted({name for name in documents or () if name})
    if names:
        must.append(
            models.Filter(
                should=[
                    models.FieldCondition(key="metadata.file_name", match=models.MatchAny(any=names)),
                    models.FieldCondition(key="metadata.source", match=models.MatchAny(any=names)),
                ]
            )
        )
    if domain is not None:
        must.append(models.FieldCondition(key="metadata.domain", match=models.MatchValue(value=domain)))
    return models.Filter(must=must) if must else None


def _committed_hashes(store: VectorStore, sources: set[str]) -> dict[str, str]:
    """``source -> file_sha256`` of the completely stored files among ``sources``."""
    if not sources:
        return {}
    if not store.client.collection_exists(store.manifest_collection):
        return {}
    records = store.client.retrieve(
        store.manifest_collection,
        ids=[manifest_point_id(source) for source in sorted(sources)],
        with_payload=["source", "file_sha256"],
    )
    found: dict[str, str] = {}
    for record in records:
        payload = record.payload or {}
        source, sha = payload.get("source"), payload.get("file_sha256")
        if isinstance(source, str) and isinstance(sha, str):
            found[source] = sha
    return found


def _file_sha(point: Any) -> str | None:
    meta = (point.payload or {}).get("metadata") or {}
    sha = meta.get("file_sha256")
    return sha if isinstance(sha, str) else None


def _to_hit(point: Any) -> Hit:
    payload = point.payload or {}
    meta = payload.get("metadata") or {}
    page = meta.get("page")
    return Hit(
        id=str(point.id),
        score=float(point.score),
        text=str(payload.get("page_content", "")),
        file_name=str(meta.get("file_name", "")),
        page=int(page) if page is not None else None,
        chunk_index=int(meta.get("chunk_index", 0)),
        source=str(meta.get("source", "")),
        domain=str(meta.get("domain", "")),
    )


def check_embedder(store: VectorStore, record: CollectionRecord, embedder: Embedder) -> None:
    """Refuse to search a collection with a model other than the one that built it.

    Raises:
        CollectionMismatchError: model, dimension or normalisation differ.
    """
    expected = record.model_copy(
        update={"model": embedder.model_id, "dimension": embedder.dimension, "normalize": embedder.normalize}
    )
    store.check(record, expected, check_instructions=False)


def search(
    query: str,
    *,
    store: VectorStore,
    embedder: Embedder,
    top_k: int = 5,
    score_threshold: float | None = None,
    documents: Sequence[str] | None = None,
    domain: str | None = None,
    mode: str = "dense",
    fusion: str = "dbsf",
    candidates: int = 100,
    fallback: bool = False,
    rrf_k: int | None = None,
    weights: Mapping[str, float] | None = None,
    local_index: bool = True,
) -> SearchResult:
    """Search a collection for the chunks closest to a query.

    Args:
        query: the question or keywords.
        store: the collection to search.
        embedder: the model that built the collection.
        top_k: most hits to return (1 to :data:`MAX_TOP_K`).
        score_threshold: leave out hits scoring below this (cosine similarity).
        documents: only these files (file names or sources).
        domain: only chunks ingested with this domain.
        mode: the retrieval mode (a key of :data:`MODES`).
        fusion: ``rrf`` or ``dbsf``, for the modes that fuse several representations.
        candidates: hits each fused representation contributes (at least the hits needed).
        fallback: when the collection lacks the mode's representations, search ``dense``
            instead (and say so in :attr:`SearchResult.note`) rather than raising; for a mode
            that comes from the settings' default rather than from the user.
        rrf_k: rank constant of ``rrf`` (``None``: Qdrant's default).
        weights: per-representation weights of ``rrf`` (missing names weigh 1).
        local_index: in the embedded / in-memory store, score with the in-process index of
            :mod:`retrieval.local_index` (exact; the same hits as Qdrant local, many times faster)
            rather than Qdrant local's per-query scan. Filtered searches always ask Qdrant.

    Returns:
        The hits, best first, and the instruction and mode the query ran with.

    Raises:
        QueryError: the query is empty, blank or too long, or an option is out of range.
        ModeUnavailableError: the collection was not built with the mode's representations.
        CollectionNotFoundError: the collection does not exist; the message says how to create it.
        CollectionMismatchError: the embedder is not the model that built the collection.
    """
    started = time.perf_counter()
    text = validate_query(query)
    _check_options(top_k, score_threshold)
    if fusion not in ("rrf", "dbsf"):
        raise QueryError(f"fusion {fusion!r} is not known; use rrf or dbsf")
    record = store.require_record()
    check_embedder(store, record, embedder)
    note = None
    try:
        components = mode_components(mode, record)
    except ModeUnavailableError as exc:
        if not fallback:
            raise
        note = f"mode {mode!r} is not available in this collection; searched 'dense' instead ({exc})"
        mode, components = "dense", ("dense",)
    if score_threshold is not None and mode not in COSINE_MODES:
        raise QueryError(
            f"a score threshold only applies to modes scored by cosine similarity "
            f"({', '.join(sorted(COSINE_MODES))}); mode {mode!r} is not. Drop the threshold or change the mode."
        )
    instruction = record.instruction_set.query
    dense_vector = _dense_query(text, embedder, instruction) if set(components) - {"sparse"} else None
    sparse_query = None
    if "sparse" in components and record.representations.sparse is not None:
        from qdrant_client import models

        indices, values = _sparse_encoder(record.representations.sparse).query(text)
        sparse_query = models.SparseVector(indices=indices, values=values)
    query_filter = build_filter(documents, domain)
    index = None
    if local_index and store.local and query_filter is None:
        from retrieval.local_index import acquire

        index = acquire(store.client, store.collection)
    request = _Request(
        components=tuple(components),
        dense_vector=dense_vector,
        sparse_query=sparse_query,
        score_threshold=score_threshold,
        limit=max(2 * top_k, 10),
        offset=0,
        fusion=fusion,
        candidates=candidates,
        rrf_k=rrf_k,
        weights=weights,
    )
    return SearchResult(
        query=text,
        hits=_committed_hits(store, request, top_k, query_filter=query_filter, index=index),
        instruction=instruction,
        collection=store.collection,
        model=embedder.model_id,
        top_k=top_k,
        score_threshold=score_threshold,
        seconds=time.perf_counter() - started,
        filters={"documents": list(documents or []), "domain": domain},
        mode=mode,
        note=note,
    )


def _dense_query(text: str, embedder: Embedder, instruction: str | None) -> list[float]:
    """The query's vector under the collection's query instruction.

    Raises:
        QueryError: the query and the instruction together pass the model's token limit.
    """
    budget = embedder.token_budget(instruction)
    # No tokenizer makes more than two tokens of one UTF-8 byte: short queries need no count.
    tokens = embedder.count_tokens(text) if 2 * len(text.encode("utf-8")) > budget else 0
    if tokens > budget:
        raise QueryError(
            f"the query is {tokens} tokens long; {embedder.model_id} takes at most {budget} tokens "
            "together with the collection's query instruction. Shorten the query."
        )
    vector: list[float] = embedder.embed([text], instruction)[0].tolist()
    return vector


def _committed_hits(
    store: VectorStore,
    first: _Request,
    top_k: int,
    *,
    query_filter: models.Filter | None,
    index: LocalIndex | None,
) -> list[Hit]:
    """Up to ``top_k`` hits of completely stored files, in rounds of ``first.limit`` candidates.

    Pending chunks never reach this (Qdrant and the index leave them out); what is dropped here
    is the short window of a replacement or a removal: a chunk whose file's manifest now has
    another content hash, or none.
    """
    hits: list[Hit] = []
    seen: set[str] = set()
    batch = first.limit
    for round_index in range(_MAX_ROUNDS):
        offset = round_index * batch
        request = replace(first, offset=offset, candidates=max(first.candidates, offset + batch))
        response = _query(store, request, query_filter=query_filter, index=index)
        found = [(_to_hit(point), _file_sha(point)) for point in response.points]
        committed = _committed_hashes(store, {hit.source for hit, _ in found})
        for hit, sha in found:
            if hit.id in seen or committed.get(hit.source) != sha:
                continue  # a file being replaced or removed
            seen.add(hit.id)
            hits.append(hit)
            if len(hits) == top_k:
                return hits
        if len(response.points) < batch:
            break
    return hits


@dataclass(frozen=True)
class _Request:
    """One round of a search: what to rank by and how much to return."""

    components: tuple[str, ...]
    dense_vector: list[float] | None
    sparse_query: models.SparseVector | None
    score_threshold: float | None
    limit: int
    offset: int
    fusion: str
    candidates: int
    rrf_k: int | None = None
    weights: Mapping[str, float] | None = None

    def has_terms(self) -> bool:
        """Whether the query has indexed terms (otherwise it matches nothing lexically)."""
        return self.sparse_query is not None and bool(self.sparse_query.indices)

    def rrf_weights(self, used: Sequence[str]) -> list[float] | None:
        """Per-ranking RRF weights of the representations fused, in order (``None``: all 1)."""
        if not self.weights:
            return None
        return [float(self.weights.get(name, 1.0)) for name in used]


def _query(
    store: VectorStore, request: _Request, *, query_filter: models.Filter | None, index: LocalIndex | None
) -> Any:
    """One ``query_points`` call: a single representation, or a fusion of one prefetch each.

    With an in-process ``index`` (embedded store, no filter), the same ranking is computed by the
    index instead. Either way pending chunks are left out: Qdrant gets
    :func:`store.core.committed_filter` in the query and in every prefetch, and the index
    masks them.
    """
    from qdrant_client import models
    from qdrant_client.http.models import QueryResponse  # qdrant_client.models' is fastembed's

    if index is not None:
        ranked = _query_index(index, request)
        if ranked is not None:
            from retrieval.local_index import fetch

            return QueryResponse(points=fetch(store.client, store.collection, ranked))
    visible = committed_filter(query_filter)

    def query_of(name: str) -> tuple[Any, str | None]:
        if name == "sparse":
            return (request.sparse_query if request.has_terms() else None), SPARSE_VECTOR
        if name == "sentences":
            return [request.dense_vector], SENTENCE_VECTOR  # a one-vector multivector query: MaxSim
        return request.dense_vector, _VECTOR_NAMES.get(name)  # dense: the unnamed default vector

    if len(request.components) == 1:
        query, using = query_of(request.components[0])
        if query is None:  # a query without any indexed term matches nothing lexically
            return QueryResponse(points=[])
        return store.client.query_points(
            store.collection,
            query=query,
            using=using,
            query_filter=visible,
            score_threshold=request.score_threshold,
            limit=request.limit,
            offset=request.offset,
            with_payload=True,
        )
    prefetch = []
    used: list[str] = []
    for name in request.components:
        query, using = query_of(name)
        if query is not None:
            used.append(name)
            prefetch.append(
                models.Prefetch(query=query, using=using, filter=visible, limit=request.candidates)
            )
    fused: Any
    if request.fusion == "dbsf":
        fused = models.FusionQuery(fusion=models.Fusion.DBSF)
    elif request.rrf_k is not None or request.weights:
        fused = models.RrfQuery(rrf=models.Rrf(k=request.rrf_k, weights=request.rrf_weights(used)))
    else:
        fused = models.FusionQuery(fusion=models.Fusion.RRF)
    return store.client.query_points(
        store.collection,
        prefetch=prefetch,
        query=fused,
        query_filter=visible,
        limit=request.limit,
        offset=request.offset,
        with_payload=True,
    )


def _query_index(index: LocalIndex, request: _Request) -> list[tuple[Any, float]] | None:
    """:func:`_query`'s ranking from the in-process index; ``None`` if it lacks a vector."""
    from retrieval.local_index import fuse

    dense_vector, sparse_query = request.dense_vector, request.sparse_query

    def rank(name: str, size: int) -> list[tuple[Any, float]] | None:
        if name == "sparse":
            if not index.supports(SPARSE_VECTOR, "sparse"):
                return None
            if sparse_query is None or not request.has_terms():
                return []
            return index.search_sparse(sparse_query.indices, sparse_query.values, SPARSE_VECTOR, size)
        if dense_vector is None:
            return None
        if name == "sentences":
            if not index.supports(SENTENCE_VECTOR, "multi"):
                return None
            return index.search_maxsim(dense_vector, SENTENCE_VECTOR, size)
        using = _VECTOR_NAMES.get(name, "")
        if not index.supports(using, "dense"):
            return None
        return index.search_dense(dense_vector, using, size)

    limit, offset = request.limit, request.offset
    if len(request.components) == 1:
        ranked = rank(request.components[0], limit + offset)
        if ranked is None:
            return None
        if request.score_threshold is not None:
            threshold = request.score_threshold
            ranked = [(pid, score) for pid, score in ranked if score > threshold]  # as Qdrant local
        return ranked[offset : offset + limit]
    rankings: list[list[tuple[Any, float]]] = []
    used: list[str] = []
    for name in request.components:
        ranking = rank(name, request.candidates)
        if ranking is None:
            return None
        if name == "sparse" and not request.has_terms():
            continue  # as in _query: a query without indexed terms has no lexical prefetch
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


__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TOP_K",
    "MODES",
    "Hit",
    "SearchOptions",
    "SearchResult",
    "available_modes",
    "build_filter",
    "mode_components",
    "options_from",
    "search",
    "validate_query",
]
