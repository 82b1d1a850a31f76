"""How the front doors word counts and messages: plurals, page lists, and the page's own wording of CLI advice.

The ingest layer words its errors for the command line (``pass it with --password``); the
Streamlit page has no command line, so :func:`for_the_page` rewrites those messages into what
the page offers instead (its Password field). The rewrites are a registry of patterns, so a new
one is a line, not a branch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Ingest messages worded for the command line, and the page's wording: pattern -> template
#: (the template is formatted with the pattern's named groups).
PAGE_WORDING: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"^(?P<q>['\"])(?P<name>.+?)(?P=q) is an encrypted PDF and the password given does not open it\b"
        ),
        "the password does not open {name}; check it and upload again",
    ),
    (
        re.compile(r"^(?P<q>['\"])(?P<name>.+?)(?P=q) is an encrypted PDF that needs a password\b"),
        "{name} is an encrypted PDF: type its password in the Password field and upload it again",
    ),
)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``"1 chunk"``, ``"2 chunks"``, ``"0 chunks"``.

    Args:
        count: how many.
        word: the singular.
        many: the plural when it is not ``word + "s"``.

    Returns:
        The count and the word in the right number.
    """
    return f"{count} {word if count == 1 else (many or word + 's')}"


def page_list(pages: Iterable[int]) -> str:
    """``"page 3"``, ``"pages 2, 5, 7"`` (sorted)."""
    numbers = sorted(pages)
    label = "page" if len(numbers) == 1 else "pages"
    return f"{label} {', '.join(str(number) for number in numbers)}"


def for_the_page(message: str) -> str:
    """A message in the page's wording: command-line advice (``--password``) replaced by what the page offers.

    Args:
        message: a one-line message from a lower layer.

    Returns:
        The rewritten message, or ``message`` itself when no pattern of :data:`PAGE_WORDING` matches.
    """
    for pattern, template in PAGE_WORDING:
        match = pattern.search(message)
        if match is not None:
            return template.format(**match.groupdict())
    return message
