"""Names users choose, and how names and locations are shown.

One validator for collection names serves the CLI, the app and the Python API
(:func:`validate_collection_name`); :func:`display` escapes what a terminal or page would
otherwise interpret; :func:`redact_text` hides the credentials of any URL in a text before it is printed.
"""

from __future__ import annotations

import re
import unicodedata

from config.errors import ConfigError

#: Suffix of the internal collection that holds a collection's document manifests.
MANIFEST_SUFFIX = "__documents"
#: Suffixes reserved for internal collections; no user collection may end in one.
RESERVED_SUFFIXES: tuple[str, ...] = (MANIFEST_SUFFIX,)
#: Longest collection name accepted (the embedded store makes a folder of it).
MAX_COLLECTION_NAME = 100
#: Characters that would be read as markup, a path or a Qdrant location.
_FORBIDDEN = frozenset("/\\:<>&\"'`*?|")
#: Bidirectional controls: they reorder what is shown (display spoofing).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class InvalidNameError(ConfigError):
    """A collection name is not allowed; the message says which rule it breaks."""


def _is_hidden_control(char: str) -> bool:
    return char in _BIDI or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def validate_collection_name(name: str) -> str:
    """Check a user-chosen collection name and return it stripped of surrounding spaces.

    Args:
        name: the name as typed.

    Returns:
        The name without leading or trailing white space.

    Raises:
        InvalidNameError: the name is empty, ``.`` or ``..``, too long, ends in a reserved
            suffix, or holds a path separator, ``:``, markup, or a control or bidirectional
            character. The message names the offending part and what is allowed.
    """
    cleaned = name.strip() if isinstance(name, str) else ""
    shown = display(name) if isinstance(name, str) else repr(name)
    rule = "use 1-100 characters such as letters, digits, spaces, '-', '_' and '.'"
    if not cleaned:
        raise InvalidNameError(f"collection name {shown!r} is empty; {rule}")
    if cleaned in (".", ".."):
        raise InvalidNameError(f"collection name {shown!r} is not allowed; {rule}")
    if len(cleaned) > MAX_COLLECTION_NAME:
        raise InvalidNameError(
            f"collection name {shown[:40]!r}... is {len(cleaned)} characters long; "
            f"use at most {MAX_COLLECTION_NAME}"
        )
    hidden = sorted({f"U+{ord(c):04X}" for c in cleaned if _is_hidden_control(c)})
    if hidden:
        raise InvalidNameError(
            f"collection name {shown!r} holds control or bidirectional characters ({', '.join(hidden)}); {rule}"
        )
    bad = sorted({c for c in cleaned if c in _FORBIDDEN})
    if bad:
        raise InvalidNameError(
            f"collection name {shown!r} holds {' '.join(repr(c) for c in bad)} "
            f"(path separators, ':' and markup are not allowed); {rule}"
        )
    for suffix in RESERVED_SUFFIXES:
        if cleaned.endswith(suffix):
            raise InvalidNameError(
                f"collection name {shown!r} ends in {suffix!r}, which is reserved for internal collections; "
                "choose another name"
            )
    return cleaned


def is_internal_collection(name: str) -> bool:
    """Whether ``name`` is an internal collection (a manifest collection), never a user's."""
    return name.endswith(RESERVED_SUFFIXES)


def display(text: str) -> str:
    r"""``text`` with control, format and bidirectional characters escaped (``\\x1b``, ``\\u202e``).

    File and collection names are printed through this, so that an escape sequence in a name
    cannot retitle or clear a terminal, and a right-to-left override cannot reorder a line.
    """
    if not any(_is_hidden_control(c) for c in text):
        return text
    out: list[str] = []
    for char in text:
        if not _is_hidden_control(char):
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


#: ``scheme://user:password@`` (up to the last ``@`` before the path): the part to hide.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/'\"]*@")


def redact_text(text: str) -> str:
    """``text`` with the user name and password of every URL inside it replaced by ``***``.

    Args:
        text: a URL, a message, a log line or a traceback.

    Returns:
        The text; ``http://admin:SECRET@host:6333`` becomes ``http://***@host:6333``. Text
        without credentials in a URL comes back unchanged.
    """
    return _URL_CREDENTIALS.sub(r"\1***@", text)


__all__ = [
    "MANIFEST_SUFFIX",
    "MAX_COLLECTION_NAME",
    "RESERVED_SUFFIXES",
    "InvalidNameError",
    "display",
    "is_internal_collection",
    "redact_text",
    "validate_collection_name",
]
