"""A small facade over settings, embedder and Qdrant client, shared by the CLI, the app and tests.

:class:`SearchService` holds the three process-wide resources (settings, the embedding model and
the one Qdrant client) plus a write lock, and offers what the user interfaces need: list
collections, create one with chosen instructions, ingest files, list and delete documents, and
search.

Concurrency: the embedded (and in-memory) Qdrant client keeps its collections in numpy arrays
that writes resize in place, so a search running while points are upserted can fail with an
``IndexError``. :class:`SerializedClient` therefore runs every client call under one
re-entrant lock; the calls are short, and the slow part of an ingest (embedding) runs outside
the lock, so searches stay responsive during an upload. Writes (ingest, delete) additionally
take :attr:`SearchService.write_lock`, so two sessions never ingest into the store at once
(an ingest starts by removing chunks that no manifest vouches for, which would include the
chunks of a concurrent ingest).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from app.errors import AppError
from config import InvalidNameError, validate_collection_name
from retrieval.engine import SearchResult, options_from, search
from store.core import CollectionRecord, DocumentManifest, VectorStore, expected_record, list_collections

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from config import Settings
    from embedder import Embedder
    from embedder.backends import Vectors
    from ingest.pipeline import IngestReport, ProgressEvent
    from ingest.sources import SourceFile


logger = logging.getLogger(__name__)

#: How often a cancellable wait for the write lock looks at its cancel event, seconds.
_LOCK_POLL_SECONDS = 0.1


def _cancelled_report(files: Sequence[SourceFile], store: VectorStore) -> IngestReport:
    """The report of an ingest cancelled before it started: every file ``cancelled``."""
    from ingest.pipeline import IngestReport
    from ingest.sources import FileResult

    results = [
        FileResult(
            path=file.source,
            status="cancelled",
            file_name=file.file_name,
            source=file.source,
            note="cancelled while waiting for another upload or delete to finish",
        )
        for file in files
    ]
    return IngestReport(files=results, points=store.count(), collection=store.collection)


class SerializedClient:
    """A proxy that runs every method of a Qdrant client under one re-entrant lock.

    Args:
        client: the client to guard.
        lock: the lock (a new ``RLock`` by default).
    """

    def __init__(self, client: QdrantClient, lock: threading.RLock | None = None) -> None:
        self._client = client
        self._lock = lock if lock is not None else threading.RLock()

    @property
    def wrapped(self) -> QdrantClient:
        """The guarded client."""
        return self._client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return locked


def guard_client(client: QdrantClient, settings: Settings) -> QdrantClient:
    """Serialise access to a local (embedded or in-memory) client; a server client is returned as is.

    Args:
        client: an open client.
        settings: the settings it was opened with.

    Returns:
        A client that is safe to share between threads.
    """
    if settings.qdrant_mode == "server" or isinstance(client, SerializedClient):
        return client
    return cast("QdrantClient", SerializedClient(client))


class SerializedEmbedder:
    """An embedder whose calls run one at a time (shared by the threads of the app's sessions).

    The Hugging Face fast tokenizer is not safe to call from several threads at once, and on a
    CPU concurrent forward passes only compete for the same cores; one lock keeps both correct.
    An ingest holds it for one batch at a time, so a search waits at most one batch.

    Args:
        embedder: the embedder to guard.
    """

    def __init__(self, embedder: Embedder) -> None:
        self.wrapped = embedder
        self.model_id = embedder.model_id
        self.dimension = embedder.dimension
        self.max_seq_length = embedder.max_seq_length
        self.normalize = embedder.normalize
        self.stats = embedder.stats
        self._lock = threading.RLock()

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Vectors:
        """See :meth:`embedder.Embedder.embed`."""
        with self._lock:
            return self.wrapped.embed(texts, instruction, batch_size=batch_size, show_progress=show_progress)

    def count_tokens(self, text: str) -> int:
        """See :meth:`embedder.Embedder.count_tokens`."""
        with self._lock:
            return self.wrapped.count_tokens(text)

    def instruction_tokens(self, instruction: str | None) -> int:
        """See :meth:`embedder.Embedder.instruction_tokens`."""
        with self._lock:
            return self.wrapped.instruction_tokens(instruction)

    def token_budget(self, instruction: str | None) -> int:
        """See :meth:`embedder.Embedder.token_budget`."""
        with self._lock:
            return self.wrapped.token_budget(instruction)


def serialize_embedder(embedder: Embedder) -> Embedder:
    """Wrap an embedder so that threads share it safely (see :class:`SerializedEmbedder`)."""
    return embedder if isinstance(embedder, SerializedEmbedder) else SerializedEmbedder(embedder)


def settings_for_record(settings: Settings, record: CollectionRecord, collection: str) -> Settings:
    """Settings whose instructions reproduce a collection's record, for ingesting into it.

    Args:
        settings: the base settings.
        record: the collection's record.
        collection: the collection name.

    Returns:
        A copy of ``settings`` with the record's domain and instructions and the collection name.
    """
    query, document = record.instructions.get("query"), record.instructions.get("document")
    instructions = settings.instructions.model_copy(
        update={
            "domain": record.domain,
            "query": query,
            "document": document,
            "enabled": query is not None or document is not None,
        }
    )
    return settings.model_copy(
        update={
            "instructions": instructions,
            "qdrant": settings.qdrant.model_copy(update={"collection": collection}),
        }
    )


@dataclass
class SearchService:
    """Settings, model and Qdrant client of one process, and the operations on them.

    Attributes:
        settings: the settings.
        embedder: the embedding model.
        client: the Qdrant client (share one per process; see :func:`guard_client`).
        write_lock: held while a session ingests or deletes.
    """

    settings: Settings
    embedder: Embedder
    client: QdrantClient
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings, *, embedder: Embedder | None = None) -> SearchService:
        """Open the client the settings point at and load the model (unless one is given).

        Args:
            settings: the settings.
            embedder: an already loaded embedder.

        Returns:
            The service. Call :meth:`close` when done (the CLI does; the app keeps it open).

        Raises:
            StoreLockedError: the embedded store is open in another process.
            ModelNotFoundError: the model cannot be loaded.
        """
        from embedder import make_embedder
        from store.core import open_client

        client = guard_client(open_client(settings), settings)
        try:
            model = embedder if embedder is not None else make_embedder(settings)
        except BaseException:
            client.close()
            raise
        return cls(settings=settings, embedder=model, client=client)

    def close(self) -> None:
        """Close the Qdrant client (releases the embedded store's folder lock)."""
        self.client.close()

    # -- collections ---------------------------------------------------------------------------

    @property
    def default_collection(self) -> str:
        """The collection named in the settings."""
        return self.settings.qdrant.collection

    def store(self, collection: str | None = None) -> VectorStore:
        """The :class:`VectorStore` of a collection (the settings' one by default).

        Raises:
            InvalidNameError: ``collection`` breaks the name rules of
                :func:`config.validate_collection_name` (internal ``__documents`` names included).
        """
        name = self.default_collection if collection is None else validate_collection_name(collection)
        return VectorStore(self.client, name, local=self.settings.qdrant_mode != "server")

    def collections(self) -> list[str]:
        """Names of the existing collections that can be used here (valid names; no internal ones)."""
        names = []
        for name in list_collections(self.client):
            try:
                validate_collection_name(name)
            except InvalidNameError:  # made by another tool; never shown where it could spoof a page
                logger.info("leaving out collection %r: its name breaks the name rules", name)
                continue
            names.append(name)
        return names

    def record(self, collection: str | None = None) -> CollectionRecord | None:
        """The record of a collection, ``None`` when it does not exist."""
        return self.store(collection).read_record()

    def new_record(
        self,
        *,
        domain: str = "",
        query_instruction: str | None = None,
        document_instruction: str | None = None,
        instructions_enabled: bool = True,
    ) -> CollectionRecord:
        """The record a new collection would get (instructions built from the template or given).

        Raises:
            InstructionError: a custom instruction is invalid.
        """
        settings = self.settings.model_copy(
            update={
                "instructions": self.settings.instructions.model_copy(
                    update={
                        "domain": domain,
                        "query": query_instruction or None,
                        "document": document_instruction or None,
                        "enabled": instructions_enabled,
                    }
                )
            }
        )
        return expected_record(settings, self.embedder, domain=domain)

    def create_collection(self, name: str, record: CollectionRecord) -> CollectionRecord:
        """Create an empty collection with the given record.

        Raises:
            InvalidNameError: the name breaks the rules of :func:`config.validate_collection_name`.
            AppError: the collection exists already.
        """
        cleaned = validate_collection_name(name)
        store = self.store(cleaned)
        with self.write_lock:
            if store.exists():
                raise AppError(
                    f"collection {cleaned!r} exists already; pick it in the list or choose another name"
                )
            return store.ensure(record)

    # -- documents -----------------------------------------------------------------------------

    def documents(self, collection: str | None = None) -> list[DocumentManifest]:
        """The stored documents of a collection (empty when it does not exist)."""
        return self.store(collection).documents()

    def ingest(
        self,
        files: Sequence[SourceFile],
        *,
        collection: str | None = None,
        domain: str | None = None,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestReport:
        """Ingest files into a collection (created with the settings' instructions if missing).

        An existing collection is written with its own recorded instructions, whatever the
        settings say, so uploads through the app always match the collection. Only one ingest or
        delete writes at a time (:attr:`write_lock`); this call waits for the one running.

        Args:
            files: the files.
            collection: the collection (the settings' one by default).
            domain: domain of a new collection (the settings' by default).
            on_progress: progress callback.
            cancel: set it to stop: files not yet stored come back ``cancelled`` and are rolled
                back, stored ones are kept. Set while this call still waits for the write
                lock, it returns at once with every file ``cancelled``.

        Returns:
            The ingest report.

        Raises:
            InvalidNameError: ``collection`` is not a valid collection name.
        """
        from ingest.pipeline import ingest_files

        store = self.store(collection)
        if not self._acquire_write_lock(cancel):
            return _cancelled_report(files, store)
        try:
            record = store.read_record()
            settings = self.settings
            if record is not None:
                settings = settings_for_record(settings, record, store.collection)
                domain = record.domain
            return ingest_files(
                files,
                settings=settings,
                embedder=self.embedder,
                store=store,
                domain=domain,
                on_progress=on_progress,
                cancel=cancel,
            )
        finally:
            self.write_lock.release()

    def _acquire_write_lock(self, cancel: threading.Event | None) -> bool:
        """Wait for the write lock; ``False`` when ``cancel`` is set first."""
        if cancel is None:
            self.write_lock.acquire()
            return True
        while not self.write_lock.acquire(timeout=_LOCK_POLL_SECONDS):
            if cancel.is_set():
                return False
        return True

    def delete_document(self, source: str, collection: str | None = None) -> int:
        """Delete a document's chunks and manifest; returns the number of chunks removed."""
        with self.write_lock:
            return self.store(collection).delete_document(source)

    # -- search --------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        collection: str | None = None,
        top_k: int | None = None,
        score_threshold: float | None = None,
        documents: Sequence[str] | None = None,
        domain: str | None = None,
        mode: str | None = None,
    ) -> SearchResult:
        """Search a collection (see :func:`retrieval.engine.search`).

        ``mode=None`` uses the ``search.mode`` setting, falling back to ``dense`` (with a note in
        the result) in a collection built without that mode's representations.
        """
        return search(
            query,
            store=self.store(collection),
            embedder=self.embedder,
            top_k=top_k if top_k is not None else self.settings.app.top_k,
            score_threshold=score_threshold,
            documents=documents,
            domain=domain,
            mode=mode or self.settings.search.mode,
            fallback=mode is None,
            **options_from(self.settings.search),
        )
