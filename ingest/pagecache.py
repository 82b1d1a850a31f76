"""The page cache: a page's text-layer text and its OCR output, by a fingerprint of the page.

Re-ingesting an edited PDF extracts, and above all OCRs, only the pages that changed: an entry
is keyed by :func:`page_fingerprint` (or :func:`render_fingerprint` for OCR, which also covers
what changes the rendered image) and a method tag (``text:pypdf`` for the text layer,
:attr:`ingest.ocr.base.OcrOptions.tag` such as ``ocr:rapidocr:en:200dpi:v1`` for OCR). Values are
strings (the text, or an OCR page as JSON), so the cache knows nothing of OCR.

:class:`PageCache` lives in memory (``path=None``: bounded, least recently used out) or in one
SQLite file (:meth:`PageCache.for_data_dir`: ``<data_dir>/cache/pages.sqlite``), shared by the
threads of a process and by processes (WAL journal, a busy timeout). A cache file that cannot be
opened or written is given up with one warning: the run goes on without it, it only gets slower.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

logger = logging.getLogger(__name__)

#: Method tag of pypdf's text of a page (the fingerprint holds pypdf's version).
TEXT_METHOD = "text:pypdf"

#: What pypdf's ``extract_text`` reads from a page.
_TEXT_KEYS = ("/Contents", "/Resources", "/Rotate")
#: What PDFium reads when it renders a page (annotations and form fields are drawn too).
_RENDER_KEYS = (*_TEXT_KEYS, "/MediaBox", "/CropBox", "/UserUnit", "/Annots")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pages (method TEXT NOT NULL, key BLOB NOT NULL, value TEXT NOT NULL, "
    "used REAL NOT NULL, PRIMARY KEY (method, key)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS pages_used ON pages (used)",
)
# Puts between two checks of the size of the SQLite cache.
_TRIM_EVERY = 256


class PageCache:
    """Page texts and OCR output by page fingerprint and method tag (see the module docstring).

    Thread-safe. ``hits`` and ``misses`` count lookups of every method.

    Args:
        path: the SQLite file (created with its folder); ``None`` keeps the entries in memory.
        max_entries: most entries kept (least recently used out); ``None``: 8,192 in memory,
            100,000 in a file.
    """

    _shared: ClassVar[dict[Path, PageCache]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path | None = None, max_entries: int | None = None) -> None:
        self.path = path
        self.max_entries = max_entries or (8192 if path is None else 100_000)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._memory: OrderedDict[tuple[str, bytes], str] = OrderedDict()
        self._db: sqlite3.Connection | None = None
        self._puts = 0
        if path is not None:
            self._db = self._connect(path)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> PageCache:
        """The persistent cache of a data folder, ``<data_dir>/cache/pages.sqlite`` (one per process and file)."""
        path = (Path(data_dir).expanduser() / "cache" / "pages.sqlite").resolve()
        with cls._shared_lock:
            cache = cls._shared.get(path)
            if cache is None:
                cache = cls._shared[path] = cls(path)
            return cache

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection | None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            logger.warning("page cache %s cannot be used (%s); pages are cached in memory only", path, exc)
            return None
        return db

    def _give_up(self, exc: sqlite3.Error) -> None:
        logger.warning(
            "page cache %s failed (%s); pages are cached in memory only from now on", self.path, exc
        )
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                logger.debug("closing the failed page cache", exc_info=True)
        self._db = None

    def get(self, key: bytes, method: str = TEXT_METHOD) -> str | None:
        """The cached value of a page for a method, or ``None``."""
        with self._lock:
            value = self._memory.get((method, key))
            if value is not None:
                self._memory.move_to_end((method, key))
            elif self._db is not None:
                value = self._db_get(key, method)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
            return value

    def _db_get(self, key: bytes, method: str) -> str | None:
        assert self._db is not None
        try:
            row = self._db.execute(
                "SELECT value FROM pages WHERE method = ? AND key = ?", (method, key)
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE pages SET used = ? WHERE method = ? AND key = ?", (time.time(), method, key)
            )
        except sqlite3.Error as exc:
            self._give_up(exc)
            return None
        return str(row[0])

    def put(self, key: bytes, value: str, method: str = TEXT_METHOD) -> None:
        """Remember a page's value for a method."""
        with self._lock:
            if self._db is not None:
                try:
                    self._db.execute(
                        "INSERT OR REPLACE INTO pages (method, key, value, used) VALUES (?, ?, ?, ?)",
                        (method, key, value, time.time()),
                    )
                    self._puts += 1
                    if self._puts % _TRIM_EVERY == 1:
                        self._trim()
                    return
                except sqlite3.Error as exc:
                    self._give_up(exc)
            self._memory[(method, key)] = value
            self._memory.move_to_end((method, key))
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)

    def _trim(self) -> None:
        assert self._db is not None
        (count,) = self._db.execute("SELECT COUNT(*) FROM pages").fetchone()
        if count > self.max_entries:
            self._db.execute(
                "DELETE FROM pages WHERE (method, key) IN "
                "(SELECT method, key FROM pages ORDER BY used LIMIT ?)",
                (count - self.max_entries,),
            )

    def __len__(self) -> int:
        """Entries held."""
        with self._lock:
            if self._db is not None:
                try:
                    return int(self._db.execute("SELECT COUNT(*) FROM pages").fetchone()[0])
                except sqlite3.Error as exc:
                    self._give_up(exc)
            return len(self._memory)

    def clear(self) -> None:
        """Forget every page."""
        with self._lock:
            self._memory.clear()
            if self._db is not None:
                try:
                    self._db.execute("DELETE FROM pages")
                except sqlite3.Error as exc:
                    self._give_up(exc)

    def close(self) -> None:
        """Close the SQLite file (the cache keeps working in memory)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


# -- fingerprints -----------------------------------------------------------------------------


def page_fingerprint(
    page: Any, memo: dict[tuple[int, int], bytes], keys: tuple[str, ...] = _TEXT_KEYS
) -> bytes:
    """sha256 of what pypdf's ``extract_text`` reads from a page.

    That is its content streams and its resources (fonts with their encodings, ToUnicode maps
    and widths, form XObjects: every object reachable from the page except its parent in the
    page tree), its rotation, and the pypdf version. Streams count by their dictionary (filters
    included) and their encoded bytes: nothing is decompressed, so an image that decodes to tens
    of MB costs only its size in the file.

    Args:
        page: a pypdf page.
        memo: digests of indirect objects already hashed in this document (fonts shared by
            many pages are hashed once).
        keys: the page dictionary's entries hashed.
    """
    import pypdf

    digest = hashlib.sha256(f"pypdf {pypdf.__version__}\x00".encode())
    for key in keys:
        digest.update(key.encode() + b"\x00")
        _feed(digest, page.get(key), memo, set())
    return digest.digest()


def render_fingerprint(page: Any, memo: dict[tuple[int, int], bytes]) -> bytes:
    """sha256 of what rendering a page reads: :func:`page_fingerprint`'s entries, its boxes and annotations."""
    return page_fingerprint(page, memo, _RENDER_KEYS)


def pdf_render_fingerprint(data: bytes, number: int, *, password: str | None) -> bytes | None:
    """:func:`render_fingerprint` of page ``number`` (1-based) of a PDF's bytes; ``None`` if pypdf cannot tell.

    Args:
        data: the PDF.
        number: the page.
        password: the password of an encrypted PDF.
    """
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt("") and not (password and reader.decrypt(password)):
            return None
        return render_fingerprint(reader.pages[number - 1], {})
    except Exception:  # any pypdf failure only means "not cached": the page is rendered all the same
        logger.debug("page %d: no fingerprint", number, exc_info=True)
        return None


def _feed(digest: Any, obj: Any, memo: dict[tuple[int, int], bytes], active: set[tuple[int, int]]) -> None:
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

    if isinstance(obj, IndirectObject):
        ref = (obj.idnum, obj.generation)
        if ref not in memo:
            if ref in active:  # a cycle: the reference itself identifies it
                digest.update(b"R%d %d" % ref)
                return
            active.add(ref)
            inner = hashlib.sha256()
            _feed(inner, obj.get_object(), memo, active)
            active.discard(ref)
            memo[ref] = inner.digest()
        digest.update(b"I" + memo[ref])
    elif isinstance(obj, StreamObject):
        digest.update(b"S")
        # The filters stay in: the bytes hashed are the encoded ones.
        _feed_dict(digest, obj, memo, active, skip=("/Length", "/Parent"))
        data = _stream_bytes(obj)
        digest.update(len(data).to_bytes(8, "big") + data)
    elif isinstance(obj, DictionaryObject):
        digest.update(b"D")
        _feed_dict(digest, obj, memo, active, skip=("/Parent",))
    elif isinstance(obj, ArrayObject | list):
        digest.update(b"A%d" % len(obj))
        for item in obj:
            _feed(digest, item, memo, active)
    else:
        text = repr(obj).encode("utf-8", "surrogatepass")
        digest.update(b"V" + len(text).to_bytes(4, "big") + text)


def _stream_bytes(stream: Any) -> bytes:
    """A stream's bytes as stored in the file (still encoded), without decoding it.

    ``get_data()`` would decode the stream and pypdf would keep the decoded copy: an image of a
    few KB on disk can decode to tens of MB. ``_data`` holds the bytes as read (decrypted, not
    decompressed); only a stream pypdf built itself (a content stream edited in memory) lacks
    them, and that is text, so it is decoded.
    """
    raw = getattr(stream, "_data", None)
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    data: bytes = stream.get_data()
    return data


def _feed_dict(
    digest: Any,
    obj: Any,
    memo: dict[tuple[int, int], bytes],
    active: set[tuple[int, int]],
    *,
    skip: tuple[str, ...],
) -> None:
    keys = sorted(str(key) for key in obj if str(key) not in skip)
    digest.update(b"%d" % len(keys))
    for key in keys:
        digest.update(key.encode("utf-8", "surrogatepass") + b"\x00")
        _feed(digest, obj.raw_get(key) if hasattr(obj, "raw_get") else obj[key], memo, active)
