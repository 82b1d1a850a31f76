"""The models a service embeds with: the settings' model, and each adapted collection's own.

A collection made by ``instructor-search adapt`` (or the app's "Adapt to this collection") records
the fine-tuned model folder it was re-embedded with and the collection it was derived from. Such
a collection is searched and extended with its own model, loaded on first use, so a user switches
to it by picking it; every other collection must match the settings' model, or it is refused
with a found/expected/fix message as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from config import Settings, override
from embedder import Embedder, make_embedder
from embedder.loading import resolve_model
from ingest.reembed import derived_from
from store.record import CollectionRecord

Loader = Callable[[Settings], Embedder]


def adapted_model(record: CollectionRecord | None, settings: Settings) -> str | None:
    """The model folder an adapted collection is served with, or ``None`` (the settings' model).

    Args:
        record: the collection's record (``None``: not created yet).
        settings: the settings (their model is the default).

    Returns:
        ``record.model`` when the collection was derived by adaptation, its model is a folder
        that exists here and it is not the settings' model; else ``None``.
    """
    if record is None or derived_from(record) is None or not Path(record.model).is_dir():
        return None
    if settings.model.backend != "sentence-transformers":
        return None
    own = resolve_model(settings.model.name).model_id if settings.model.name else None
    return None if own == record.model else record.model


class ModelPool:
    """The settings' embedder (loaded on first use) and those of adapted collections.

    Args:
        settings: the settings.
        embedder: an already loaded embedder for the settings' model.
        purpose: what the models embed (see :func:`embedder.make_embedder`).
        loader: how a model's settings become an embedder (the app passes its process-wide cache).
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        *,
        purpose: Literal["ingest", "query"] = "ingest",
        loader: Loader | None = None,
    ) -> None:
        self.settings = settings
        self._default = embedder
        self._loader: Loader = loader or (lambda s: make_embedder(s, purpose=purpose))
        self._adapted: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the settings' embedder is loaded (or was given)."""
        return self._default is not None

    def default(self) -> Embedder:
        """The settings' embedder."""
        with self._lock:
            if self._default is None:
                self._default = self._loader(self.settings)
            return self._default

    def for_record(self, record: CollectionRecord | None) -> Embedder:
        """The embedder that serves a collection with this record (see :func:`adapted_model`)."""
        model = adapted_model(record, self.settings)
        if model is None:
            return self.default()
        with self._lock:
            if model not in self._adapted:
                self._adapted[model] = self._loader(override(self.settings, **{"model.name": model}))
            return self._adapted[model]
