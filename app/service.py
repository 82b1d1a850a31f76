"""The service behind every front door: the CLI, the Streamlit page and the tests call it, nothing below it.

:class:`SearchService` holds the three process-wide resources (settings, the embedding model and
the one Qdrant client) plus a write lock, and offers what the user interfaces need: list,
describe, create and drop collections, ingest files, list, find and delete documents, search,
adapt a collection's model to its documents (:meth:`SearchService.adapt`), find a hit's file and
show its page (:meth:`SearchService.stored_file`, :meth:`SearchService.page_view`, through
:class:`app.documents.DocumentFiles`, which also keeps the uploaded files), and fill an empty
default collection with the sample corpus (:func:`ensure_sample_corpus`).
The model loads on first use, so commands that only read the store never load it.

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
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, cast

from app.documents import DocumentFiles, FileRef
from app.errors import AppError
from app.models import Loader, ModelPool
from app.wording import plural
from config import InvalidNameError, override, validate_collection_name
from embedder import EmbedderWrapper
from ingest.pipeline import ingest_files
from ingest.report import IngestReport, ProgressEvent
from ingest.sample_corpus import sample_files
from ingest.sources import FileResult, SourceFile
from retrieval.engine import Hit, SearchResult, check_options, options_from, search, validate_query
from store.client import list_collections, open_client
from store.core import VectorStore, store_for
from store.errors import StoreError
from store.manifest import DocumentManifest
from store.record import CollectionRecord, expected_record

if TYPE_CHECKING:
    from pathlib import Path

    from qdrant_client import QdrantClient

    from config import Settings
    from embedder import Embedder
    from ingest.pageview import PageImage
    from training.adapt import AdaptEvent, AdaptResult

P = ParamSpec("P")
T = TypeVar("T")


logger = logging.getLogger(__name__)

#: How often a cancellable wait for the write lock looks at its cancel event, seconds.
_LOCK_POLL_SECONDS = 0.1


def _cancelled_report(files: Sequence[SourceFile], store: VectorStore) -> IngestReport:
    """The report of an ingest cancelled before it started: every file ``cancelled``."""
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


class SerializedEmbedder(EmbedderWrapper):
    """An embedder whose calls run one at a time (shared by the threads of the app's sessions).

    The Hugging Face fast tokenizer is not safe to call from several threads at once, and on a
    CPU concurrent forward passes only compete for the same cores; one lock keeps both correct.
    An ingest holds it for one batch at a time, so a search waits at most one batch. Every call
    of the :class:`~embedder.Embedder` interface goes through :meth:`_call`, which takes the lock.

    Args:
        inner: the embedder to guard.
    """

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner)
        self._lock = threading.RLock()

    def _call(self, method: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self._lock:
            return method(*args, **kwargs)


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
    return override(
        settings,
        instructions={
            "domain": record.domain,
            "query": query,
            "document": document,
            "enabled": query is not None or document is not None,
        },
        qdrant={"collection": collection},
    )


@dataclass(frozen=True)
class CollectionSummary:
    """One row of the collection list.

    Attributes:
        name: the collection's name (as Qdrant has it; print it through :func:`config.display`).
        points: its chunk points.
        documents: its stored documents (``None`` when it has no readable record).
        model: the model it was built with (``None``: no record).
        domain: the domain of its instructions (``None``: no record).
        error: why its record cannot be read (a collection of another tool), else ``None``.
    """

    name: str
    points: int
    documents: int | None = None
    model: str | None = None
    domain: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class CollectionInfo:
    """What ``collections info`` shows of one collection.

    Attributes:
        name: the collection.
        points: its chunk points.
        documents: its stored documents.
        record: how it was built.
    """

    name: str
    points: int
    documents: int
    record: CollectionRecord


S = TypeVar("S", bound="ServiceResources")


class ServiceResources:
    """The settings, model, Qdrant client and write lock of one process (what every operation needs).

    :class:`SearchService` adds the operations. Use it as a context manager, or call
    :meth:`close`, to close the client.

    Args:
        settings: the settings.
        embedder: the embedding model; ``None`` loads it from the settings on first use.
        client: the Qdrant client (share one per process; see :func:`guard_client`).
        write_lock: held while a session ingests or deletes (a new lock by default).
        purpose: what a model loaded here embeds (see :func:`embedder.make_embedder`).
        loader: how a model's settings become an embedder (see :class:`app.models.ModelPool`).

    Attributes:
        settings: the settings.
        client: the Qdrant client.
        write_lock: the write lock.
        files: the kept uploads and the files of the documents (:class:`app.documents.DocumentFiles`).
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        *,
        client: QdrantClient,
        write_lock: threading.Lock | None = None,
        purpose: Literal["ingest", "query"] = "ingest",
        loader: Loader | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.write_lock = write_lock if write_lock is not None else threading.Lock()
        self.models = ModelPool(settings, embedder, purpose=purpose, loader=loader)
        self.files = DocumentFiles(settings, client)

    @classmethod
    def open(
        cls: type[S],
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        purpose: Literal["ingest", "query"] = "ingest",
    ) -> S:
        """Open the client the settings point at (the model loads on first use, unless given).

        Args:
            settings: the settings.
            embedder: an already loaded embedder.
            purpose: what a model loaded from the settings embeds: ``ingest`` (documents) or
                ``query`` (search queries: ``model.query_runtime``, ``cache.query``).

        Returns:
            The service. Close it when done (the CLI does; the app keeps it open).

        Raises:
            StoreLockedError: the embedded store is open in another process.
        """
        return cls(settings, embedder, client=guard_client(open_client(settings), settings), purpose=purpose)

    def close(self) -> None:
        """Close the Qdrant client (releases the embedded store's folder lock)."""
        self.client.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded through :func:`embedder.make_embedder` on first use.

        Raises:
            ModelNotFoundError: the model cannot be loaded.
        """
        return self.models.default()

    @property
    def model_id(self) -> str:
        """The id of :attr:`embedder`, known without loading it (see :attr:`app.models.ModelPool.model_id`)."""
        return self.models.model_id

    @property
    def model_loaded(self) -> bool:
        """Whether :attr:`embedder` is loaded (or was given)."""
        return self.models.loaded

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
        return store_for(self.settings, name, client=self.client)

    def _acquire_write_lock(self, cancel: threading.Event | None) -> bool:
        """Wait for the write lock; ``False`` when ``cancel`` is set first."""
        if cancel is None:
            self.write_lock.acquire()
            return True
        while not self.write_lock.acquire(timeout=_LOCK_POLL_SECONDS):
            if cancel.is_set():
                return False
        return True


class CollectionService(ServiceResources):
    """The collection operations of the service: list, describe, create and drop collections.

    See :class:`ServiceResources` for the constructor and :meth:`ServiceResources.open`.
    """

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

    def collection_summaries(self) -> list[CollectionSummary]:
        """Every user collection of the store, those of other tools (any name, no record) included."""
        rows = []
        for name in list_collections(self.client):
            other = store_for(self.settings, name, client=self.client)
            try:
                record = other.read_record()
            except StoreError as exc:  # a collection of another tool: list it without a record
                rows.append(CollectionSummary(name=name, points=other.count(), error=str(exc)))
                continue
            rows.append(
                CollectionSummary(
                    name=name,
                    points=other.count(),
                    documents=len(other.documents()),
                    model=record.model if record else None,
                    domain=record.domain if record else None,
                )
            )
        return rows

    def collection_info(self, collection: str | None = None) -> CollectionInfo:
        """The points, documents and record of a collection.

        Raises:
            CollectionNotFoundError: the collection does not exist.
        """
        store = self.store(collection)
        record = store.require_record()
        return CollectionInfo(
            name=store.collection, points=store.count(), documents=len(store.documents()), record=record
        )

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
        settings = override(
            self.settings,
            instructions={
                "domain": domain,
                "query": query_instruction or None,
                "document": document_instruction or None,
                "enabled": instructions_enabled,
            },
        )
        return expected_record(settings, self.embedder, domain=domain)

    def default_record(self) -> CollectionRecord:
        """The record a new collection gets from the settings' instructions."""
        instructions = self.settings.instructions
        return self.new_record(
            domain=instructions.domain,
            query_instruction=instructions.query,
            document_instruction=instructions.document,
            instructions_enabled=instructions.enabled,
        )

    def create_collection(self, name: str, record: CollectionRecord | None = None) -> CollectionRecord:
        """Create an empty collection with the given record (:meth:`default_record` by default).

        Raises:
            InvalidNameError: the name breaks the rules of :func:`config.validate_collection_name`.
            AppError: the collection exists already.
        """
        cleaned = validate_collection_name(name)
        store = self.store(cleaned)
        record = record if record is not None else self.default_record()
        with self.write_lock:
            if store.exists():
                raise AppError(
                    f"collection {cleaned!r} exists already; pick it in the list or choose another name"
                )
            return store.ensure(record)

    def drop_collection(
        self, collection: str | None = None, *, confirm: Callable[[str, int], bool] | None = None
    ) -> int | None:
        """Delete a collection and its documents.

        Args:
            collection: the collection (the settings' one by default).
            confirm: asked ``(name, points)`` before anything is dropped; ``False`` keeps it.

        Returns:
            The points dropped, or ``None`` when ``confirm`` said no.

        Raises:
            AppError: the collection does not exist.
        """
        store = self.store(collection)
        with self.write_lock:
            if not store.exists():
                raise AppError(
                    f"collection {store.collection!r} does not exist (see: instructor-search collections list)"
                )
            points = store.count()
            if confirm is not None and not confirm(store.collection, points):
                return None
            store.drop()
            self.files.collect()  # the kept uploads no other collection holds
            return points


class SearchService(CollectionService):
    """What the front doors do: manage collections (:class:`CollectionService`) and documents, ingest, search.

    See :class:`ServiceResources` for the constructor and :meth:`ServiceResources.open`.
    """

    # -- documents -----------------------------------------------------------------------------

    def documents(self, collection: str | None = None) -> list[DocumentManifest]:
        """The stored documents of a collection (empty when it does not exist)."""
        return self.store(collection).documents()

    def count(self, collection: str | None = None) -> int:
        """The chunk points of committed files in a collection (0 when it does not exist)."""
        return self.store(collection).count()

    def find_document(self, ref: str, collection: str | None = None) -> DocumentManifest:
        """The stored document that ``ref`` names: its stored source, a path, or an unambiguous file name.

        Raises:
            StoreError: no document, or several, match ``ref``.
        """
        return self.store(collection).find_document(ref)

    def ingest(
        self,
        files: Sequence[SourceFile],
        *,
        collection: str | None = None,
        domain: str | None = None,
        password: str | None = None,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        cancel: threading.Event | None = None,
        follow_record: bool = True,
    ) -> IngestReport:
        """Ingest files into a collection (created with the settings' instructions if missing).

        With ``follow_record`` an existing collection is written with its own recorded
        instructions, whatever the settings say, so uploads through the app always match the
        collection. Only one ingest or delete writes at a time (:attr:`write_lock`); this call
        waits for the one running. No files: nothing is done and the model is not loaded.
        Uploads are kept (:meth:`app.documents.DocumentFiles.keep`) before they are ingested,
        and copies no manifest names afterwards (a failed or cancelled upload) are removed.

        Args:
            files: the files.
            collection: the collection (the settings' one by default).
            domain: domain of a new collection (the settings' by default).
            password: password for encrypted PDFs.
            on_progress: progress callback.
            cancel: set it to stop: files not yet stored come back ``cancelled`` and are rolled
                back, stored ones are kept. Set while this call still waits for the write
                lock, it returns at once with every file ``cancelled``.
            follow_record: ``False`` writes with the settings' instructions, and a collection
                recorded with other instructions or another model is refused (the CLI).

        Returns:
            The ingest report.

        Raises:
            InvalidNameError: ``collection`` is not a valid collection name.
        """
        store = self.store(collection)
        if not files:
            return IngestReport(files=[], points=store.count(), collection=store.collection)
        if not self._acquire_write_lock(cancel):
            return _cancelled_report(files, store)
        try:
            self.files.keep(files)
            found = store.read_record()
            if found is not None:  # another model's collection is refused before a model loads
                self.models.refuse_mismatch(store, found)
            record = found if follow_record else None
            settings = self.settings
            if record is not None:
                settings = settings_for_record(settings, record, store.collection)
                domain = record.domain
            return ingest_files(
                files,
                settings=settings,
                embedder=self.models.for_record(record),
                store=store,
                domain=domain,
                password=password,
                on_progress=on_progress,
                cancel=cancel,
            )
        finally:
            self.files.collect()
            self.write_lock.release()

    def delete_document(self, source: str, collection: str | None = None) -> int:
        """Delete a document's chunks, manifest and kept copy; returns the number of chunks removed."""
        with self.write_lock:
            removed = self.store(collection).delete_document(source)
            self.files.collect()  # identical content of another source or collection is kept
            return removed

    def stored_file(self, item: FileRef) -> Path | None:
        """The file of a hit or a document now: its kept upload, the sample PDF or the path on disk.

        ``None`` when there is none (not kept, moved or changed); ``self.files.locate(item)``
        says why.
        """
        return self.files.locate(item).path

    def page_view(self, hit: Hit, *, password: str | None = None) -> PageImage:
        """The page of a hit as an image with its passage highlighted (see :meth:`DocumentFiles.page_view`).

        Raises:
            PasswordRequiredError: an encrypted PDF that ``password`` does not open.
            DocumentViewError: the file is not kept, moved or changed.
        """
        return self.files.page_view(hit, password=password)

    # -- adaptation ----------------------------------------------------------------------------

    def adapt(
        self,
        collection: str | None = None,
        *,
        target: str | None = None,
        resume: bool = True,
        max_per_kind: int | None = None,
        progress: Callable[[AdaptEvent], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> AdaptResult:
        """Adapt the collection's model to its documents, into a new collection (see :mod:`training.adapt`).

        Builds label-free training data from the collection's chunks, fine-tunes its model and
        re-embeds it into ``target`` (``<collection>-adapted`` by default); the collection itself
        is only read, and searches go on meanwhile. Only the re-embedding takes
        :attr:`write_lock`. A run that was killed or cancelled resumes where it stopped.

        Args:
            collection: the collection (the settings' one by default).
            target: the new collection.
            resume: keep the stages an earlier run finished (``False``: start over).
            max_per_kind: the most training records per pseudo-query kind.
            progress: called with a :class:`training.adapt.AdaptEvent` as the stages advance.
            cancel: set it to stop at the next step or batch.

        Returns:
            The result (:attr:`training.adapt.AdaptResult.switch` says how to use it).

        Raises:
            AdaptCancelledError: ``cancel`` was set.
            TrainingError: the collection cannot be adapted.
        """
        from training.adapt import adapt_collection  # lazy: training loads scikit-learn (about a second)

        return adapt_collection(
            self.settings,
            collection=self.store(collection).collection,
            target=target,
            resume=resume,
            max_per_kind=max_per_kind,
            client=self.client,
            write_lock=self.write_lock,
            progress=progress,
            cancel=cancel,
        )

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
        the result) in a collection built without that mode's representations. The query, the
        options and the collection's record (read once) are checked before the model loads, so
        a collection built with another model is refused without loading one.

        Raises:
            QueryError: the query or an option is not valid.
            CollectionNotFoundError: the collection does not exist.
            CollectionMismatchError: the collection was built with another model.
        """
        store = self.store(collection)
        chosen_k = top_k if top_k is not None else self.settings.app.top_k
        chosen_mode = mode or self.settings.search.mode
        options = options_from(self.settings.search)
        validate_query(query)
        check_options(chosen_mode, chosen_k, score_threshold, options["fusion"], options["weights"])
        record = store.require_record()
        self.models.refuse_mismatch(store, record)
        return search(
            query,
            store=store,
            embedder=self.models.for_record(record),
            top_k=chosen_k,
            score_threshold=score_threshold,
            documents=documents,
            domain=domain,
            mode=chosen_mode,
            fallback=mode is None,
            record=record,
            **options,
        )


@dataclass(frozen=True)
class LocatedResult:
    """A search result and, for each hit, its file now (see :meth:`SearchService.stored_file`).

    Attributes:
        result: the result.
        files: the stored file of each hit, in the order of ``result.hits`` (``None``: none).
    """

    result: SearchResult
    files: list[Path | None]

    def to_json(self) -> dict[str, Any]:
        """The result's JSON, each hit with its ``file_path`` (``null`` when there is no file)."""
        data = self.result.to_json()
        for hit, path in zip(data["hits"], self.files, strict=True):
            hit["file_path"] = str(path) if path is not None else None
        return data


def search_once(
    settings: Settings,
    query: str,
    *,
    top_k: int | None = None,
    score_threshold: float | None = None,
    documents: Sequence[str] | None = None,
    domain: str | None = None,
    mode: str | None = None,
) -> LocatedResult:
    """One search of the settings' collection in a service of its own (the ``search`` command).

    The query is checked before the store opens, and the collection before the model (the
    query model: ``model.query_runtime``, ``cache.query``) loads, so those mistakes cost nothing.

    Args:
        settings: the settings.
        query: the query.
        top_k: hits (``app.top_k`` by default).
        score_threshold: leave out hits scoring below it.
        documents: only search these documents (file names, paths or stored sources).
        domain: only chunks ingested with this domain.
        mode: the retrieval mode (``None``: ``search.mode``, see :meth:`SearchService.search`).

    Returns:
        The result, with the file each hit lives in now (so other tools can show its page).

    Raises:
        RetrievalError: the query is empty or too long.
        CollectionNotFoundError: the collection does not exist.
    """
    validate_query(query)
    with SearchService.open(settings, purpose="query") as service:
        result = service.search(
            query, top_k=top_k, score_threshold=score_threshold, documents=documents, domain=domain, mode=mode
        )
        return LocatedResult(result=result, files=[service.stored_file(hit) for hit in result.hits])


def ensure_sample_corpus(
    settings: Settings, *, embedder: Embedder | None = None, echo: Callable[[str], None] = logger.info
) -> IngestReport | None:
    """Ingest the sample corpus into the default collection if that collection has no documents.

    Args:
        settings: the settings (store location, default collection, model).
        embedder: an already loaded embedder (loaded from the settings when needed otherwise).
        echo: where progress lines go.

    Returns:
        The ingest report, or ``None`` when nothing was done (the collection has documents, the
        sample corpus is switched off, or the store is in memory and would not outlive this process).

    Raises:
        IngestError: the store cannot be opened, or the collection was built with another model.
    """
    if not settings.app.sample_corpus or settings.qdrant_mode == "memory":
        return None
    with SearchService.open(settings, embedder=embedder) as service:
        if service.documents():
            return None
        files = sample_files()
        if not files:
            echo(
                "the sample corpus is missing (ingest/sample_corpus/*.pdf); starting with an empty collection"
            )
            return None
        if not service.model_loaded:
            echo(f"loading the model {settings.model.name!r} ...")
        echo(
            f"collection {service.default_collection!r} is empty: indexing the sample corpus "
            f"({plural(len(files), 'PDF')}) with {service.embedder.model_id} ..."
        )
        report = service.ingest(files, follow_record=False)
    for result in report.files:
        detail = plural(result.chunks, "chunk") if result.status != "failed" else f"failed: {result.error}"
        echo(f"  {result.status:<9} {result.file_name}  ({detail})")
    echo(f"indexed {plural(report.chunks_embedded, 'chunk')} in {report.seconds:.1f} s")
    return report
