"""Builds a batch's extra named vectors and payload fields, as a collection's record says."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from representations.augmented import QuestionGenerator
from representations.base import BuildContext, Encoder
from representations.records import RepresentationsRecord
from representations.registry import REGISTRY

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from embedder import Embedder


@dataclass
class BuildStats:
    """Cost of the extra representations during one ingest run.

    Attributes:
        seconds: wall time spent per representation (extraction and embedding).
        items: what was produced per representation (sparse non-zeros, sentences, key phrases,
            questions).
    """

    seconds: dict[str, float] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, seconds: float, items: int) -> None:
        """Count the cost of one batch of a representation."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.items[name] = self.items.get(name, 0) + items

    def to_json(self) -> dict[str, Any]:
        """``{"seconds": {...}, "items": {...}}``."""
        return {"seconds": {k: round(v, 2) for k, v in self.seconds.items()}, "items": dict(self.items)}


class RepresentationBuilder:
    """Builds a batch's extra named vectors, as a collection's record says.

    Every registered representation the record has builds its part, in registry order; the
    models they need are loaded on the first batch.

    Args:
        record: the collection's representations.
        embedder: the embedder (the same one as for the dense vectors).
        document_instruction: instruction of chunks (and their sentences).
        batch_size: texts per forward pass.
        generator: an already loaded question generator (``None``: loaded on first use).
    """

    def __init__(
        self,
        record: RepresentationsRecord,
        embedder: Embedder,
        document_instruction: str | None,
        *,
        batch_size: int = 32,
        generator: QuestionGenerator | None = None,
    ) -> None:
        self.record = record
        self.context = BuildContext(
            embedder=embedder,
            document_instruction=document_instruction,
            batch_size=batch_size,
            preloaded={"questions": generator} if generator is not None else {},
        )
        self.stats = BuildStats()
        self._encoders: dict[str, Encoder] | None = None

    def extra_keys(self) -> bool:
        """Whether points get named vectors (otherwise the dense vector alone, unnamed)."""
        return len(self.record.available()) > 1

    def encoders(self) -> dict[str, Encoder]:
        """The encoder of every representation the record has (opened on first use)."""
        if self._encoders is None:
            encoders: dict[str, Encoder] = {}
            for rep in REGISTRY:
                rec = self.record.get(rep.name)
                encoder = rep.encoder(rec, self.context) if rec is not None else None
                if encoder is not None:
                    encoders[rep.name] = encoder
            self._encoders = encoders
        return self._encoders

    def build(
        self, texts: Sequence[str], dense: NDArray[np.float32]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The extra named vectors and payload fields of a batch of chunks.

        Args:
            texts: the chunks' texts.
            dense: their dense vectors, ``(len(texts), dimension)``.

        Returns:
            Per chunk: a ``{vector name: vector}`` dict (to merge with the dense vector under
            ``""``) and a dict of extra payload metadata (e.g. ``keywords``).
        """
        vectors: list[dict[str, Any]] = [{} for _ in texts]
        payloads: list[dict[str, Any]] = [{} for _ in texts]
        for name, encoder in self.encoders().items():
            started = time.perf_counter()
            built = encoder.build(texts, dense)
            for row, named in enumerate(built.vectors):
                vectors[row].update(named)
            for row, extra in enumerate(built.payloads):
                payloads[row].update(extra)
            self.stats.add(name, time.perf_counter() - started, built.items)
        return vectors, payloads
