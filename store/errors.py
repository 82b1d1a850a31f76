"""Errors of the store package (one base class)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by :mod:`store`."""


class StoreLockedError(StoreError):
    """The embedded Qdrant folder is already open in another process."""


class StoreConnectionError(StoreError):
    """The Qdrant server cannot be reached or refused the request."""


class CollectionNotFoundError(StoreError):
    """The collection does not exist yet."""


class CollectionMismatchError(StoreError):
    """The collection was built with another model, instructions or dimension."""


class DocumentNotFoundError(StoreError):
    """No stored document matches the given source, path or file name (or several do)."""


class FileStoreError(StoreError):
    """A kept file cannot be stored, found or removed (a bad content hash or suffix, or an OS error)."""


class MigrationError(StoreError):
    """A collection cannot be moved to another Qdrant (it is missing here, or already there)."""
