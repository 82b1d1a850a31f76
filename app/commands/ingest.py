"""The `ingest` subcommand(s)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add the subcommand parsers."""
    # Filled in by the ingest work.
    return None
