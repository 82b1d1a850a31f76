"""Errors of the representations package (one base class)."""

from __future__ import annotations


class RepresentationError(Exception):
    """A representation cannot be built (e.g. the configured question generator is missing)."""
