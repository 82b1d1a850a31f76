"""INSTRUCTOR-style instruction-conditioned embeddings on current sentence-transformers.

``from embedder import INSTRUCTOR`` is a drop-in for ``InstructorEmbedding.INSTRUCTOR`` 1.0.1.
Heavy imports (torch, sentence-transformers) happen on first use, not at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from embedder.backends import FakeEmbedder, SentenceTransformerEmbedder
from embedder.base import Embedder, EmbedderWrapper, EncodeStats, Vectors
from embedder.errors import EmbedderError, InputError, InstructionError, ModelNotFoundError
from embedder.factory import make_embedder
from embedder.instructions import (
    DOMAIN_PRESETS,
    TEMPLATE,
    InstructionSet,
    build_instruction,
    domain_phrase,
)

if TYPE_CHECKING:
    from embedder.instructor import INSTRUCTOR

__all__ = [
    "DOMAIN_PRESETS",
    "INSTRUCTOR",
    "TEMPLATE",
    "Embedder",
    "EmbedderError",
    "EmbedderWrapper",
    "EncodeStats",
    "FakeEmbedder",
    "InputError",
    "InstructionError",
    "InstructionSet",
    "ModelNotFoundError",
    "SentenceTransformerEmbedder",
    "Vectors",
    "build_instruction",
    "domain_phrase",
    "make_embedder",
]


def __getattr__(name: str) -> Any:
    if name == "INSTRUCTOR":
        from embedder.instructor import INSTRUCTOR

        return INSTRUCTOR
    raise AttributeError(f"module 'embedder' has no attribute {name!r}")
