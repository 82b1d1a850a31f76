"""The models a service embeds with: the settings' model, and each adapted collection's own.

A collection made by ``instructor-search adapt`` (or the app's "Adapt to this collection") records
the fine-tuned model folder it was re-embedded with and the collection it was derived from. Such
a collection is searched and extended with its own model, loaded on first use, so a user switches
to it by picking it; every other collection must match the settings' model, or it is refused
with a found/expected/fix message as before, and that before any model loads
(:meth:`ModelPool.refuse_mismatch`): the model's name resolves without its weights.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from config import Settings, override
from embedder import Embedder, FakeEmbedder, make_embedder
from embedder.loading import resolve_model
from ingest.reembed import derived_from
from store.core import VectorStore
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


def settings_model_id(settings: Settings) -> str | None:
    """The model id an embedder made from the settings records, found without loading the model.

    Args:
        settings: the settings (``model.backend`` and ``model.name``).

    Returns:
        The fake embedder's id, or the resolved name of the sentence-transformers model
        (:func:`embedder.loading.resolve_model` reads no weights); ``None`` for a backend or a
        name that only loading can judge (its error comes from the load).

    Raises:
        ModelNotFoundError: the default model's package is missing, or a path-like name does not exist.
    """
    backend, name = settings.model.backend, settings.model.name
    if backend == "fake":
        return FakeEmbedder.model_id
    if backend != "sentence-transformers" or not name.strip():
        return None
    return resolve_model(name).model_id


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

    @property
    def model_id(self) -> str:
        """The settings' model id: the loaded model's, else resolved from the settings without loading.

        Only a backend or name that :func:`settings_model_id` cannot judge loads the model.
        """
        if self._default is not None:
            return self._default.model_id
        known = settings_model_id(self.settings)
        return known if known is not None else self.default().model_id

    def default(self) -> Embedder:
        """The settings' embedder."""
        with self._lock:
            if self._default is None:
                self._default = self._loader(self.settings)
            return self._default

    def refuse_mismatch(self, store: VectorStore, record: CollectionRecord) -> None:
        """Refuse a collection that :meth:`for_record`'s model did not build, without loading a model.

        An adapted collection is served by its own model, which it was built with. Any other is
        compared with the settings' model: its id (:func:`settings_model_id`) and normalisation,
        and its dimension once it is loaded (until then :func:`retrieval.engine.check_embedder`
        checks the dimension after the load).

        Args:
            store: the collection.
            record: its record.

        Raises:
            CollectionMismatchError: the found/expected/fix message of :meth:`store.core.VectorStore.check`.
            ModelNotFoundError: the settings' model name cannot be resolved.
        """
        if adapted_model(record, self.settings) is not None:
            return
        loaded = self._default
        model = loaded.model_id if loaded is not None else settings_model_id(self.settings)
        if model is None:
            return
        expected = record.model_copy(
            update={
                "model": model,
                "dimension": loaded.dimension if loaded is not None else record.dimension,
                "normalize": loaded.normalize if loaded is not None else self.settings.model.normalize,
            }
        )
        store.check(record, expected, check_instructions=False)

    def for_record(self, record: CollectionRecord | None) -> Embedder:
        """The embedder that serves a collection with this record (see :func:`adapted_model`)."""
        model = adapted_model(record, self.settings)
        if model is None:
            return self.default()
        with self._lock:
            if model not in self._adapted:
                self._adapted[model] = self._loader(override(self.settings, **{"model.name": model}))
            return self._adapted[model]
