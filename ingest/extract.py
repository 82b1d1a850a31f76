"""Text out of PDFs (per page, with page numbers), ``.txt`` and ``.md`` files.

Every way a file can be unusable ends in a :class:`~ingest.errors.DocumentError` whose message
says what is wrong with that file and, where there is one, the fix: an encrypted PDF without
its password, a malformed or truncated PDF, a scan without a text layer, an empty file, a
non-PDF named ``.pdf``, a binary file named ``.txt``. A garbled text layer cannot be detected
and is ingested as it is.

Extracted text is cleaned conservatively (:func:`clean_text`): NUL and control characters are
dropped, ligatures expanded, words hyphenated at a line end joined, whitespace normalised.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
import unicodedata
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from ingest.errors import DocumentError

if TYPE_CHECKING:
    from pypdf import PdfReader

logger = logging.getLogger(__name__)

#: How far into a file a PDF header may start (the PDF spec tolerates leading junk).
_PDF_HEADER_WINDOW = 1024


@dataclass(frozen=True)
class Page:
    """The text of one page (or of a whole text file).

    Attributes:
        number: 1-based page number; ``None`` for text files.
        text: the cleaned text.
    """

    number: int | None
    text: str


@dataclass(frozen=True)
class ExtractedText:
    """The text of a document.

    Attributes:
        pages: pages that have text, in order (empty pages are left out).
        page_count: pages in the PDF, empty ones included; ``None`` for text files.
        kind: ``"pdf"`` or ``"text"``.
    """

    pages: tuple[Page, ...]
    page_count: int | None
    kind: str


# -- cleaning ----------------------------------------------------------------------------------

_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
# Control characters except tab and newline (form feeds become newlines first).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# A letter, a hyphen (or soft hyphen) at the end of a line, then a letter on the next line.
_HYPHEN_BREAK = re.compile(r"([^\W\d_])[-\u00ad][ \t]*\n[ \t]*([^\W\d_])")
_SPACES = re.compile(r"[^\S\n]+")  # whitespace other than newlines
_MANY_NEWLINES = re.compile(r"\n{3,}")


def _join_hyphenated(match: re.Match[str]) -> str:
    before, after = match.group(1), match.group(2)
    # Only "exam-\nple" (lower-case continuation): "Jean-\nPaul" and "COVID-\n19" keep the break.
    if after.islower():
        return before + after
    return match.group(0)


def clean_text(text: str) -> str:
    r"""Conservative clean-up of extracted text.

    * ``\r\n``, ``\r`` and form feeds become ``\n``; NUL and other control characters go;
    * Unicode NFC; typographic ligatures (``ﬁ``) are expanded; soft hyphens inside lines go;
    * a word hyphenated at a line end is joined when the next line continues in lower case;
    * runs of spaces and tabs become one space, lines are stripped, three or more line breaks
      become a paragraph break (two).

    Args:
        text: raw text.

    Returns:
        The cleaned text (stripped).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text).translate(_LIGATURES)
    text = _HYPHEN_BREAK.sub(_join_hyphenated, text)
    text = text.replace("\u00ad", "")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


# -- text files --------------------------------------------------------------------------------


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13))
    return controls > max(8, len(sample) // 100)


def decode_text(data: bytes, *, file_name: str) -> str:
    """Decode a text file: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252.

    Args:
        data: the file's bytes.
        file_name: for messages.

    Returns:
        The text.

    Raises:
        DocumentError: empty, binary, or a PDF named as text.
    """
    if not data:
        raise DocumentError(f"{file_name!r} is an empty file (0 bytes)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(
                f"{file_name!r} has a UTF-16 byte-order mark but is not valid UTF-16"
            ) from exc
    if data.lstrip()[:5] == b"%PDF-":
        raise DocumentError(f"{file_name!r} is a PDF file with a text extension; rename it to .pdf")
    if _looks_binary(data):
        raise DocumentError(
            f"{file_name!r} is a binary file, not text (it contains NUL or control bytes); "
            "only UTF-8 text is read from .txt and .md files"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise DocumentError(
                f"{file_name!r} is not valid UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}) "
                "and not Windows-1252 either; save it as UTF-8"
            ) from exc
        logger.warning("%s is not UTF-8; read it as Windows-1252", file_name)
        return text


# -- PDF ---------------------------------------------------------------------------------------


class _PypdfToDebug(logging.Handler):
    """Re-log pypdf's records (it warns freely on imperfect files) as debug lines of this module."""

    def emit(self, record: logging.LogRecord) -> None:
        level = logging.DEBUG if record.levelno < logging.ERROR else logging.WARNING
        logger.log(level, "pypdf: %s", record.getMessage())


def _quiet_pypdf() -> None:
    """Route pypdf's log warnings to debug logging of this module (installed once)."""
    pypdf_logger = logging.getLogger("pypdf")
    if not any(isinstance(h, _PypdfToDebug) for h in pypdf_logger.handlers):
        pypdf_logger.addHandler(_PypdfToDebug())
        pypdf_logger.propagate = False
        from pypdf.errors import PdfReadWarning

        warnings.filterwarnings("ignore", category=PdfReadWarning)


def _describe_start(data: bytes) -> str:
    head = data[:_PDF_HEADER_WINDOW].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:200]:
        return "it looks like an HTML page (a failed download?)"
    if head.startswith((b"pk\x03\x04",)):
        return "it looks like a ZIP archive (e.g. .docx)"
    if head.startswith((b"\x89png", b"\xff\xd8\xff", b"gif8")):
        return "it looks like an image"
    if head.startswith((b"{", b"[")):
        return "it looks like JSON"
    preview = data[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
    return f"it starts with {preview!r}"


def _open_pdf(data: bytes, *, file_name: str, password: str | None) -> PdfReader:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except (PdfReadError, FileNotDecryptedError) as exc:
        raise DocumentError(
            f"{file_name!r} is a malformed or truncated PDF that cannot be opened ({exc}); "
            "re-download it or repair it (e.g. qpdf in.pdf out.pdf)"
        ) from exc
    except Exception as exc:  # pypdf raises many types on broken files; all mean "malformed"
        raise DocumentError(
            f"{file_name!r} is a malformed PDF that cannot be opened ({type(exc).__name__}: {exc}); "
            "re-download it or repair it (e.g. qpdf in.pdf out.pdf)"
        ) from exc
    if not reader.is_encrypted:
        return reader
    try:
        # An owner-password-only PDF opens with the empty user password.
        opened = reader.decrypt("")
        if not opened and password:
            opened = reader.decrypt(password)
    except DependencyError as exc:
        raise DocumentError(
            f"{file_name!r} is encrypted with an algorithm that needs an extra package: {exc}"
        ) from exc
    except Exception as exc:  # broken encryption dictionaries raise assorted errors
        raise DocumentError(
            f"{file_name!r} is an encrypted PDF whose encryption data is damaged ({type(exc).__name__})"
        ) from exc
    if not opened:
        if password:
            raise DocumentError(
                f"{file_name!r} is an encrypted PDF and the password given does not open it; "
                "check the password (--password)"
            )
        raise DocumentError(
            f"{file_name!r} is an encrypted PDF that needs a password; pass it with --password "
            "(or remove the encryption, e.g. qpdf --decrypt --password=PW in.pdf out.pdf)"
        )
    return reader


def _has_images(reader: PdfReader, limit: int = 50) -> bool:
    for page in list(reader.pages)[:limit]:
        try:
            resources: Any = page.get("/Resources")
            if resources is None:
                continue
            xobjects = resources.get_object().get("/XObject")
            if xobjects is None:
                continue
            for ref in xobjects.get_object().values():
                if ref.get_object().get("/Subtype") == "/Image":
                    return True
        except Exception:  # a broken resource dictionary just means "no image found here"
            logger.debug("could not inspect images of a page", exc_info=True)
    return False


class PageTextCache:
    """pypdf's text of PDF pages, by a fingerprint of everything the extraction reads.

    Re-ingesting an edited PDF extracts only the pages that changed: a page's fingerprint is
    the sha256 of its content streams and its resources (fonts with their encodings,
    ToUnicode maps and widths, form XObjects: every object reachable from the page except its
    parent in the page tree), its rotation, and the pypdf version. Streams count by their
    dictionary (filters included) and their encoded bytes: nothing is decompressed, so an
    image that decodes to tens of MB costs only its size in the file. Bounded (least recently used out); in memory, shared by the threads of a process.

    Args:
        max_entries: most pages kept.
    """

    def __init__(self, max_entries: int = 8192) -> None:
        self.max_entries = max_entries
        self._texts: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> str | None:
        """The cached text, or ``None``."""
        with self._lock:
            text = self._texts.get(key)
            if text is None:
                self.misses += 1
                return None
            self._texts.move_to_end(key)
            self.hits += 1
            return text

    def put(self, key: bytes, text: str) -> None:
        """Remember a page's text."""
        with self._lock:
            self._texts[key] = text
            self._texts.move_to_end(key)
            while len(self._texts) > self.max_entries:
                self._texts.popitem(last=False)

    def clear(self) -> None:
        """Forget every page."""
        with self._lock:
            self._texts.clear()


#: The process-wide page cache :func:`extract_pdf` uses by default.
PAGE_TEXT_CACHE = PageTextCache()


def page_fingerprint(page: Any, memo: dict[tuple[int, int], bytes]) -> bytes:
    """sha256 of what pypdf's ``extract_text`` reads from a page (see :class:`PageTextCache`).

    Args:
        page: a pypdf page.
        memo: digests of indirect objects already hashed in this document (fonts shared by
            many pages are hashed once).
    """
    import pypdf

    digest = hashlib.sha256(f"pypdf {pypdf.__version__}\x00".encode())
    for key in ("/Contents", "/Resources", "/Rotate"):
        digest.update(key.encode() + b"\x00")
        _feed(digest, page.get(key), memo, set())
    return digest.digest()


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


def extract_pdf(
    data: bytes,
    *,
    file_name: str,
    password: str | None = None,
    page_cache: PageTextCache | None = PAGE_TEXT_CACHE,
) -> ExtractedText:
    """Text of each page of a PDF.

    Args:
        data: the PDF's bytes.
        file_name: for messages.
        password: user or owner password of an encrypted PDF.
        page_cache: pages seen before (by fingerprint) are not extracted again; ``None``
            extracts every page.

    Returns:
        The pages with text, their 1-based numbers, and the page count.

    Raises:
        DocumentError: empty, not a PDF, malformed, encrypted without a working password, or
            without any text layer.
    """
    if not data:
        raise DocumentError(f"{file_name!r} is an empty file (0 bytes)")
    if b"%PDF-" not in data[:_PDF_HEADER_WINDOW]:
        raise DocumentError(f"{file_name!r} is not a PDF although it is named .pdf: {_describe_start(data)}")
    _quiet_pypdf()
    reader = _open_pdf(data, file_name=file_name, password=password)
    try:
        page_objects = list(reader.pages)
    except Exception as exc:  # a broken page tree raises assorted errors
        raise DocumentError(
            f"{file_name!r} is a malformed PDF: its page tree cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    if not page_objects:
        raise DocumentError(f"{file_name!r} is a PDF without pages")
    pages: list[Page] = []
    broken: list[int] = []
    memo: dict[tuple[int, int], bytes] = {}
    for number, page in enumerate(page_objects, start=1):
        key = None
        if page_cache is not None:
            try:
                key = page_fingerprint(page, memo)
            except Exception:  # an unreadable object: extract the page (which reports the problem)
                logger.debug("page %d of %s: no fingerprint", number, file_name, exc_info=True)
        cached = page_cache.get(key) if page_cache is not None and key is not None else None
        try:
            raw = cached if cached is not None else (page.extract_text() or "")
        except Exception:  # one broken content stream should not lose the other pages
            logger.debug("page %d of %s: text extraction failed", number, file_name, exc_info=True)
            broken.append(number)
            continue
        if cached is None and page_cache is not None and key is not None:
            page_cache.put(key, raw)
        text = clean_text(raw)
        if text:
            pages.append(Page(number=number, text=text))
    if broken and len(broken) == len(page_objects):
        raise DocumentError(
            f"{file_name!r} is a malformed PDF: text extraction failed on all {len(broken)} page(s)"
        )
    if broken:
        logger.warning(
            "%s: text extraction failed on page(s) %s; the other pages are ingested",
            file_name,
            ", ".join(map(str, broken)),
        )
    if not pages:
        count = len(page_objects)
        if _has_images(reader):
            raise DocumentError(
                f"{file_name!r} has no text layer: its {count} page(s) are images only (a scan?); "
                "OCR is out of scope - add a text layer first (e.g. ocrmypdf in.pdf out.pdf)"
            )
        raise DocumentError(
            f"{file_name!r} has no text layer: its {count} page(s) contain no extractable text "
            "(blank pages?); OCR is out of scope"
        )
    return ExtractedText(pages=tuple(pages), page_count=len(page_objects), kind="pdf")


def extract_text(data: bytes, *, file_name: str, password: str | None = None) -> ExtractedText:
    """Text of a PDF, ``.txt`` or ``.md`` file, chosen by the file name's extension.

    Args:
        data: the file's bytes.
        file_name: the file name (its extension selects the reader).
        password: password for an encrypted PDF.

    Returns:
        The extracted text.

    Raises:
        DocumentError: the file cannot be turned into text; the message says why.
    """
    suffix = PurePath(file_name).suffix.lower()
    if suffix == ".pdf":
        return extract_pdf(data, file_name=file_name, password=password)
    if suffix in (".txt", ".md"):
        text = clean_text(decode_text(data, file_name=file_name))
        if not text:
            raise DocumentError(f"{file_name!r} contains no text (only whitespace)")
        return ExtractedText(pages=(Page(number=None, text=text),), page_count=None, kind="text")
    raise DocumentError(f"unsupported file type {suffix or '(no extension)'!r} for {file_name!r}")
