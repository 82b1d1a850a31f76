"""The dense chunk vector: the embedding of the chunk under the document instruction.

Every collection has it, as Qdrant's unnamed default vector (which ``langchain_qdrant`` reads);
the ingest pipeline embeds it itself, so it needs no encoder.
"""

from __future__ import annotations

from representations.base import (
    BuildContext,
    Encoder,
    QueryVector,
    RecordContext,
    Representation,
    RepresentationRecord,
    VectorSchema,
)

#: The unnamed default vector.
DENSE_VECTOR = ""


class DenseRecord(RepresentationRecord):
    """The dense chunk vector (not stored: every collection has it)."""

    vector: str = DENSE_VECTOR


class DenseRepresentation(Representation[DenseRecord]):
    """The dense chunk vector, scored by cosine similarity."""

    name = "dense"
    record_type = DenseRecord
    vector = DENSE_VECTOR

    def stored(self, value: object) -> DenseRecord:
        """Always present: every collection has the dense chunk vector."""
        return DenseRecord()

    def configure(self, context: RecordContext) -> DenseRecord | None:
        """Nothing to record: the dense vector is part of every collection."""
        return None

    def schema(self, record: DenseRecord, dimension: int) -> VectorSchema:
        """The unnamed default vector, cosine."""
        from qdrant_client import models

        return VectorSchema(
            vectors={DENSE_VECTOR: models.VectorParams(size=dimension, distance=models.Distance.COSINE)}
        )

    def encoder(self, record: DenseRecord, context: BuildContext) -> Encoder | None:
        """None: the pipeline embeds the dense vectors itself."""
        return None

    def query(self, record: DenseRecord, text: str, dense: list[float] | None) -> QueryVector:
        """The query's embedding against the default vector."""
        return QueryVector(kind="dense", using=DENSE_VECTOR, dense=dense)
