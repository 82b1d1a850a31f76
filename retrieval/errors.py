"""Errors of the retrieval package (one base class)."""

from __future__ import annotations


class RetrievalError(Exception):
    """Base class of every error raised by :mod:`retrieval`."""


class QueryError(RetrievalError, ValueError):
    """A query or a search option is not valid; the message names it and the fix."""


class ModeUnavailableError(QueryError):
    """A retrieval mode needs a representation the collection was not built with."""
