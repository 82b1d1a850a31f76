"""Uploaded files kept by content hash, so a hit can be shown on its page and the file opened again.

:class:`FileStore` owns the folder ``<data_dir>/files``: each file is one copy named by the
SHA-256 of its bytes, sharded by the hash's first two hex digits
(``files/ab/ab12...ef.pdf``). Names given by users never become paths: the store takes bytes
and a suffix from an allow-list, and finds copies by a validated 64-digit lowercase hash only.
Writes are atomic (a temporary file in the same folder, then :func:`os.replace`), so no reader
ever sees half a file under its final name, and identical content is stored once.

The store knows nothing of collections: which hashes are still referenced is the caller's
knowledge (the document manifests), handed to :meth:`FileStore.collect`. Call ``collect`` under
the same write lock as ingest and delete, or a file put for an upload still running (not yet in
any manifest) is removed with the garbage.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from store.errors import FileStoreError

#: Suffixes a kept file may have (the ingestible types).
ALLOWED_SUFFIXES: tuple[str, ...] = (".pdf", ".txt", ".md")
#: Name of the store's folder under the data directory.
FILES_DIR = "files"
#: A stray temporary file younger than this (seconds) may belong to a write in progress.
TEMP_GRACE_SECONDS = 60.0

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX = ".tmp-"
_TEMP_SUFFIX = ".part"


def validate_sha256(sha256: str) -> str:
    """Return ``sha256`` if it is 64 lowercase hex digits.

    Raises:
        FileStoreError: anything else (it would otherwise become part of a path).
    """
    if not isinstance(sha256, str) or _SHA256.fullmatch(sha256) is None:
        raise FileStoreError(
            f"{sha256!r} is not a content hash: a kept file is named by 64 lowercase hex digits "
            "(the SHA-256 of its bytes)"
        )
    return sha256


def _validate_suffix(suffix: str) -> str:
    if suffix not in ALLOWED_SUFFIXES:
        raise FileStoreError(f"suffix {suffix!r} is not kept: use one of {', '.join(ALLOWED_SUFFIXES)}")
    return suffix


class FileStore:
    """Uploaded files kept by content hash under ``<data_dir>/files/`` (``root/ab/<sha256><suffix>``)."""

    def __init__(self, root: Path) -> None:
        """Use ``root`` as the store's folder; nothing is created until :meth:`put`.

        Args:
            root: the folder holding the shard folders.
        """
        self.root = Path(root)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> FileStore:
        """The store of a data directory: ``data_dir / "files"`` (created on the first put)."""
        return cls(Path(data_dir) / FILES_DIR)

    def _shard(self, sha256: str) -> Path:
        return self.root / sha256[:2]

    def put(self, data: bytes, *, suffix: str = ".pdf") -> Path:
        """Keep ``data`` and return the path of its copy.

        The copy is named by the SHA-256 of ``data``; content already kept (under any allowed
        suffix) is not written again and its existing path is returned.

        Args:
            data: the file's bytes.
            suffix: the file type, one of :data:`ALLOWED_SUFFIXES`.

        Returns:
            The path of the kept copy.

        Raises:
            FileStoreError: a suffix outside the allow-list, or the folder cannot be written.
        """
        _validate_suffix(suffix)
        sha256 = hashlib.sha256(data).hexdigest()
        existing = self.path(sha256)
        if existing is not None and _size(existing) == len(data):
            return existing
        shard = self._shard(sha256)
        final = shard / f"{sha256}{suffix}"
        with self._os_errors("store a file in"):
            shard.mkdir(parents=True, exist_ok=True)
            descriptor, temp_name = tempfile.mkstemp(dir=shard, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp_name, final)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
        return final

    def path(self, sha256: str) -> Path | None:
        """The kept copy of the content with this hash, or ``None``.

        Raises:
            FileStoreError: ``sha256`` is not 64 lowercase hex digits.
        """
        shard = self._shard(validate_sha256(sha256))
        for suffix in ALLOWED_SUFFIXES:
            candidate = shard / f"{sha256}{suffix}"
            if candidate.is_file():
                return candidate
        return None

    def delete(self, sha256: str) -> bool:
        """Remove the copy of this hash; ``True`` when there was one.

        Raises:
            FileStoreError: a malformed hash, or the copy cannot be removed.
        """
        shard = self._shard(validate_sha256(sha256))
        removed = False
        with self._os_errors("remove a file from"):
            for suffix in ALLOWED_SUFFIXES:
                candidate = shard / f"{sha256}{suffix}"
                if candidate.is_file():
                    candidate.unlink()
                    removed = True
        if removed:
            _remove_if_empty(shard)
        return removed

    def shas(self) -> set[str]:
        """The hashes of every kept copy (stray temporary files and foreign names left out)."""
        return {sha256 for sha256, _ in self._copies()}

    def collect(self, live: Iterable[str]) -> list[str]:
        """Remove every copy whose hash is not in ``live``, and stray temporary files.

        A temporary file younger than :data:`TEMP_GRACE_SECONDS` may belong to a write in
        progress and is left alone; older ones are leftovers of a killed write and are removed.

        Args:
            live: the hashes still referenced (by any collection's manifests).

        Returns:
            The removed hashes, sorted.

        Raises:
            FileStoreError: a copy cannot be removed.
        """
        keep = set(live)
        removed: set[str] = set()
        with self._os_errors("remove files from"):
            for sha256, copy in list(self._copies()):
                if sha256 not in keep:
                    copy.unlink(missing_ok=True)
                    removed.add(sha256)
            now = time.time()
            for temp in self._temp_files():
                if now - _mtime(temp, now) >= TEMP_GRACE_SECONDS:
                    temp.unlink(missing_ok=True)
        for shard in self._shards():
            _remove_if_empty(shard)
        return sorted(removed)

    def _shards(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [
            entry
            for entry in self.root.iterdir()
            if entry.is_dir() and re.fullmatch(r"[0-9a-f]{2}", entry.name)
        ]

    def _copies(self) -> Iterator[tuple[str, Path]]:
        names = re.compile(r"([0-9a-f]{64})(" + "|".join(re.escape(s) for s in ALLOWED_SUFFIXES) + r")")
        for shard in self._shards():
            for entry in shard.iterdir():
                match = names.fullmatch(entry.name)
                if match and match.group(1).startswith(shard.name) and entry.is_file():
                    yield match.group(1), entry

    def _temp_files(self) -> Iterator[Path]:
        for shard in self._shards():
            for entry in shard.iterdir():
                name = entry.name
                if name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX):
                    yield entry

    @contextmanager
    def _os_errors(self, action: str) -> Iterator[None]:
        """Turn an OS error into a FileStoreError naming the folder and the fix."""
        try:
            yield
        except PermissionError as exc:
            raise FileStoreError(
                f"cannot {action} {str(self.root)!r}: permission denied ({exc.strerror}); make the "
                "folder writable by this user or point data_dir at one that is"
            ) from exc
        except OSError as exc:
            raise FileStoreError(
                f"cannot {action} {str(self.root)!r}: {exc.strerror or exc}; check the disk and the folder"
            ) from exc


def _temp_file_in(shard: Path) -> tuple[int, str]:
    """A new temporary file in ``shard``, created with it; retried if a delete removed the folder."""
    for _ in range(2):
        shard.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            return tempfile.mkstemp(dir=shard, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)
    shard.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=shard, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _mtime(path: Path, default: float) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return default


def _remove_if_empty(folder: Path) -> None:
    # Not empty, or already gone: either way nothing to do.
    with contextlib.suppress(OSError):
        folder.rmdir()
