"""The ``search`` subcommand.

``instructor-search search "QUERY" [--collection NAME] [--top-k K] [--document FILE ...]
[--threshold S] [--domain D] [--mode MODE] [--json]``
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli import print_json
from app.wording import plural
from config import display
from retrieval.modes import MODES

if TYPE_CHECKING:
    from app.service import LocatedResult
    from config import Settings


def register(subparsers: Any) -> None:
    """Add the ``search`` parser."""
    parser = subparsers.add_parser(
        "search",
        help="search a collection",
        description="Embed the query under the collection's query instruction and print the closest "
        "passages with file name, page and score.",
    )
    parser.add_argument("query", metavar="QUERY", help="the question or keywords (quote it)")
    parser.add_argument("--top-k", "-k", type=int, metavar="K", help="number of hits (default: app.top_k)")
    parser.add_argument(
        "--document",
        "-d",
        action="append",
        metavar="FILE",
        help="only search this document (file name, path or stored source); repeat for several",
    )
    parser.add_argument("--threshold", type=float, metavar="S", help="leave out hits scoring below S")
    parser.add_argument("--domain", metavar="DOMAIN", help="only chunks ingested with this domain")
    parser.add_argument(
        "--mode",
        choices=list(MODES),
        default=None,
        help="retrieval mode: dense, sparse (BM25), hybrid (both fused), sentences, keywords, questions, "
        "or a fusion (default: the search.mode setting)",
    )
    parser.add_argument("--json", action="store_true", help='print {"hits": [...]} as JSON')
    parser.set_defaults(handler=run_search)


def document_filter(values: list[str] | None) -> list[str] | None:
    """File names or sources to filter by: each value, plus its absolute path if it is a file."""
    if not values:
        return None
    names: list[str] = []
    for value in values:
        names.append(value)
        path = Path(value).expanduser()
        if path.exists():
            names.append(str(path.resolve()))
    return names


def format_result(located: LocatedResult, *, width: int = 100) -> str:
    """The human-readable form: numbered hits with file, page (``(OCR)`` when OCR'd), score and passage.

    File names and passages are shown through :func:`config.display` (no terminal escapes).
    """
    result = located.result
    instruction = result.instruction or "(none)"
    lines = [
        f"{plural(len(result.hits), 'hit')} in {result.collection!r} · mode {result.mode} · "
        f"query instruction: {instruction}"
    ]
    if result.note:
        lines.append(f"note: {display(result.note)}")
    if not result.hits:
        if result.score_threshold is not None:
            lines.append(f"no hits above the score threshold {result.score_threshold:g}")
        else:
            lines.append("no hits (the document filter may exclude everything)")
    for rank, hit in enumerate(result.hits, start=1):
        page = (f"page {hit.page}" if hit.page is not None else "text") + (" (OCR)" if hit.ocr else "")
        lines.append("")
        lines.append(f"{rank}. {display(hit.file_name)} · {page} · score {hit.score:.3f}")
        passage = display(" ".join(hit.text.split()))
        lines.extend(textwrap.wrap(passage, width=width, initial_indent="   ", subsequent_indent="   "))
    return "\n".join(lines)


def run_search(args: argparse.Namespace, settings: Settings) -> int:
    """Run a search and print the hits."""
    from app.service import search_once  # qdrant-client and the model stack: not for --help

    located = search_once(
        settings,
        args.query,
        top_k=args.top_k,
        score_threshold=args.threshold,
        documents=document_filter(args.document),
        domain=args.domain,
        mode=args.mode,  # None: search.mode, which falls back to dense in older collections
    )
    if args.json:
        print_json(located.to_json())  # each hit with its page, ocr and file_path (null: no file)
    else:
        print(format_result(located))
    return 0
