"""Typed settings for instructor-search (built only at entry points, then passed down)."""

from __future__ import annotations

from config.errors import ConfigError
from config.names import (
    MANIFEST_SUFFIX,
    InvalidNameError,
    display,
    is_internal_collection,
    redact_text,
    validate_collection_name,
)
from config.overrides import override
from config.settings import (
    ENV_PREFIX,
    MEMORY_LOCATION,
    AppSettings,
    CacheSettings,
    ChunkSettings,
    IndexSettings,
    IngestSettings,
    InstructionSettings,
    ModelSettings,
    QdrantSettings,
    Runtime,
    SearchSettings,
    Settings,
    TrainSettings,
    load_settings,
)

__all__ = [
    "ENV_PREFIX",
    "MANIFEST_SUFFIX",
    "MEMORY_LOCATION",
    "AppSettings",
    "CacheSettings",
    "ChunkSettings",
    "ConfigError",
    "IndexSettings",
    "IngestSettings",
    "InstructionSettings",
    "InvalidNameError",
    "ModelSettings",
    "QdrantSettings",
    "Runtime",
    "SearchSettings",
    "Settings",
    "TrainSettings",
    "display",
    "is_internal_collection",
    "load_settings",
    "override",
    "redact_text",
    "validate_collection_name",
]
