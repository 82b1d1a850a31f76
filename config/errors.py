"""Errors of the config package."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the value and the fix."""
