"""How many chunks the embedded store serves well, and what to tell a user whose collection has more.

qdrant-client's local mode keeps every point in memory and reads all of them from its SQLite file
when the store is opened, and the in-process index reads every vector it scores on the first
search after an open or a write (:mod:`retrieval.local_index`). Both grow linearly with the
collection: measured in :mod:`evaluation.scale` with all-MiniLM-L6-v2 (384 dimensions), opening
and the first search in a fresh process take 6.8-7.5 s at 50,000 chunks (the default of
``qdrant.local_max_points``), 14-15 s at 100,000 and 30 s at 200,000 (``docs/notes/scale.md``).
Past it, each ingest logs :func:`outgrown_note` once and ``collections info`` shows it: the fix
is a Qdrant server (``collections migrate``).
"""

from __future__ import annotations

from config.names import display


def outgrown_note(collection: str, points: int, limit: int | None) -> str | None:
    """The note for a collection of ``points`` chunks in an embedded store that serves ``limit`` well.

    Args:
        collection: the collection's name.
        points: its chunks.
        limit: ``qdrant.local_max_points`` (``None``: not an embedded store, nothing to say).

    Returns:
        The note, or ``None`` when the collection is within the limit.
    """
    if limit is None or points <= limit:
        return None
    name = display(collection)
    return (
        f"collection {name!r} holds {points:,} chunks, more than the {limit:,} the embedded store "
        "serves well (it keeps every chunk in memory and reads them all when it opens, so starting "
        "and the first search slow down as it grows). Move it to a Qdrant server: "
        f"instructor-search collections migrate --collection {name} --to-url URL "
        "(qdrant.local_max_points sets this limit)"
    )


__all__ = ["outgrown_note"]
