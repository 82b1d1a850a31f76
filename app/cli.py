"""The ``instructor-search`` command line: one entry point, subcommands in their own modules.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``handler(args, settings) -> int`` as the parser default. This module builds the settings once
from ``--config``, the environment and the common flags (accepted before or after any
subcommand), and turns every error into one line on stderr and exit status 1 (argparse's usage
errors keep status 2). Only ``-v`` adds the traceback. Credentials inside URLs are never printed,
neither in messages nor in logs, and names are printed through :func:`config.display`.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import logging
import os
import shlex
import sys
import traceback
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, get_args

from app.errors import AppError, user_message
from config import Runtime, Settings, display, load_settings, redact_text, validate_collection_name

Handler = Callable[[argparse.Namespace, Settings], int]

#: Modules that add subcommands (each has ``register(subparsers)``).
COMMAND_MODULES = (
    "app.commands.ingest",
    "app.commands.search",
    "app.commands.serve",
    "app.commands.eval",
    "app.commands.bench",
    "app.commands.train",
    "app.commands.adapt",
    "app.commands.dataset",
)


#: The common options' destinations and their values when not given.
COMMON_DEFAULTS: dict[str, Any] = {
    "config": None,
    "collection": None,
    "qdrant_path": None,
    "qdrant_url": None,
    "qdrant_api_key": None,
    "model": None,
    "backend": None,
    "runtime": None,
    "data_dir": None,
    "verbose": False,
}


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every command accepts (they override settings from env and config file).

    Every parser gets them (the top level, command groups such as ``documents`` and each
    command), with no default, so that one given anywhere on the line is kept; :func:`main`
    fills in :data:`COMMON_DEFAULTS` for those not given.
    """
    group = parser.add_argument_group("common options")
    add = functools.partial(group.add_argument, default=argparse.SUPPRESS)
    add("--config", metavar="FILE", help="TOML config file (under the environment variables)")
    add("--collection", metavar="NAME", help="Qdrant collection")
    location = group.add_mutually_exclusive_group()
    location.add_argument(
        "--qdrant-path", metavar="DIR", default=argparse.SUPPRESS, help="embedded Qdrant folder (or :memory:)"
    )
    location.add_argument("--qdrant-url", metavar="URL", default=argparse.SUPPRESS, help="Qdrant server URL")
    add("--qdrant-api-key", metavar="KEY", help="API key for --qdrant-url")
    add("--model", metavar="NAME", help="model: 'default', a folder, or a hub name")
    add("--backend", choices=["sentence-transformers", "fake"], help="embedder backend")
    add(
        "--runtime",
        choices=list(get_args(Runtime)),
        help="inference runtime for everything this command embeds (model.runtime and model.query_runtime)",
    )
    add("--data-dir", metavar="DIR", help="data folder (embedded store, uploads)")
    add("-v", "--verbose", action="store_true", help="log more; show the traceback of an error")


def with_common_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with :data:`COMMON_DEFAULTS` for the common options given nowhere on the line."""
    return argparse.Namespace(**{**COMMON_DEFAULTS, **vars(args)})


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build the settings from the config file, the environment and the command line.

    Raises:
        InvalidNameError: ``--collection`` is not a valid collection name.
        ConfigError: a setting is invalid.
        AppError: the command line contradicts itself.
    """
    args = with_common_defaults(args)
    qdrant: dict[str, Any] = {}
    if args.qdrant_path and args.qdrant_url:
        raise AppError("--qdrant-path and --qdrant-url were both given; pass one of them")
    if args.qdrant_path:
        qdrant.update(path=args.qdrant_path, url=None)
    if args.qdrant_url:
        qdrant.update(url=args.qdrant_url, path=None)
    if args.qdrant_api_key:
        qdrant["api_key"] = args.qdrant_api_key
    if args.collection is not None:
        qdrant["collection"] = validate_collection_name(args.collection)
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
    for sub in _all_parsers(parser):
        add_common_options(sub)
    return parser


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and every parser below it (nested subcommands such as ``eval beir`` included)."""
    children = [
        child
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for child in dict.fromkeys(action.choices.values())
    ]
    return [parser, *(sub for child in children for sub in _all_parsers(child))]


def print_json(data: Any) -> None:
    r"""Print machine-readable output.

    JSON escapes control characters; format and bidirectional characters (``U+202E``), which
    ``ensure_ascii=False`` would print as they are, are written as ``\uXXXX`` escapes too: the
    same data, and nothing that reorders or hides text in a terminal.
    """
    text = json.dumps(data, ensure_ascii=False, indent=2)
    print("".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in _HIDDEN else c for c in text))


#: Unicode categories that ``print_json`` escapes (format, line and paragraph separators).
_HIDDEN = frozenset({"Cf", "Zl", "Zp"})


class _RedactingFilter(logging.Filter):
    """Replaces credentials inside URLs in every log record before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _RedactingFilter) for f in handler.filters):
            handler.addFilter(_RedactingFilter())


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null, so the exit's flush cannot fail again.

    This is the recipe of the Python documentation (signal module, "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # stdout is not a file (tests capture it)
        pass


def _report(exc: Exception, args: argparse.Namespace, settings: Settings | None) -> int:
    """Print ``exc`` as one line on stderr (after its traceback with ``-v``); returns 1."""
    if args.verbose:
        text = "".join(traceback.format_exception(exc))
        sys.stderr.write("\n".join(display(line) for line in redact_text(text).splitlines()) + "\n")
    url = settings.qdrant.url if settings is not None else args.qdrant_url
    print(f"error: {user_message(exc, url=url)}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments (defaults to ``sys.argv[1:]``).

    Returns:
        The exit status: 0, 1 after an error (one line on stderr), 130 when interrupted.
    """
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = with_common_defaults(parser.parse_args(arguments))
    args.command_line = redact_text("instructor-search " + " ".join(shlex.quote(a) for a in arguments))
    _configure_logging(args.verbose)
    settings: Settings | None = None
    try:
        settings = settings_from_args(args)
        handler: Handler = args.handler
        code = handler(args, settings)
        sys.stdout.flush()  # a closed pipe fails here, inside the handling below
        return code
    except BrokenPipeError:  # `instructor-search ... | head`: the reader has gone; end quietly
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error ends in one line (the traceback only with -v)
        return _report(exc, args, settings)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
