"""The one search function: the CLI, the Streamlit page and the tests all call :func:`search`.

A search is a few steps: validate the query and options; choose the retrieval *mode* (one
representation, or several fused; :mod:`retrieval.modes`); embed the query in each
representation the mode ranks by, under the query instruction recorded in the collection's
metadata (never under whatever the current settings would build, so a collection is always
searched the way it was indexed); retrieve through Qdrant's query API or the in-process index
of the embedded store, which answer the same :class:`retrieval.retriever.Request`
(:mod:`retrieval.qdrant`, :mod:`retrieval.local`); and keep only chunks of completely stored
files.

Chunks still flagged pending (an ingest still running, or one that was interrupted; see
:data:`store.payload.PENDING_KEY`) are excluded inside Qdrant's query and by the in-process
index, so however many there are they never take the place of stored ones; and a hit whose
file has no matching manifest (a file being replaced or removed) is left out afterwards, so a
search that runs while a file is being ingested or replaced never sees half a file or two
versions of it. A mode the collection was not built for is refused with the modes it does offer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from representations.base import QueryVector
from representations.registry import REGISTRY
from retrieval.errors import QueryError
from retrieval.filters import build_filter
from retrieval.local import LocalRetriever
from retrieval.local_index import acquire
from retrieval.modes import check_mode, check_threshold, check_weights, choose_mode
from retrieval.qdrant import QdrantRetriever
from retrieval.retriever import Request, Retriever
from store.payload import (
    CHAR_END,
    CHAR_START,
    CHUNK_INDEX,
    CONTENT_KEY,
    DOMAIN,
    FILE_NAME,
    FILE_SHA256,
    OCR,
    PAGE,
    SOURCE,
    metadata_of,
)
from store.record import CollectionRecord

if TYPE_CHECKING:
    from config import SearchSettings
    from embedder import Embedder
    from store.core import VectorStore

#: Longest accepted query in characters (a query is a question, not a document).
MAX_QUERY_CHARS = 2000
#: Largest accepted ``top_k``.
MAX_TOP_K = 1000
#: Most query rounds spent looking for hits of completely stored files.
_MAX_ROUNDS = 4


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
        file_sha256: hex sha256 of the file's bytes (``""`` when unknown).
        ocr: whether the text of the chunk's page came from OCR.
        char_start: offset of the chunk's first character in the file's extracted text.
        char_end: offset just past the chunk's last character.
    """

    id: str
    score: float
    text: str
    file_name: str
    page: int | None
    chunk_index: int
    source: str = ""
    domain: str = ""
    file_sha256: str = ""
    ocr: bool = False
    char_start: int | None = None
    char_end: int | None = None

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
            "ocr": self.ocr,
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


def check_options(
    mode: str, top_k: int, score_threshold: float | None, fusion: str, weights: Mapping[str, float] | None
) -> None:
    """Check the options of a search that need no collection (see :func:`search` for each).

    Raises:
        QueryError: the mode is unknown or an option is out of range; the message names the valid values.
    """
    check_mode(mode)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise QueryError(f"top_k={top_k!r} is not valid; use a whole number from 1 to {MAX_TOP_K}")
    if score_threshold is not None and not -1.0 <= score_threshold <= 1.0:
        raise QueryError(f"score threshold {score_threshold!r} is out of range; cosine scores lie in [-1, 1]")
    if fusion not in ("rrf", "dbsf"):
        raise QueryError(f"fusion {fusion!r} is not known; use rrf or dbsf")
    check_weights(weights)


def _file_sha(point: Any) -> str | None:
    sha = metadata_of(point.payload).get(FILE_SHA256)
    return sha if isinstance(sha, str) else None


def _to_hit(point: Any) -> Hit:
    payload = point.payload or {}
    meta = metadata_of(payload)
    page = meta.get(PAGE)
    start, end = meta.get(CHAR_START), meta.get(CHAR_END)
    return Hit(
        id=str(point.id),
        score=float(point.score),
        text=str(payload.get(CONTENT_KEY, "")),
        file_name=str(meta.get(FILE_NAME, "")),
        page=int(page) if page is not None else None,
        chunk_index=int(meta.get(CHUNK_INDEX, 0)),
        source=str(meta.get(SOURCE, "")),
        domain=str(meta.get(DOMAIN, "")),
        file_sha256=str(meta.get(FILE_SHA256) or ""),
        ocr=meta.get(OCR) is True,
        char_start=int(start) if start is not None else None,
        char_end=int(end) if end is not None else None,
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
    record: CollectionRecord | None = None,
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
        mode: the retrieval mode (a key of :data:`retrieval.modes.MODES`).
        fusion: ``rrf`` or ``dbsf``, for the modes that fuse several representations.
        candidates: hits each fused representation contributes (at least the hits needed).
        fallback: search ``dense`` (and say so in :attr:`SearchResult.note`) rather than raise
            when the collection lacks the mode's representations (a mode from the settings).
        rrf_k: rank constant of ``rrf`` (``None``: Qdrant's default).
        weights: per-representation weights of ``rrf`` (missing names weigh 1).
        local_index: score unfiltered searches of an embedded store in process (:mod:`retrieval.local`).
        record: the collection's record if already read (still checked against the embedder).

    Returns: the hits, best first, and the instruction and mode the query ran with.

    Raises:
        QueryError: the query is empty, blank or too long, the mode is unknown, or an option
            is out of range; the message names the valid values.
        ModeUnavailableError: the collection was not built with the mode's representations.
        CollectionNotFoundError: the collection does not exist; the message says how to create it.
        CollectionMismatchError: the embedder is not the model that built the collection.
    """
    started = time.perf_counter()
    text = validate_query(query)
    check_options(mode, top_k, score_threshold, fusion, weights)
    record = store.require_record() if record is None else record
    check_embedder(store, record, embedder)
    mode, components, note = choose_mode(mode, record, fallback=fallback)
    check_threshold(mode, score_threshold)
    query_filter = build_filter(documents, domain)
    request = Request(
        queries=embed_query(text, components, record, embedder),
        limit=max(2 * top_k, 10),
        score_threshold=score_threshold,
        fusion=fusion,
        candidates=candidates,
        rrf_k=rrf_k,
        weights=weights,
        filter=query_filter,
    )
    retriever = open_retriever(store, in_process=local_index and query_filter is None)
    return SearchResult(
        query=text,
        hits=committed_hits(store, retriever, request, top_k),
        instruction=record.instruction_set.query,
        collection=store.collection,
        model=embedder.model_id,
        top_k=top_k,
        score_threshold=score_threshold,
        seconds=time.perf_counter() - started,
        filters={"documents": list(documents or []), "domain": domain},
        mode=mode,
        note=note,
    )


def embed_query(
    text: str, components: Sequence[str], record: CollectionRecord, embedder: Embedder
) -> tuple[tuple[str, QueryVector], ...]:
    """The query in each representation a mode ranks by.

    The dense embedding (under the collection's query instruction) is computed once, and only
    if a representation needs it (BM25 does not).

    Raises:
        QueryError: the query and the instruction together pass the model's token limit.
    """
    representations = [REGISTRY[name] for name in components]
    dense = (
        _dense_query(text, embedder, record.instruction_set.query)
        if any(rep.needs_dense_query for rep in representations)
        else None
    )
    return tuple(
        (rep.name, rep.query(rep.own(record.representations.get(rep.name)), text, dense))
        for rep in representations
    )


def open_retriever(store: VectorStore, *, in_process: bool) -> Retriever:
    """Qdrant, or the in-process index (embedded store, ``in_process``, index not being rebuilt)."""
    qdrant = QdrantRetriever(store.client, store.collection)
    if not (in_process and store.local):
        return qdrant
    index = acquire(store.client, store.collection)
    if index is None:  # writes are still coming in: Qdrant answers
        return qdrant
    return LocalRetriever(index, store.client, store.collection, fallback=qdrant)


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


def committed_hits(store: VectorStore, retriever: Retriever, first: Request, top_k: int) -> list[Hit]:
    """Up to ``top_k`` hits of completely stored files, in pages of ``first.limit`` candidates.

    Pending chunks never reach this (Qdrant and the index leave them out); what is dropped here
    is the short window of a replacement or a removal: a chunk whose file's manifest now has
    another content hash, or none.
    """
    hits: list[Hit] = []
    seen: set[str] = set()
    for page in range(_MAX_ROUNDS):
        points = retriever.retrieve(first.page(page))
        found = [(_to_hit(point), _file_sha(point)) for point in points]
        committed = store.manifests.committed_hashes({hit.source for hit, _ in found})
        for hit, sha in found:
            if hit.id in seen or committed.get(hit.source) != sha:
                continue  # a file being replaced or removed
            seen.add(hit.id)
            hits.append(hit)
            if len(hits) == top_k:
                return hits
        if len(points) < first.limit:
            break
    return hits


__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TOP_K",
    "Hit",
    "SearchOptions",
    "SearchResult",
    "check_embedder",
    "check_options",
    "committed_hits",
    "embed_query",
    "open_retriever",
    "options_from",
    "search",
    "validate_query",
]
