"""Errors of the app package (one base class)."""

from __future__ import annotations


class AppError(Exception):
    """Base class of every error raised by :mod:`app`."""


class QueryError(AppError, ValueError):
    """A search query is empty, blank or too long."""


class EvaluationError(AppError):
    """A benchmark folder or file is missing or malformed."""


class ModeUnavailableError(QueryError):
    """A retrieval mode needs a representation the collection was not built with."""
