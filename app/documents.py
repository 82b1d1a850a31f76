"""The files behind a service's documents: kept uploads, where a hit's file is now, and its page as an image.

:class:`DocumentFiles` is what :class:`app.service.SearchService` delegates to:

- **Kept uploads.** An uploaded file has no path (its name is only a display name), so its bytes
  are kept in the :class:`store.files.FileStore` of the data directory, named by their sha256,
  *before* it is ingested (:meth:`DocumentFiles.keep`). After every ingest, delete and drop,
  :meth:`DocumentFiles.collect` removes each copy that no upload manifest of any collection
  names any more. Both run under the service's write lock, so a copy kept for an upload still
  running is never collected. Deleting a document therefore deletes its copy (unless another
  collection or source holds identical content), identical content is kept once, and a failed
  or cancelled upload leaves nothing behind.
- **Where a file is** (:meth:`DocumentFiles.locate`), by the kind of its source
  (:data:`_LOCATORS`): an upload is its kept copy; a sample document is the bundled PDF; a file
  ingested from disk is its path, as long as it is still there with the content it was ingested
  with. When there is no file, the location says why.
- **A hit's page** (:meth:`DocumentFiles.page_view`): rendered by :func:`ingest.pageview.render_hit_page`
  with the settings' OCR options and the page cache, the passage highlighted.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.errors import (
    DocumentViewError,
    FileChangedError,
    FileMovedError,
    FileNotKeptError,
    PasswordRequiredError,
)
from ingest.errors import PasswordError
from ingest.ocr.base import OcrOptions
from ingest.pagecache import PageCache
from ingest.pageview import PageImage, render_hit_page
from ingest.sample_corpus import SAMPLE_DIR, SAMPLE_PREFIX
from store.client import list_collections
from store.core import store_for
from store.errors import FileStoreError, StoreError
from store.files import ALLOWED_SUFFIXES, FileStore
from store.payload import UPLOAD_PREFIX

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from config import Settings
    from ingest.sources import SourceFile
    from retrieval.engine import Hit

logger = logging.getLogger(__name__)

#: The media type of a file offered for download, by suffix.
MEDIA_TYPES = {".pdf": "application/pdf", ".txt": "text/plain", ".md": "text/markdown"}
_HASH_BLOCK = 1 << 20


class FileRef(Protocol):
    """What names a document's file: a :class:`~retrieval.engine.Hit` or a :class:`~store.manifest.DocumentManifest`."""

    @property
    def source(self) -> str:
        """The stored source (a path, ``upload:NAME`` or ``sample:NAME``)."""
        ...

    @property
    def file_name(self) -> str:
        """The display name."""
        ...

    @property
    def file_sha256(self) -> str:
        """The hex sha256 of the file's bytes as ingested."""
        ...


@dataclass(frozen=True)
class FileLocation:
    """Where a document's file is now, or why there is none.

    Attributes:
        path: the file (``None``: see :attr:`error`).
        error: why there is no file, as the error :meth:`DocumentFiles.page_view` raises.
    """

    path: Path | None
    error: DocumentViewError | None = None

    @property
    def reason(self) -> str | None:
        """Why there is no file (``None`` when there is one)."""
        return str(self.error) if self.error is not None else None


def _missing(error: DocumentViewError) -> FileLocation:
    return FileLocation(path=None, error=error)


class DocumentFiles:
    """The kept uploads of a data directory and the files of a store's documents.

    Nothing is read or created until a method needs it.

    Args:
        settings: the settings (``data_dir``, the ``ingest`` OCR options, the store).
        client: the service's Qdrant client (for the manifests of every collection).
    """

    def __init__(self, settings: Settings, client: QdrantClient) -> None:
        self.settings = settings
        self.client = client
        self._hashes: dict[tuple[str, int, int], str] = {}

    @functools.cached_property
    def store(self) -> FileStore:
        """The kept uploads (``<data_dir>/files``)."""
        return FileStore.for_data_dir(self.settings.data_dir)

    @functools.cached_property
    def page_cache(self) -> PageCache:
        """The page-text cache of the data directory (OCR output and boxes are not computed twice)."""
        return PageCache.for_data_dir(self.settings.data_dir)

    @functools.cached_property
    def ocr_options(self) -> OcrOptions:
        """The OCR options of the settings (for OCR boxes of pages that were OCR'd)."""
        return OcrOptions.from_settings(self.settings.ingest)

    # -- kept uploads ------------------------------------------------------------------------------

    def keep(self, files: Iterable[SourceFile]) -> list[Path]:
        """Keep the bytes of every upload among ``files`` (call it under the write lock, before the ingest).

        Files from disk are not copied (their path is their location), nor files of a type
        that is not ingested.

        Returns:
            The kept copies.

        Raises:
            FileStoreError: the data directory cannot be written (the message names it and the fix).
        """
        kept = []
        for file in files:
            suffix = Path(file.file_name).suffix.lower()
            if file.source.startswith(UPLOAD_PREFIX) and file.data is not None and suffix in ALLOWED_SUFFIXES:
                kept.append(self.store.put(file.data, suffix=suffix))
        return kept

    def live_hashes(self) -> set[str] | None:
        """The sha256 of every upload that a manifest of any collection names (``None``: one cannot be read)."""
        live: set[str] = set()
        for name in list_collections(self.client):
            try:
                documents = store_for(self.settings, name, client=self.client).documents()
            except (StoreError, ValueError) as exc:  # a manifest that does not parse (pydantic: ValueError)
                logger.warning("kept files not collected: the manifests of %r cannot be read (%s)", name, exc)
                return None
            live.update(doc.file_sha256 for doc in documents if doc.source.startswith(UPLOAD_PREFIX))
        return live

    def collect(self) -> list[str]:
        """Remove the kept copies that no upload manifest names (call it under the write lock).

        A failure is logged, not raised: the ingest, delete or drop it follows has succeeded,
        and the next one collects again.

        Returns:
            The sha256 of the removed copies.
        """
        try:
            if not self.store.shas():
                return []
            live = self.live_hashes()
            return self.store.collect(live) if live is not None else []
        except FileStoreError as exc:
            logger.warning("kept files not collected: %s", exc)
            return []

    # -- where a file is ---------------------------------------------------------------------------

    def locate(self, item: FileRef) -> FileLocation:
        """Where the file of a hit or a document is now, or why there is none.

        Args:
            item: a hit or a manifest (its ``source``, ``file_name`` and ``file_sha256``).

        Returns:
            The location: an upload's kept copy, the bundled sample PDF, or the file on disk when
            it still has the content it was ingested with.
        """
        for prefix, locator in _LOCATORS:
            if item.source.startswith(prefix):
                return locator(self, item)
        return self._checked(Path(item.source), item, ingest_again=True)

    def _upload(self, item: FileRef) -> FileLocation:
        try:
            path = self.store.path(item.file_sha256) if item.file_sha256 else None
        except FileStoreError:  # a hash that is not one: nothing can be kept under it
            path = None
        if path is None:
            return _missing(
                FileNotKeptError(
                    f"no copy of {item.file_name} is kept (it was uploaded before the app kept files); "
                    "upload it again to show its pages"
                )
            )
        return FileLocation(path=path)

    def _sample(self, item: FileRef) -> FileLocation:
        name = item.source[len(SAMPLE_PREFIX) :]
        if Path(name).name != name or not name:
            return _missing(FileNotKeptError(f"{item.source!r} names no bundled sample file"))
        return self._checked(SAMPLE_DIR / name, item, ingest_again=False)

    def _checked(self, path: Path, item: FileRef, *, ingest_again: bool) -> FileLocation:
        """``path`` if it is a file with the content ``item`` was ingested with."""
        fix = "ingest it again" if ingest_again else "delete it and index the sample corpus again"
        if not path.is_absolute() or not path.is_file():
            where = "from where it is now" if ingest_again else ""
            return _missing(
                FileMovedError(f"{item.file_name} is no longer at {str(path)!r}; {fix} {where}".rstrip())
            )
        try:
            sha = self._sha256(path)
        except OSError as exc:
            return _missing(FileMovedError(f"{str(path)!r} cannot be read ({exc.strerror or exc}); {fix}"))
        if item.file_sha256 and sha != item.file_sha256:
            return _missing(
                FileChangedError(
                    f"{str(path)!r} has changed since it was ingested, so its pages no longer match the "
                    f"hits; {fix}"
                )
            )
        return FileLocation(path=path)

    def _sha256(self, path: Path) -> str:
        """The file's sha256, remembered by path, modification time and size."""
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._hashes:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
                    digest.update(block)
            self._hashes[key] = digest.hexdigest()
        return self._hashes[key]

    def read(self, item: FileRef) -> bytes:
        """The bytes of the file of a hit or a document.

        Raises:
            DocumentViewError: there is no file (the message says why and what to do).
        """
        location = self.locate(item)
        if location.path is None:
            raise location.error or FileNotKeptError(f"no file of {item.file_name} is kept")
        try:
            return location.path.read_bytes()
        except OSError as exc:
            raise FileMovedError(
                f"{item.file_name} cannot be read ({exc.strerror or exc}); upload or ingest it again"
            ) from exc

    # -- a hit's page --------------------------------------------------------------------------------

    def page_view(self, hit: Hit, *, password: str | None = None) -> PageImage:
        """The page of a hit as an image, its passage highlighted.

        Args:
            hit: the hit (a PDF page).
            password: the password of an encrypted PDF (used for this rendering only).

        Returns:
            The page image.

        Raises:
            PasswordRequiredError: the file is an encrypted PDF and ``password`` does not open it.
            DocumentViewError: the file is not kept, moved or changed, or the hit has no page.
            DocumentError: the page cannot be rendered (the message names the file and why).
        """
        if hit.page is None:
            raise DocumentViewError(f"{hit.file_name} is a text file without pages; download it to read it")
        data = self.read(hit)
        try:
            return render_hit_page(
                data,
                file_name=hit.file_name,
                page=hit.page,
                passage=hit.text,
                ocr=hit.ocr,
                password=password or None,
                ocr_options=self.ocr_options,
                cache=self.page_cache,
            )
        except PasswordError as exc:
            raise PasswordRequiredError(hit.file_name, wrong=exc.wrong) from exc


#: How the file of a document is found, by the prefix of its source (others are paths on disk).
_LOCATORS: tuple[tuple[str, Callable[[DocumentFiles, FileRef], FileLocation]], ...] = (
    (UPLOAD_PREFIX, DocumentFiles._upload),
    (SAMPLE_PREFIX, DocumentFiles._sample),
)


def media_type(file_name: str) -> str:
    """The media type to offer a file for download as (``application/octet-stream`` when unknown)."""
    return MEDIA_TYPES.get(Path(file_name).suffix.lower(), "application/octet-stream")
