"""Moving a collection from the embedded store to a Qdrant server, with qdrant-client's own migration.

A collection ``NAME`` is two Qdrant collections: its chunks and its manifests
(``NAME__documents``); both are copied, under the same names. :func:`plan_migration` checks
everything before anything is written: the collection exists here with its manifests and was
built by instructor-search, the target answers, and neither name exists there yet (an existing
collection is refused, never replaced: drop it there first). :func:`migrate_collection` then
runs :func:`qdrant_client.migrate.migrate` on the two collections (it recreates each with the
same vector config and metadata and compares the point counts at the end) and gives the chunk
collection on a server the payload indexes a collection created there has
(:func:`store.schema.index_payload`, :func:`store.schema.ensure_pending_index`).

Tested against a second embedded store standing in for the server (qdrant-client's migration
takes any two clients) and against an unreachable URL; no Qdrant server runs in this project's
tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from config.names import MANIFEST_SUFFIX, display, redact_text
from store.errors import MigrationError, StoreConnectionError
from store.record import record_from_metadata
from store.schema import ensure_pending_index, index_payload

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

#: Points per ``scroll`` page of the migration: qdrant-client local's scroll sorts every id on
#: each call (see :func:`store.points.scroll_pages`), so its default of 100 would make copying
#: 200,000 chunks take 2,000 such sorts.
MIGRATE_BATCH = 4096


@dataclass(frozen=True)
class CollectionCopy:
    """One Qdrant collection to copy.

    Attributes:
        name: its name (the same on the target).
        points: its points.
        vectors: its vectors, in words (``"dense 384 cosine, bm25 sparse"``).
    """

    name: str
    points: int
    vectors: str


@dataclass(frozen=True)
class MigrationPlan:
    """What :func:`migrate_collection` copies, and where.

    Attributes:
        collection: the user collection.
        target: the target's URL, credentials redacted.
        copies: the chunk collection, then the manifest collection.
    """

    collection: str
    target: str
    copies: tuple[CollectionCopy, ...]

    def lines(self) -> list[str]:
        """The plan in words, one line each (names escaped for the terminal)."""
        out = [f"move collection {display(self.collection)!r} to {self.target}:"]
        for copy in self.copies:
            out.append(f"  {display(copy.name)}: {copy.points} points ({copy.vectors})")
        return out

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON."""
        return {
            "collection": self.collection,
            "target": self.target,
            "collections": [
                {"name": copy.name, "points": copy.points, "vectors": copy.vectors} for copy in self.copies
            ],
        }


def target_client(url: str, api_key: str | None, timeout: int) -> QdrantClient:
    """A client of the target server; nothing is asked of it until :func:`plan_migration`.

    Raises:
        StoreConnectionError: the URL is not usable.
    """
    from qdrant_client import QdrantClient  # lazy: qdrant_client takes about a second to import

    try:
        # No version check on creation: it warns on stderr when the server is down, and the
        # plan's first request says so in one line.
        return QdrantClient(url=url, api_key=api_key, timeout=timeout, check_compatibility=False)
    except ValueError as exc:
        raise StoreConnectionError(f"Qdrant URL {redact_text(url)!r} is not usable: {exc}") from exc


def describe_vectors(client: QdrantClient, collection: str) -> str:
    """A collection's vectors in words: ``"dense 384 cosine, bm25 sparse"`` (``"no vectors"``)."""
    from qdrant_client import models

    params = client.get_collection(collection).config.params
    vectors = params.vectors
    named: dict[str, Any] = {"": vectors} if isinstance(vectors, models.VectorParams) else dict(vectors or {})
    parts = []
    for name, cfg in named.items():
        kind = "multivector" if cfg.multivector_config is not None else "dense"
        label = f"{name} " if name else ""
        parts.append(f"{label}{kind} {cfg.size} {str(cfg.distance.value).lower()}")
    parts += [f"{name} sparse" for name in params.sparse_vectors or {}]
    return ", ".join(parts) or "no vectors"


def _check_target(target: QdrantClient, url: str, names: list[str]) -> None:
    """The target answers and holds none of ``names``."""
    existing: set[str] | None = None
    try:
        existing = {c.name for c in target.get_collections().collections}
    except Exception as exc:  # noqa: BLE001 - qdrant_client raises several transport types: all "not reachable"
        reason = redact_text(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
    if existing is None:
        # Raised outside the handler: the reason is in the message, and the app re-words any
        # error with a transport error in its chain as one about the settings' own URL.
        raise StoreConnectionError(
            f"cannot reach the Qdrant server at {redact_text(url)}: {reason}; "
            "check the URL (and --api-key), and that the server is running"
        )
    there = [name for name in names if name in existing]
    if there:
        listed = ", ".join(repr(display(name)) for name in there)
        raise MigrationError(
            f"{listed} already exist(s) on {redact_text(url)}; nothing was copied. "
            "Drop it there first, or move the collection under another name "
            "(ingest into a new collection) - an existing collection is never replaced"
        )


def plan_migration(source: QdrantClient, target: QdrantClient, collection: str, *, url: str) -> MigrationPlan:
    """Check that ``collection`` can be copied from ``source`` to ``target``, and say what would be copied.

    Args:
        source: the embedded store (repaired when it was opened, :func:`store.client.open_client`).
        target: a client of the target server (or any other Qdrant).
        collection: the user collection.
        url: the target's URL (for the plan and the messages; shown redacted).

    Returns:
        The plan.

    Raises:
        MigrationError: the collection or its manifests do not exist here, or one of them exists
            on the target already.
        CollectionMismatchError: the collection was not built by instructor-search.
        StoreConnectionError: the target cannot be reached.
    """
    manifests = collection + MANIFEST_SUFFIX
    if not source.collection_exists(collection):
        raise MigrationError(
            f"there is no collection {display(collection)!r} to move; "
            "see the collections with: instructor-search collections list"
        )
    if not source.collection_exists(manifests):
        raise MigrationError(
            f"collection {display(collection)!r} has no manifest collection {display(manifests)!r}; "
            "ingest into it once (that creates it), then move it"
        )
    record_from_metadata(collection, source.get_collection(collection).config.metadata)  # ours?
    _check_target(target, url, [collection, manifests])
    copies = tuple(
        CollectionCopy(
            name=name,
            points=int(source.count(name, exact=True).count),
            vectors=describe_vectors(source, name),
        )
        for name in (collection, manifests)
    )
    return MigrationPlan(collection=collection, target=redact_text(url), copies=copies)


def migrate_collection(
    source: QdrantClient, target: QdrantClient, plan: MigrationPlan, *, target_local: bool = False
) -> None:
    """Copy the collections of ``plan`` with qdrant-client's migration, then index the target's payload.

    Args:
        source: the embedded store.
        target: the target (checked by :func:`plan_migration`).
        plan: the plan.
        target_local: the target is an embedded or in-memory store (no payload indexes there).

    Raises:
        MigrationError: qdrant-client's migration failed or the counts differ afterwards.
    """
    from qdrant_client.migrate.migrate import migrate

    names = [copy.name for copy in plan.copies]
    try:
        migrate(source, target, collection_names=names, recreate_on_collision=False, batch_size=MIGRATE_BATCH)
    except (AssertionError, ValueError) as exc:  # qdrant-client's own checks (counts, collisions)
        raise MigrationError(f"moving {display(plan.collection)!r} to {plan.target} failed: {exc}") from exc
    for copy in plan.copies:
        copied = int(target.count(copy.name, exact=True).count)
        if copied != copy.points:
            raise MigrationError(
                f"{display(copy.name)!r} on {plan.target} has {copied} points after the copy, "
                f"not {copy.points}; the embedded store is unchanged: drop it there and move it again"
            )
    if not target_local:
        index_payload(target, plan.collection)
        ensure_pending_index(target, plan.collection, local=False)


__all__ = [
    "MIGRATE_BATCH",
    "CollectionCopy",
    "MigrationPlan",
    "describe_vectors",
    "migrate_collection",
    "plan_migration",
    "target_client",
]
