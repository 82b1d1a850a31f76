"""The writer stage of an ingest run: chunk points and manifests built, and written by one thread.

:class:`Writer` is the one thread that talks to Qdrant while a run embeds, so upserts overlap
with encoding. A batch's job (:func:`write_job`) upserts its points, then commits the manifest of
every file the batch completes and deletes the chunks of that file's previous content.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ingest.chunking import Chunk, Chunker
from ingest.sources import FileStatus, SourceFile
from representations.dense import DENSE_VECTOR
from store.manifest import DocumentManifest
from store.payload import (
    CHAR_END,
    CHAR_START,
    CHUNK_COUNT,
    CHUNK_INDEX,
    CONTENT_KEY,
    DOMAIN,
    FILE_NAME,
    FILE_SHA256,
    INGESTED_AT,
    METADATA_KEY,
    OCR,
    PAGE,
    SOURCE,
    chunk_point_id,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from qdrant_client import models

    from representations.builder import RepresentationBuilder
    from store.core import VectorStore

#: Embedded batches that may wait for the store writer.
WRITES_IN_FLIGHT = 2

T = TypeVar("T")


@dataclass
class OpenFile:
    """A file whose chunks are being embedded and stored."""

    index: int
    source: SourceFile
    sha256: str
    status: FileStatus
    chunk_count: int
    pages: int | None
    ingested_at: str
    previous: DocumentManifest | None = None
    done: int = 0
    ocr_pages: tuple[int, ...] = ()
    empty_pages: tuple[int, ...] = ()
    skipped_pages: dict[int, str] = field(default_factory=dict)
    warning: str | None = None


@dataclass
class Queued:
    """A chunk waiting to be embedded, and its file."""

    file: OpenFile
    chunk: Chunk


def chunk_payload(item: Queued, domain: str, more: dict[str, Any] | None = None) -> dict[str, object]:
    """The payload of a chunk point (see :mod:`store.payload`), with ``more`` metadata (keywords, ...).

    A chunk of a page whose text came from OCR has ``OCR: True``; on other chunks the key is
    absent (as on every chunk written before OCR existed), so "absent" always means "text layer".
    """
    chunk, open_file = item.chunk, item.file
    ocr = {OCR: True} if chunk.page is not None and chunk.page in open_file.ocr_pages else {}
    return {
        CONTENT_KEY: chunk.text,
        METADATA_KEY: {
            SOURCE: open_file.source.source,
            FILE_NAME: open_file.source.file_name,
            FILE_SHA256: open_file.sha256,
            PAGE: chunk.page,
            CHUNK_INDEX: chunk.index,
            CHUNK_COUNT: open_file.chunk_count,
            CHAR_START: chunk.char_start,
            CHAR_END: chunk.char_end,
            DOMAIN: domain,
            INGESTED_AT: open_file.ingested_at,
            **ocr,
            **(more or {}),
        },
    }


def document_manifest(open_file: OpenFile, domain: str, chunker: Chunker) -> DocumentManifest:
    """The manifest that commits a completely stored file.

    A file with OCR'd pages records their number as the extra field ``ocr_pages``
    (:class:`~store.manifest.DocumentManifest` keeps extra fields; older manifests lack it).
    """
    source = open_file.source
    extra: dict[str, Any] = {"ocr_pages": len(open_file.ocr_pages)} if open_file.ocr_pages else {}
    return DocumentManifest(
        source=source.source,
        file_name=source.file_name,
        file_sha256=open_file.sha256,
        chunks=open_file.chunk_count,
        pages=open_file.pages,
        domain=domain,
        ingested_at=open_file.ingested_at,
        chunk_size=chunker.size,
        chunk_overlap=chunker.overlap,
        chunk_strategy=chunker.strategy,
        **extra,
    )


def write_job(
    store: VectorStore,
    points: Sequence[Any],
    completing: list[OpenFile],
    manifests: list[DocumentManifest],
) -> Callable[[], list[OpenFile]]:
    """The writer's job for one batch: its points, then the files it completes; returns those files."""

    def write() -> list[OpenFile]:
        store.upsert_chunks(points)
        for open_file, manifest in zip(completing, manifests, strict=True):
            store.commit_document(manifest)
            # After the commit: if the process dies here, repair() removes the old chunks.
            # A new source has none (the collection is consistent after repair()).
            if open_file.previous is not None:
                store.delete_stale(
                    open_file.source.source,
                    open_file.sha256,
                    keep_chunks=open_file.chunk_count,
                    previous=open_file.previous,
                )
        return completing

    return write


class Writer:
    """The one thread that talks to Qdrant while a run embeds (upserts overlap with encoding).

    Jobs run in submission order, so a file's manifest is always committed after its chunks.

    Args:
        in_flight: jobs that may wait before :meth:`submit` waits for the oldest.
    """

    def __init__(self, in_flight: int = WRITES_IN_FLIGHT) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self._pending: deque[Future[list[OpenFile]]] = deque()
        self._in_flight = in_flight

    def submit(self, job: Callable[[], list[OpenFile]]) -> list[OpenFile]:
        """Queue a write job; returns the files completed by jobs that have finished meanwhile."""
        self._pending.append(self._pool.submit(job))
        return self._harvest(wait_for=self._in_flight)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store call on the writer thread (after the queued writes) and wait for it."""
        return self._pool.submit(fn, *args).result()

    def finish(self) -> list[OpenFile]:
        """Wait for every queued write; returns the files they completed."""
        return self._harvest(wait_for=0)

    def _harvest(self, *, wait_for: int) -> list[OpenFile]:
        completed: list[OpenFile] = []
        while self._pending and (len(self._pending) > wait_for or self._pending[0].done()):
            completed += self._pending.popleft().result()  # re-raises a failed write here
        return completed

    def abandon(self) -> None:
        """Wait for the write running now, drop the queued ones and forget every outcome."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def close(self) -> None:
        """Wait for the write running now and drop the queued ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def chunk_points(
    batch: Sequence[Queued], vectors: NDArray[np.float32], builder: RepresentationBuilder, domain: str
) -> list[models.PointStruct]:
    """The points of an embedded batch: the dense vector, the extra representations, the payload.

    Args:
        batch: the chunks.
        vectors: their dense vectors.
        builder: the collection's extra representations (their named vectors and metadata).
        domain: the collection's domain.
    """
    from qdrant_client import models  # lazy: qdrant_client takes about a second to import

    texts = [item.chunk.text for item in batch]
    if builder.extra_keys():
        extra, extra_payload = builder.build(texts, vectors)
        point_vectors: list[Any] = [
            {DENSE_VECTOR: vector.tolist(), **named} for vector, named in zip(vectors, extra, strict=True)
        ]
    else:
        extra_payload = [{} for _ in batch]
        point_vectors = [vector.tolist() for vector in vectors]
    return [
        models.PointStruct(
            id=chunk_point_id(item.file.sha256, item.chunk.index),
            vector=vector,
            payload=chunk_payload(item, domain, more),
        )
        for item, vector, more in zip(batch, point_vectors, extra_payload, strict=True)
    ]
