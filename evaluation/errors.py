"""Errors of the evaluation package (one base class)."""

from __future__ import annotations


class EvaluationError(Exception):
    """A benchmark cannot run: missing or malformed data, or an unusable configuration."""
