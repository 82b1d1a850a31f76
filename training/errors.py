"""Errors of the training package (one base class)."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of every error raised by :mod:`training`."""


class TrainingDataError(TrainingError, ValueError):
    """A training file or record is malformed; the message names the file, line and field."""


class AdaptCancelledError(TrainingError):
    """An ``adapt`` run was cancelled; what it finished is kept, and running it again resumes."""
