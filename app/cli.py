"""The ``instructor-search`` command line: one entry point, subcommands in their own modules.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``handler(args, settings) -> int`` as the parser default. This module builds the settings once
from ``--config``, the environment and the common flags, and turns the project's errors into
one-line messages and exit status 2 (usage/config) or 1 (failure).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any

from app.errors import AppError
from config import ConfigError, Settings, load_settings
from embedder import EmbedderError
from ingest.errors import IngestError

Handler = Callable[[argparse.Namespace, Settings], int]

#: Modules that add subcommands (each has ``register(subparsers)``).
COMMAND_MODULES = (
    "app.commands.ingest",
    "app.commands.search",
    "app.commands.serve",
    "app.commands.eval",
    "app.commands.bench",
)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every subcommand accepts (they override settings from env and config file)."""
    group = parser.add_argument_group("common options")
    group.add_argument("--config", metavar="FILE", help="TOML config file (under the environment variables)")
    group.add_argument("--collection", metavar="NAME", help="Qdrant collection")
    location = group.add_mutually_exclusive_group()
    location.add_argument("--qdrant-path", metavar="DIR", help="embedded Qdrant folder (or :memory:)")
    location.add_argument("--qdrant-url", metavar="URL", help="Qdrant server URL")
    group.add_argument("--qdrant-api-key", metavar="KEY", help="API key for --qdrant-url")
    group.add_argument("--model", metavar="NAME", help="model: 'default', a folder, or a hub name")
    group.add_argument("--backend", choices=["sentence-transformers", "fake"], help="embedder backend")
    group.add_argument(
        "--runtime",
        choices=["torch", "onnx", "onnx-int8"],
        help="inference runtime for everything this command embeds (model.runtime and model.query_runtime)",
    )
    group.add_argument("--data-dir", metavar="DIR", help="data folder (embedded store, uploads)")
    group.add_argument("-v", "--verbose", action="store_true", help="log more")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build the settings from the config file, the environment and the command line."""
    qdrant: dict[str, Any] = {}
    if args.qdrant_path:
        qdrant.update(path=args.qdrant_path, url=None)
    if args.qdrant_url:
        qdrant.update(url=args.qdrant_url, path=None)
    if args.qdrant_api_key:
        qdrant["api_key"] = args.qdrant_api_key
    if args.collection:
        qdrant["collection"] = args.collection
    model: dict[str, Any] = {}
    if args.model:
        model["name"] = args.model
    if args.backend:
        model["backend"] = args.backend
    if getattr(args, "runtime", None):
        model.update(runtime=args.runtime, query_runtime=args.runtime)
    instructions: dict[str, Any] = {}
    if getattr(args, "domain", None) is not None:
        instructions["domain"] = args.domain
    return load_settings(
        args.config,
        data_dir=args.data_dir,
        qdrant=qdrant or None,
        model=model or None,
        instructions=instructions or None,
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="instructor-search",
        description="Semantic search over PDFs and text with instruction-conditioned embeddings.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for sub in _leaf_parsers(parser):
        add_common_options(sub)
    return parser


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Parsers that run a command (nested subcommands such as ``eval beir`` included)."""
    children = [
        child
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for child in dict.fromkeys(action.choices.values())
    ]
    if not children:
        return [parser]
    return [leaf for child in children for leaf in _leaf_parsers(child)]


def print_json(data: Any) -> None:
    """Print machine-readable output."""
    print(json.dumps(data, ensure_ascii=False, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments (defaults to ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    args.command_line = "instructor-search " + " ".join(shlex.quote(a) for a in arguments)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = settings_from_args(args)
        handler: Handler = args.handler
        return handler(args, settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (AppError, EmbedderError, IngestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
