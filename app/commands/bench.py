"""The ``bench`` subcommand: query latency (embed + search) at 10k/50k chunks and peak RSS."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.evaluation.record import DOCS, save_result
from config import Settings


def register(subparsers: Any) -> None:
    """Add ``bench``."""
    parser = subparsers.add_parser("bench", help="measure query latency, ingest throughput and memory")
    parser.add_argument("--sizes", default="10000,50000", help="store sizes in chunks (default 10000,50000)")
    parser.add_argument("--queries", type=int, default=50, help="real queries per pass (default 50)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="passes per size; figures are medians (default 5)"
    )
    parser.add_argument(
        "--passages", type=int, default=300, help="real passages embedded for the store (default 300)"
    )
    parser.add_argument("--data", default=str(Path("..") / "shared" / "data"), help="shared data folder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--record", action="store_true", help="save to docs/results and re-render docs/benchmarks.md"
    )
    parser.add_argument("--docs-dir", default=str(DOCS), help="docs folder for --record (default: docs)")
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace, settings: Settings) -> int:
    from app.cli import print_json
    from app.evaluation.latency import load_corpus, measure_latency
    from embedder import make_embedder

    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        print(f"error: --sizes {args.sizes!r} must be comma-separated whole numbers", file=sys.stderr)
        return 2
    data = Path(args.data)
    corpus = load_corpus(data if data.is_dir() else None, args.passages, args.queries)
    embedder = make_embedder(settings.model)
    print(f"latency: {len(corpus.passages)} real passages from {corpus.name}, sizes {sizes}", file=sys.stderr)
    figures: dict[str, Any] = {"model": embedder.model_id}
    figures.update(measure_latency(settings, embedder, corpus, sizes, repeats=args.repeats))
    if args.record:
        save_result("latency", "query-latency", figures, command=args.command_line, docs=Path(args.docs_dir))
    if args.json:
        print_json(figures)
    else:
        for key, value in figures.items():
            print(f"{key:>24}: {value}")
    return 0
