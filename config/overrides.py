"""``override``: a copy of the settings (or of one section) with some values changed, validated.

It replaces the nested ``settings.model_copy(update={"qdrant": settings.qdrant.model_copy(...)})``
chains: the changes are given as nested dicts or dotted keys, every changed section is validated
as :func:`~config.settings.load_settings` validates it (field constraints and the section's own
checks, such as "path and url together"), and a bad value is a :class:`~config.ConfigError` that
names it. What is not changed is shared with the original, exactly as ``model_copy`` shares it,
and the copy remembers which values were set explicitly (``model_fields_set``), as
``model_copy(update=...)`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings

from config.errors import ConfigError
from config.settings import describe_errors

M = TypeVar("M", bound=BaseModel)


def override(settings: M, changes: Mapping[str, Any] | None = None, /, **values: Any) -> M:
    """A validated copy of ``settings`` with some values changed.

    Example:
        >>> from config import load_settings, override
        >>> memory = override(load_settings(), qdrant={"path": ":memory:", "url": None})
        >>> whole = override(memory, **{"chunk.strategy": "whole", "search.fusion": "rrf"})
        >>> (whole.qdrant_mode, whole.chunk.strategy, whole.qdrant.path)
        ('memory', 'whole', ':memory:')

    Args:
        settings: the :class:`~config.Settings`, or one of their sections (``settings.model``).
        changes: changes whose keys are not Python names (dotted keys), as a mapping.
        **values: changes by name: a value, or a dict of changes for a section. ``None`` is a
            value here (``url=None`` clears the URL), unlike in :func:`~config.load_settings`.

    Returns:
        The copy; ``settings`` itself is unchanged.

    Raises:
        ConfigError: a key names no setting, or a value is invalid; the message names it.
    """
    return _apply(settings, _nest({**(changes or {}), **values}), ())


def _nest(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``{"qdrant.path": p, "chunk": {"size": 9}}`` as nested dicts: ``{"qdrant": {"path": p}, ...}``."""
    nested: dict[str, Any] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if not head:
            raise ConfigError(
                f"setting override {key!r} has an empty name; use section.key, e.g. qdrant.path"
            )
        if rest:
            value = {rest: value}
        if isinstance(value, Mapping) and not isinstance(value, BaseModel):
            value = _nest(value)
            known = nested.get(head, {})
            if not isinstance(known, dict):
                raise ConfigError(f"setting override {head!r} is given both as a value and as a section")
            nested[head] = _merge(known, value)
        elif head in nested:
            raise ConfigError(f"setting override {head!r} is given twice; give it once")
        else:
            nested[head] = value
    return nested


def _merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    merged = dict(left)
    for key, value in right.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = _merge(merged[key], value)
        elif key in merged:
            raise ConfigError(f"setting override {key!r} is given twice; give it once")
        else:
            merged[key] = value
    return merged


def _apply(model: M, changes: dict[str, Any], path: tuple[str, ...]) -> M:
    fields = type(model).model_fields
    updates: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in fields:
            prefix = "".join(f"{part}." for part in path)
            raise ConfigError(
                f"unknown setting {prefix + key!r} in override(); "
                f"use one of: {', '.join(prefix + name for name in sorted(fields))}"
            )
        current = getattr(model, key)
        if isinstance(value, dict) and isinstance(current, BaseModel):
            value = _apply(current, value, (*path, key))
        updates[key] = value
    try:
        if isinstance(model, BaseSettings):
            # Validating a BaseSettings class reads the environment again; assigning does not
            # (Settings validate assignments, and have no checks across their top-level keys).
            copy = model.model_copy()
            for key, value in updates.items():
                setattr(copy, key, value)
            return copy
        checked = type(model).model_validate({**{name: getattr(model, name) for name in fields}, **updates})
    except ValidationError as exc:
        raise ConfigError(
            f"invalid settings override: {describe_errors(exc, path)}. Fix the value passed to override()"
        ) from exc
    return model.model_copy(update={key: getattr(checked, key) for key in updates})
