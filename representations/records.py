"""What a collection records about its representations, and the Qdrant schema that follows.

The record is stored in the collection's metadata; a collection is always searched and extended
the way its record says, whatever the current settings would build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from representations.augmented import KeywordRecord, QuestionRecord
from representations.base import RecordContext, RepresentationRecord, VectorSchema
from representations.dense import DENSE_VECTOR
from representations.registry import REGISTRY
from representations.sentences import SentenceRecord
from representations.sparse import SparseEncoder, SparseRecord

if TYPE_CHECKING:
    from qdrant_client import models

    from config import IndexSettings


class RepresentationsRecord(BaseModel):
    """Which representations a collection has besides the dense chunk vector (``None``: absent).

    The built-in representations are typed fields; a representation registered later keeps its
    record as an extra field under its name (read back through :meth:`get`).
    """

    model_config = ConfigDict(extra="allow")

    sparse: SparseRecord | None = None
    sentences: SentenceRecord | None = None
    keywords: KeywordRecord | None = None
    questions: QuestionRecord | None = None

    def get(self, name: str) -> RepresentationRecord | None:
        """The record of representation ``name`` (``None``: the collection lacks it).

        Raises:
            RepresentationError: no representation of that name is registered.
        """
        value = (
            getattr(self, name, None)
            if name in type(self).model_fields
            else (self.model_extra or {}).get(name)
        )
        return REGISTRY[name].stored(value)

    def available(self) -> list[str]:
        """Names of the representations present, ``dense`` first."""
        return [rep.name for rep in REGISTRY if self.get(rep.name) is not None]


def representations_record(
    index: IndexSettings,
    *,
    keyword_instruction: str | None,
    question_instruction: str | None,
) -> RepresentationsRecord:
    """The record of the representations these settings build.

    Args:
        index: the ``index`` settings section.
        keyword_instruction: the instruction key phrases are embedded under.
        question_instruction: the instruction generated questions are embedded under.

    Returns:
        The record; questions are absent when no generator is configured.
    """
    context = RecordContext(
        index=index, keyword_instruction=keyword_instruction, question_instruction=question_instruction
    )
    fields: dict[str, Any] = {}
    for rep in REGISTRY:
        record = rep.configure(context)
        if record is not None or rep.name in RepresentationsRecord.model_fields:
            fields[rep.name] = record
    return RepresentationsRecord(**fields)


def with_sparse_avg_length(
    representations: RepresentationsRecord, texts: Sequence[str]
) -> RepresentationsRecord:
    """The record with a BM25 average length estimated from ``texts`` if its sparse part has none.

    Args:
        representations: a collection's representations.
        texts: sample documents (e.g. the first batch of an ingest).

    Returns:
        ``representations`` itself when there is nothing to estimate, else an updated copy.
    """
    sparse = representations.sparse
    if sparse is None or sparse.avg_length is not None:
        return representations
    estimate = round(SparseEncoder.from_record(sparse).estimate_avg_length(texts), 2)
    return representations.model_copy(update={"sparse": sparse.model_copy(update={"avg_length": estimate})})


def collection_schema(
    representations: RepresentationsRecord, dimension: int
) -> tuple[models.VectorParams | dict[str, models.VectorParams], dict[str, models.SparseVectorParams] | None]:
    """The ``vectors_config`` and ``sparse_vectors_config`` of a new collection.

    Every representation the record has adds its vectors. The dense chunk vector stays the
    unnamed default vector (which ``langchain_qdrant`` reads): alone, it is the collection's
    only (unnamed) vector.

    Args:
        representations: the collection's representations.
        dimension: the embedding dimension.

    Returns:
        ``(vectors_config, sparse_vectors_config)``, as :meth:`QdrantClient.create_collection` takes them.
    """
    schema = VectorSchema()
    for rep in REGISTRY:
        record = representations.get(rep.name)
        if record is not None:
            part = rep.schema(record, dimension)
            schema.vectors.update(part.vectors)
            schema.sparse.update(part.sparse)
    named = {name: params for name, params in schema.vectors.items() if name != DENSE_VECTOR}
    vectors = {DENSE_VECTOR: schema.vectors[DENSE_VECTOR], **named} if named else schema.vectors[DENSE_VECTOR]
    return vectors, schema.sparse or None
