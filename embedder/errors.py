"""Errors of the embedder package (one base class)."""

from __future__ import annotations


class EmbedderError(Exception):
    """Base class of every error raised by :mod:`embedder`."""


class ModelNotFoundError(EmbedderError):
    """The model could not be found or loaded; the message lists what was tried and the fix."""


class InstructionError(EmbedderError, ValueError):
    """An instruction, task or role is invalid."""


class InputError(EmbedderError, ValueError):
    """The texts or pairs passed to an encoder are malformed."""
