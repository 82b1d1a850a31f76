"""The representations the product knows, in order: one line each.

A new representation is one module implementing :class:`representations.base.Representation`
plus one line here (or, for a test or a plug-in, ``REGISTRY.register(...)``). The retrieval
modes, the collection schema, the ingest builder and the app's mode choices all follow.
"""

from __future__ import annotations

from representations.augmented import AugmentedRepresentation, Keywords, Questions
from representations.base import Registry
from representations.dense import DenseRepresentation
from representations.sentences import SentenceRepresentation
from representations.sparse import SparseRepresentation

REGISTRY = Registry(
    [
        DenseRepresentation(),
        SparseRepresentation(),
        SentenceRepresentation(),
        AugmentedRepresentation(Keywords()),
        AugmentedRepresentation(Questions()),
    ]
)
