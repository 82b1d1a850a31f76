"""What a representation of a chunk is: the interface every representation implements.

A *representation* is one way a chunk is stored in its Qdrant point (the dense chunk vector,
BM25 sparse vectors, sentence multivectors, augmented vectors, ...). Each one knows

* its **name** (the key of its record in a collection's metadata, and its retrieval mode);
* its **record type** (how it was built, stored with the collection so it is searched the same way);
* whether the current settings build it (:meth:`Representation.configure`);
* its **vector parameters** for the collection schema (:meth:`Representation.schema`);
* how it is **built** for a batch of chunks (:meth:`Representation.encoder`);
* how it is **queried**: which stored vector, and the query vector (:meth:`Representation.query`).

:class:`Registry` keeps them in order; :mod:`representations.registry` holds the registry the
product uses (one line per representation). Modeled on txtai's ``scoring/`` base, factory and
implementations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from representations.errors import RepresentationError

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from qdrant_client import models

    from config import IndexSettings
    from embedder import Embedder

#: How a stored vector is scored: a dense vector (cosine), a sparse vector (dot product under
#: Qdrant's IDF modifier) or a multivector (MaxSim of a one-vector query).
VectorKind = Literal["dense", "sparse", "multi"]


class RepresentationRecord(BaseModel):
    """How a representation was built; a collection stores one per representation it has.

    Attributes:
        vector: the name of the stored vector that is searched.
    """

    model_config = ConfigDict(extra="allow")

    vector: str


R = TypeVar("R", bound=RepresentationRecord)


@dataclass(frozen=True)
class RecordContext:
    """What the settings decide for a new collection's representations.

    Attributes:
        index: the ``index`` settings section.
        keyword_instruction: the instruction key phrases are embedded under.
        question_instruction: the instruction generated questions are embedded under.
    """

    index: IndexSettings
    keyword_instruction: str | None = None
    question_instruction: str | None = None


@dataclass(frozen=True)
class BuildContext:
    """What building the representations of a batch of chunks needs.

    Attributes:
        embedder: the embedder (the same one as for the dense vectors).
        document_instruction: instruction of chunks (and their sentences).
        batch_size: texts per forward pass.
        preloaded: already loaded models by representation name (e.g. the question generator,
            loaded before anything is written so that a missing model fails early).
    """

    embedder: Embedder
    document_instruction: str | None
    batch_size: int = 32
    preloaded: Mapping[str, object] = field(default_factory=dict)

    def embed(self, texts: Sequence[str], instruction: str | None) -> NDArray[np.float32]:
        """Embed texts under an instruction; ``(0, dimension)`` for no texts."""
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.asarray(self.embedder.embed(list(texts), instruction, batch_size=self.batch_size))


@dataclass
class Built:
    """A batch's vectors and payload fields of one representation.

    Attributes:
        vectors: per chunk, ``{vector name: vector}``.
        payloads: per chunk, extra payload metadata (e.g. ``keywords``); may be empty lists.
        items: what was produced (sparse non-zeros, sentences, key phrases, ...), for the stats.
    """

    vectors: list[dict[str, Any]]
    payloads: list[dict[str, Any]]
    items: int


class Encoder(ABC):
    """Builds one representation for batches of chunks (holds its loaded models)."""

    @abstractmethod
    def build(self, texts: Sequence[str], dense: NDArray[np.float32]) -> Built:
        """The representation of a batch of chunks.

        Args:
            texts: the chunks' texts.
            dense: their dense vectors, ``(len(texts), dimension)``.

        Returns:
            The vectors and payload fields, one entry per chunk.
        """


@dataclass(frozen=True)
class QueryVector:
    """A query in one representation: the stored vector it searches and the query's vector.

    Attributes:
        kind: how the stored vector is scored.
        using: the stored vector's name (``""``: the unnamed default vector).
        dense: the query vector (``dense`` and ``multi``).
        sparse: ``(indices, values)`` (``sparse``).
    """

    kind: VectorKind
    using: str
    dense: list[float] | None = None
    sparse: tuple[list[int], list[float]] | None = None

    def matches_nothing(self) -> bool:
        """Whether the query cannot match anything (a sparse query without any indexed term)."""
        return self.kind == "sparse" and not (self.sparse and self.sparse[0])


@dataclass(frozen=True)
class VectorSchema:
    """The vectors a representation adds to a collection's schema.

    Attributes:
        vectors: named dense / multivector parameters (``""``: the unnamed default vector).
        sparse: named sparse vector parameters.
    """

    vectors: dict[str, models.VectorParams] = field(default_factory=dict)
    sparse: dict[str, models.SparseVectorParams] = field(default_factory=dict)


class Representation(ABC, Generic[R]):
    """One representation of a chunk (see the module docstring).

    Attributes:
        name: the record key and retrieval mode name (e.g. ``sparse``).
        record_type: the record type it stores in the collection's metadata.
        vector: the name of the stored vector a query searches.
        kind: how that vector is scored.
        cosine: whether its scores are cosine similarities (a score threshold applies).
        needs_dense_query: whether a query needs the query's dense embedding.
        setting: how to build it, as an environment setting, for error messages.
    """

    name: str
    record_type: type[R]
    vector: str
    kind: VectorKind = "dense"
    cosine: bool = True
    needs_dense_query: bool = True
    setting: str = ""

    def stored(self, value: object) -> R | None:
        """The record a collection's metadata holds for this representation (``None``: absent).

        Args:
            value: what the collection's representations record holds under :attr:`name`
                (a record, a dict read back from a representation added after the record type,
                or ``None``).
        """
        return None if value is None else self.own(value)

    def own(self, record: object) -> R:
        """``record`` as this representation's record type (a stored dict is validated).

        Raises:
            RepresentationError: the record is missing or of another type.
        """
        if isinstance(record, self.record_type):
            return record
        if isinstance(record, Mapping):
            return self.record_type.model_validate(record)
        raise RepresentationError(
            f"the {self.name} representation needs a {self.record_type.__name__}, got {record!r}; "
            f"ingest into a collection built with {self.setting or self.name}"
        )

    @abstractmethod
    def configure(self, context: RecordContext) -> R | None:
        """The record a new collection built with these settings gets (``None``: not built)."""

    @abstractmethod
    def schema(self, record: R, dimension: int) -> VectorSchema:
        """The vectors this representation adds to the collection schema."""

    @abstractmethod
    def encoder(self, record: R, context: BuildContext) -> Encoder | None:
        """What builds it for batches of chunks (``None``: nothing beyond the dense vector)."""

    @abstractmethod
    def query(self, record: R, text: str, dense: list[float] | None) -> QueryVector:
        """The query in this representation.

        Args:
            record: the collection's record of this representation.
            text: the query text.
            dense: the query's dense embedding (``None`` when :attr:`needs_dense_query` is false).
        """


class Registry:
    """The representations, in order (``dense`` first); a new one is one :meth:`register` away.

    Args:
        representations: the representations, in the order modes and records list them.
    """

    def __init__(self, representations: Sequence[Representation[Any]]) -> None:
        self._items: dict[str, Representation[Any]] = {}
        for representation in representations:
            self.register(representation)

    def register(self, representation: Representation[Any]) -> None:
        """Add a representation (after the others).

        Raises:
            RepresentationError: a representation of that name is registered already.
        """
        if representation.name in self._items:
            raise RepresentationError(
                f"a representation named {representation.name!r} is registered already; choose another name"
            )
        self._items[representation.name] = representation

    def unregister(self, name: str) -> None:
        """Remove a representation (e.g. one a test registered)."""
        self._items.pop(name, None)

    @contextmanager
    def registered(self, representation: Representation[Any]) -> Iterator[Representation[Any]]:
        """Register a representation for the duration of a ``with`` block."""
        self.register(representation)
        try:
            yield representation
        finally:
            self.unregister(representation.name)

    def __getitem__(self, name: str) -> Representation[Any]:
        try:
            return self._items[name]
        except KeyError:
            raise RepresentationError(
                f"no representation named {name!r}; use one of: {', '.join(self._items)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[Representation[Any]]:
        return iter(list(self._items.values()))

    def names(self) -> list[str]:
        """The representation names, in order."""
        return list(self._items)
