"""What to ingest: source files from disk or from an upload, and the per-file result.

A :class:`SourceFile` names a document by a logical ``source`` id (the resolved absolute path of
a file on disk, ``upload:<name>`` for a browser upload) and carries either a path to read or the
bytes themselves. :func:`discover` turns the paths a user typed into source files, and reports
the paths that cannot be ingested as ``failed`` results instead of raising.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ingest.errors import DocumentError
from store.payload import UPLOAD_PREFIX

#: File types that can be ingested (lower-case suffixes).
SUPPORTED_SUFFIXES: tuple[str, ...] = (".pdf", ".txt", ".md")

FileStatus = Literal["ingested", "unchanged", "replaced", "failed", "skipped", "cancelled"]
#: Every status, in the order reports list their counts.
FILE_STATUSES: tuple[FileStatus, ...] = (
    "ingested",
    "unchanged",
    "replaced",
    "failed",
    "skipped",
    "cancelled",
)


def file_sha256(data: bytes) -> str:
    """Hex sha256 of a file's bytes (the content id of its chunks)."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SourceFile:
    """One document to ingest.

    Attributes:
        source: logical id stored in ``metadata.source``: the resolved absolute path for files
            on disk, ``"upload:<sanitised-name>"`` for uploads.
        file_name: display name stored in ``metadata.file_name``.
        path: the file to read, or ``None`` when ``data`` is given.
        data: the file's bytes (uploads; the uploaded name is never used as a filesystem path).
    """

    source: str
    file_name: str
    path: Path | None = None
    data: bytes | None = None

    @property
    def display_path(self) -> str:
        """The path shown to the user (the path as found, or the source of an upload)."""
        return str(self.path) if self.path is not None else self.source

    def read_bytes(self) -> bytes:
        """The file's content.

        Raises:
            DocumentError: the file cannot be read (missing, a folder, no permission, I/O error).
        """
        if self.data is not None:
            return self.data
        if self.path is None:
            raise DocumentError(f"{self.source!r} has neither a path nor data to read")
        try:
            return self.path.read_bytes()
        except FileNotFoundError as exc:
            raise DocumentError(f"file not found: {str(self.path)!r} (moved or deleted?)") from exc
        except IsADirectoryError as exc:
            raise DocumentError(f"{str(self.path)!r} is a folder, not a file") from exc
        except PermissionError as exc:
            raise DocumentError(
                f"permission denied reading {str(self.path)!r}; make it readable (chmod +r) or skip it"
            ) from exc
        except OSError as exc:
            raise DocumentError(f"cannot read {str(self.path)!r}: {exc.strerror or exc}") from exc


@dataclass
class FileResult:
    """What happened to one file.

    Attributes:
        path: the path as given (or the upload's source).
        status: ``ingested`` (new), ``unchanged`` (same content already stored, nothing written),
            ``replaced`` (the source had other content, which was replaced), ``failed``,
            ``skipped`` (left out by :func:`discover`, e.g. a hidden file in a folder; the reason
            is in ``note``) or ``cancelled`` (the run was cancelled before the file was stored;
            nothing of it was kept, and a version stored earlier is still there).
        chunks: chunks stored for the file.
        error: why it failed (``None`` unless ``failed``).
        file_name: display name.
        pages: PDF pages (``None`` for text files or when unknown).
        source: the logical source id.
        note: extra information, e.g. that identical content is stored under another source.
        ocr_pages: 1-based pages whose text came from OCR.
        empty_pages: pages that yielded no text (a text layer and OCR, where it ran, found none).
        skipped_pages: pages that were not read, by page, with the reason (their content
            stream is broken, OCR is off with ``ingest.ocr = never``, or the engine failed).
        warning: one line naming the pages that yielded nothing, for a file that is stored
            all the same (``None`` when every page gave text).
    """

    path: str
    status: FileStatus
    chunks: int = 0
    error: str | None = None
    file_name: str = ""
    pages: int | None = None
    source: str = ""
    note: str | None = None
    ocr_pages: tuple[int, ...] = ()
    empty_pages: tuple[int, ...] = ()
    skipped_pages: dict[int, str] = field(default_factory=dict)
    warning: str | None = None

    def to_json(self) -> dict[str, object]:
        """The machine-readable form (``path``, ``status``, ``chunks``, ``error`` and extras)."""
        data: dict[str, object] = {
            "path": self.path,
            "status": self.status,
            "chunks": self.chunks,
            "error": self.error,
            "file_name": self.file_name,
            "pages": self.pages,
            "source": self.source,
        }
        if self.note:
            data["note"] = self.note
        data["ocr_pages"] = list(self.ocr_pages)
        data["empty_pages"] = list(self.empty_pages)
        data["skipped_pages"] = {str(page): reason for page, reason in sorted(self.skipped_pages.items())}
        data["warning"] = self.warning
        return data


def _failed(path: Path | str, error: str) -> FileResult:
    name = Path(path).name if str(path) else str(path)
    return FileResult(path=str(path), status="failed", error=error, file_name=name)


def _is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def _supported_list() -> str:
    return ", ".join(SUPPORTED_SUFFIXES)


def _skipped(path: Path, note: str) -> FileResult:
    return FileResult(path=str(path), status="skipped", file_name=path.name, note=note)


_HIDDEN_FILE = (
    "hidden file (its name starts with '.'): left out of its folder; name the file itself to ingest it"
)
_HIDDEN_FOLDER = (
    "hidden folder (its name starts with '.'): not descended into; name the folder itself to ingest its files"
)


def _folder_files(folder: Path, *, recursive: bool) -> tuple[list[Path], list[FileResult]]:
    """Supported files in a folder, sorted, and a ``skipped`` result for each hidden one left out.

    Hidden files of a supported type are reported one by one; a hidden subfolder (with
    ``recursive``) is reported once, without looking inside.
    """
    found: list[Path] = []
    skipped: list[FileResult] = []
    if recursive:
        for root, dirs, names in os.walk(folder, onerror=None, followlinks=False):
            hidden = sorted(d for d in dirs if d.startswith("."))
            skipped.extend(_skipped(Path(root, d), _HIDDEN_FOLDER) for d in hidden)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                candidate = Path(root, name)
                if not _is_supported(candidate):
                    continue
                if name.startswith("."):
                    skipped.append(_skipped(candidate, _HIDDEN_FILE))
                else:
                    found.append(candidate)
    else:
        for candidate in sorted(folder.iterdir()):
            if not (candidate.is_file() and _is_supported(candidate)):
                continue
            if candidate.name.startswith("."):
                skipped.append(_skipped(candidate, _HIDDEN_FILE))
            else:
                found.append(candidate)
    return found, skipped


def discover(
    paths: Sequence[str | Path], *, recursive: bool = False
) -> tuple[list[SourceFile], list[FileResult]]:
    """Expand files and folders into source files.

    Folders contribute their ``.pdf``, ``.txt`` and ``.md`` files (subfolders only with
    ``recursive``); hidden files and folders (names starting with ``.``) are left out, and
    each is reported. A hidden file named itself is ingested. A file named twice is ingested once.

    Args:
        paths: files and folders.
        recursive: descend into subfolders.

    Returns:
        The source files, and the results of the paths that are not ingested: ``failed`` for
        every path that does not exist, cannot be read, is of an unsupported type, or is a folder
        without supported files; ``skipped`` (reason in ``note``) for every hidden file of a
        supported type, and every hidden subfolder, left out of a folder. Callers that only
        care about problems filter on ``status == "failed"``.
    """
    sources: list[SourceFile] = []
    failures: list[FileResult] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        resolved = str(path.resolve())
        if resolved in seen:
            return
        seen.add(resolved)
        sources.append(SourceFile(source=resolved, file_name=path.name, path=path))

    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            reason = "is a broken symbolic link" if path.is_symlink() else "does not exist"
            failures.append(_failed(path, f"path {str(path)!r} {reason}"))
        elif path.is_dir():
            try:
                found, hidden = _folder_files(path, recursive=recursive)
            except PermissionError:
                failures.append(_failed(path, f"permission denied listing folder {str(path)!r}"))
                continue
            failures.extend(hidden)
            if not found:
                hint = "" if recursive else " (add --recursive to include subfolders)"
                failures.append(_failed(path, f"folder {str(path)!r} has no {_supported_list()} files{hint}"))
            for item in found:
                add(item)
        elif not path.is_file():
            failures.append(_failed(path, f"{str(path)!r} is not a regular file"))
        elif not _is_supported(path):
            failures.append(
                _failed(
                    path,
                    f"unsupported file type {path.suffix or '(no extension)'!r} for {path.name!r}; "
                    f"supported: {_supported_list()}",
                )
            )
        elif not os.access(path, os.R_OK):
            failures.append(
                _failed(path, f"permission denied reading {str(path)!r}; make it readable (chmod +r)")
            )
        else:
            add(path)
    return sources, failures


_UNSAFE_NAME = re.compile(r"[^\w.\- ()\[\]+,@&'=]+", re.UNICODE)


def sanitise_upload_name(name: str) -> str:
    """A safe display name for an uploaded file: no folders, control characters or odd symbols.

    Args:
        name: the name the browser sent.

    Returns:
        The base name, NFC-normalised, with unsafe characters replaced by ``_`` (at most 200
        characters; ``"upload"`` if nothing is left).
    """
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE_NAME.sub("_", base).strip(" .")
    if len(base) > 200:
        stem, dot, suffix = base.rpartition(".")
        base = (stem[: 200 - len(suffix) - 1] + dot + suffix) if dot and len(suffix) <= 10 else base[:200]
    return base or "upload"


def upload_source(name: str, data: bytes) -> SourceFile:
    """A source file for uploaded bytes (the name is sanitised and never touches the filesystem).

    Args:
        name: the uploaded file's name.
        data: its bytes.

    Returns:
        ``SourceFile(source="upload:<name>", file_name=<name>, data=data)``.
    """
    clean = sanitise_upload_name(name)
    return SourceFile(source=UPLOAD_PREFIX + clean, file_name=clean, data=data)
