"""Retrieval modes: which representations a search ranks by, derived from the registry.

Every registered representation (:data:`representations.registry.REGISTRY`) is a mode of its
own; :data:`FUSIONS` names the modes that fuse several (reciprocal rank fusion or
distribution-based score fusion over one prefetch per representation); ``all`` fuses every
representation a collection has. :data:`MODES` is the live table: a representation registered
later gets its mode at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from representations.registry import REGISTRY
from retrieval.errors import ModeUnavailableError, QueryError

if TYPE_CHECKING:
    from store.record import CollectionRecord

#: The fused modes and the representations they fuse, in order.
FUSIONS: dict[str, tuple[str, ...]] = {
    "hybrid": ("dense", "sparse"),
    "hybrid+sentences": ("dense", "sparse", "sentences"),
    "hybrid+keywords": ("keywords", "sparse"),
    "hybrid+questions": ("questions", "sparse"),
}
#: The mode that fuses every representation the collection has.
ALL = "all"


class _Modes(Mapping[str, tuple[str, ...]]):
    """``mode -> representations it ranks by``, read from the registry on every use.

    One mode per registered representation, the fusions of registered representations, then
    ``all`` (``()``: every one the collection has).
    """

    def _table(self) -> dict[str, tuple[str, ...]]:
        table: dict[str, tuple[str, ...]] = {name: (name,) for name in REGISTRY.names()}
        table.update({mode: parts for mode, parts in FUSIONS.items() if all(p in REGISTRY for p in parts)})
        table[ALL] = ()
        return table

    def __getitem__(self, mode: str) -> tuple[str, ...]:
        return self._table()[mode]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


#: The representations each retrieval mode ranks by (several: fused). ``all``: every one the
#: collection has.
MODES: Mapping[str, tuple[str, ...]] = _Modes()


def check_mode(mode: str) -> None:
    """Refuse a mode that is not one of :data:`MODES`.

    Raises:
        QueryError: the mode is unknown; the message names the valid modes.
    """
    if mode not in MODES:
        raise QueryError(f"unknown search mode {mode!r}; use one of: {', '.join(MODES)}")


def is_cosine(mode: str) -> bool:
    """Whether a mode's scores are cosine similarities (a score threshold applies to it)."""
    return mode in REGISTRY and REGISTRY[mode].cosine


def cosine_modes() -> list[str]:
    """The modes scored by cosine similarity, sorted."""
    return sorted(mode for mode in MODES if is_cosine(mode))


def check_threshold(mode: str, score_threshold: float | None) -> None:
    """Refuse a score threshold in a mode not scored by cosine similarity.

    Raises:
        QueryError: a threshold was given for such a mode.
    """
    if score_threshold is not None and not is_cosine(mode):
        raise QueryError(
            f"a score threshold only applies to modes scored by cosine similarity "
            f"({', '.join(cosine_modes())}); mode {mode!r} is not. Drop the threshold or change the mode."
        )


def check_weights(weights: Mapping[str, float] | None) -> None:
    """Refuse fusion weights of representations that are not registered.

    Raises:
        QueryError: a weight names an unknown representation; the message names the valid ones.
    """
    for name in weights or {}:
        if name not in REGISTRY:
            raise QueryError(
                f"search.weights names {name!r}; use representation names: {', '.join(REGISTRY.names())}"
            )


def available_modes(record: CollectionRecord) -> list[str]:
    """The retrieval modes a collection supports."""
    have = set(record.representations.available())
    return [mode for mode, parts in MODES.items() if set(parts) <= have]


def mode_components(mode: str, record: CollectionRecord) -> tuple[str, ...]:
    """The representations a mode ranks by in a collection.

    Args:
        mode: a key of :data:`MODES`.
        record: the collection's record.

    Returns:
        The representation names (``all``: every representation the collection has).

    Raises:
        QueryError: the mode is unknown.
        ModeUnavailableError: the collection lacks a representation the mode needs; the message
            names the modes it offers and how to build the missing representation.
    """
    check_mode(mode)
    available = record.representations.available()
    if mode == ALL:
        return tuple(available)
    missing = [name for name in MODES[mode] if name not in available]
    if missing:
        fixes = " ".join(REGISTRY[name].setting for name in missing)
        raise ModeUnavailableError(
            f"search mode {mode!r} needs the {', '.join(missing)} representation, which this collection "
            f"was not built with (it has: {', '.join(available)}; modes available: "
            f"{', '.join(available_modes(record))}). Fix: choose one of those modes, or ingest the "
            f"documents into a new collection with {fixes} (--collection NEW_NAME)."
        )
    return MODES[mode]


def choose_mode(
    mode: str, record: CollectionRecord, *, fallback: bool
) -> tuple[str, tuple[str, ...], str | None]:
    """The mode that runs, the representations it ranks by, and why it differs from ``mode``.

    Args:
        mode: the mode asked for.
        record: the collection's record.
        fallback: when the collection lacks the mode's representations, run ``dense`` instead
            (with a note) rather than raising.

    Raises:
        QueryError: the mode is unknown.
        ModeUnavailableError: the collection lacks the mode's representations (no ``fallback``).
    """
    try:
        return mode, mode_components(mode, record), None
    except ModeUnavailableError as exc:
        if not fallback:
            raise
        note = f"mode {mode!r} is not available in this collection; searched 'dense' instead ({exc})"
        return "dense", ("dense",), note
