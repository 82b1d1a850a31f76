"""Typed settings for instructor-search (built only at entry points, then passed down)."""

from __future__ import annotations

from config.errors import ConfigError
from config.settings import (
    ENV_PREFIX,
    MEMORY_LOCATION,
    AppSettings,
    CacheSettings,
    ChunkSettings,
    IndexSettings,
    InstructionSettings,
    ModelSettings,
    QdrantSettings,
    RetrievalMode,
    Runtime,
    SearchSettings,
    Settings,
    load_settings,
)

__all__ = [
    "ENV_PREFIX",
    "MEMORY_LOCATION",
    "AppSettings",
    "CacheSettings",
    "ChunkSettings",
    "ConfigError",
    "IndexSettings",
    "InstructionSettings",
    "ModelSettings",
    "QdrantSettings",
    "RetrievalMode",
    "Runtime",
    "SearchSettings",
    "Settings",
    "load_settings",
]
