"""What a collection was built with: the record kept in its Qdrant metadata, and the checks against it.

A collection's metadata holds, under :data:`RECORD_KEY`, a :class:`CollectionRecord` (model,
instructions, dimension, chunking, representations), which every later ingest and search
checks: a collection built with another model or other instructions is refused with a message
that says what differs and how to go on.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from embedder import InstructionSet
from representations.records import RepresentationsRecord, representations_record
from store.errors import CollectionMismatchError

if TYPE_CHECKING:
    from config import Settings
    from embedder import Embedder

SCHEMA_VERSION = 1
#: Key of the record in the collection's Qdrant metadata.
RECORD_KEY = "instructor_search"


class ChunkingRecord(BaseModel):
    """How the collection's documents were chunked."""

    model_config = ConfigDict(extra="allow")

    size: int
    overlap: int
    unit: str = "model tokens"
    splitter: str = "langchain_text_splitters.RecursiveCharacterTextSplitter"


class CollectionRecord(BaseModel):
    """What a collection was built with; stored as the Qdrant collection metadata.

    Attributes:
        model: model id (hub name, folder, or the bundled default's name).
        dimension: vector size.
        normalize: whether vectors were L2-normalised.
        domain: the domain the instructions were built for.
        instructions: query and document instructions (``None`` = no instruction).
        chunking: chunk size and overlap.
        distance: the vector distance.
        representations: the representations besides the dense vector (sparse, sentences,
            keywords, questions); a record written before they existed has none.
        created_at: ISO time of creation.
    """

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    app: str = "instructor-search"
    model: str
    dimension: int
    normalize: bool
    domain: str = ""
    instructions: dict[str, str | None]
    chunking: ChunkingRecord
    distance: str = "cosine"
    representations: RepresentationsRecord = Field(default_factory=RepresentationsRecord)
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def instruction_set(self) -> InstructionSet:
        """The recorded instructions."""
        return InstructionSet(
            query=self.instructions.get("query"), document=self.instructions.get("document")
        )

    def mismatches(self, expected: CollectionRecord, *, check_instructions: bool = True) -> list[str]:
        """Differences that make ``expected`` incompatible with this (found) record."""
        problems: list[str] = []
        if self.model != expected.model:
            problems.append(f"model: found {self.model!r}, expected {expected.model!r}")
        if self.dimension != expected.dimension:
            problems.append(f"dimension: found {self.dimension}, expected {expected.dimension}")
        if self.normalize != expected.normalize:
            problems.append(f"normalize: found {self.normalize}, expected {expected.normalize}")
        if check_instructions:
            for role in ("query", "document"):
                found, wanted = self.instructions.get(role), expected.instructions.get(role)
                if found != wanted:
                    problems.append(f"{role} instruction: found {found!r}, expected {wanted!r}")
        return problems


def expected_record(settings: Settings, embedder: Embedder, *, domain: str | None = None) -> CollectionRecord:
    """The record a collection built now, with these settings and this embedder, would have.

    Args:
        settings: the settings (instructions and chunking sections are used).
        embedder: the embedder (model id, dimension, normalisation).
        domain: overrides ``settings.instructions.domain``.

    Returns:
        The record.
    """
    chosen_domain = settings.instructions.domain if domain is None else domain
    instructions = InstructionSet.for_retrieval(
        chosen_domain,
        query=settings.instructions.query,
        document=settings.instructions.document,
        enabled=settings.instructions.enabled,
    )
    return CollectionRecord(
        model=embedder.model_id,
        dimension=embedder.dimension,
        normalize=embedder.normalize,
        domain=chosen_domain,
        instructions=instructions.as_dict(),
        chunking=ChunkingRecord(size=settings.chunk.size, overlap=settings.chunk.overlap),
        representations=representations_record(
            settings.index,
            keyword_instruction=InstructionSet.for_keywords(
                chosen_domain, enabled=settings.instructions.enabled
            ),
            question_instruction=instructions.query,
        ),
    )


def record_metadata(record: CollectionRecord) -> dict[str, Any]:
    """The Qdrant collection metadata that holds ``record``."""
    return {RECORD_KEY: record.model_dump(mode="json")}


def record_from_metadata(collection: str, metadata: dict[str, Any] | None) -> CollectionRecord:
    """The record in a collection's Qdrant metadata.

    Raises:
        CollectionMismatchError: the metadata holds no record (another tool made the collection).
    """
    record = (metadata or {}).get(RECORD_KEY)
    if not isinstance(record, dict):
        raise CollectionMismatchError(
            f"collection {collection!r} exists but has no instructor-search record "
            "(it was created by another tool). Fix: choose another collection name (--collection)."
        )
    return CollectionRecord.model_validate(record)


def check_compatible(
    collection: str, found: CollectionRecord, expected: CollectionRecord, *, check_instructions: bool = True
) -> None:
    """Refuse to use a collection built differently from ``expected``.

    Raises:
        CollectionMismatchError: with found/expected/fix.
    """
    problems = found.mismatches(expected, check_instructions=check_instructions)
    if problems:
        raise CollectionMismatchError(
            f"collection {collection!r} was built differently: " + "; ".join(problems) + ". "
            "Fix: use the same model and instructions as the collection (see `instructor-search "
            "collections info`), or write to a new collection with --collection NEW_NAME."
        )


def with_keyword_weights(
    collection: str, record: CollectionRecord, chunk_weight: float, keyword_weight: float
) -> CollectionRecord:
    """``record`` with new weights of its keyword-augmented vectors.

    Raises:
        CollectionMismatchError: the collection has no keyword vectors, or the weights are
            negative or sum to zero.
    """
    rec = record.representations.keywords
    if rec is None:
        raise CollectionMismatchError(
            f"collection {collection!r} has no keyword vectors to re-weight; ingest into a new "
            "collection with INSTRUCTOR_SEARCH_INDEX__KEYWORDS__ENABLED=true"
        )
    if chunk_weight < 0 or keyword_weight < 0 or chunk_weight + keyword_weight <= 0:
        raise CollectionMismatchError(
            f"keyword weights ({chunk_weight}, {keyword_weight}) are not valid: use non-negative "
            "weights with a positive sum"
        )
    keywords = rec.model_copy(update={"chunk_weight": chunk_weight, "keyword_weight": keyword_weight})
    representations = record.representations.model_copy(update={"keywords": keywords})
    return record.model_copy(update={"representations": representations})
