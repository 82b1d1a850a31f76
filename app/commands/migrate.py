"""The ``collections migrate`` subcommand: move a collection from the embedded store to a Qdrant server.

* ``instructor-search collections migrate --to-url URL [--api-key KEY] [--dry-run] [--json] [--collection NAME]``

The collection (``--collection``, else the settings' one) and its manifests are checked and the
plan printed before anything is copied (:mod:`store.migration`); an existing collection on the
server is refused, never replaced. The embedded copy is kept. Only the plan, the checks and a copy
to a second embedded store standing in for the server are tested; no server runs in the tests.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from app.cli import print_json
from app.errors import AppError
from config import display

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from config import Settings


def register(actions: Any) -> None:
    """Add ``migrate`` to the ``collections`` actions."""
    parser = actions.add_parser(
        "migrate",
        help="move a collection (and its documents) from the embedded store to a Qdrant server",
        description="Copy the collection (--collection, else the configured one) and its document "
        "manifests to the Qdrant server at --to-url with qdrant-client's migration. Everything is "
        "checked and the plan printed first; a collection that exists there already is refused. "
        "The embedded copy is kept.",
    )
    parser.add_argument(
        "--to-url", required=True, metavar="URL", help="the Qdrant server, e.g. http://host:6333"
    )
    parser.add_argument("--api-key", metavar="KEY", help="API key of that server")
    parser.add_argument("--dry-run", action="store_true", help="check and print the plan; copy nothing")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run_migrate, name=None, yes=False)


def open_target(settings: Settings, url: str, api_key: str | None) -> QdrantClient:
    """A client of the target server, with the settings' timeout (:func:`store.migration.target_client`)."""
    from store.migration import target_client

    return target_client(url, api_key, settings.qdrant.timeout)


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Check, print the plan, and (without ``--dry-run``) copy the collection to the server."""
    from store.client import open_client
    from store.migration import migrate_collection, plan_migration

    if settings.qdrant_mode != "embedded":
        where = "a Qdrant server already" if settings.qdrant_mode == "server" else "the in-memory store"
        raise AppError(
            f"collections migrate moves a collection out of the embedded store; the settings point at {where}"
        )
    source = open_client(settings)
    try:
        target = open_target(settings, args.to_url, args.api_key)
        try:
            plan = plan_migration(source, target, settings.qdrant.collection, url=args.to_url)
            if not args.dry_run:
                migrate_collection(source, target, plan)
        finally:
            target.close()
    finally:
        source.close()
    if args.json:
        print_json({"plan": plan.to_json(), "copied": not args.dry_run})
        return 0
    print("\n".join(plan.lines()))
    name = display(plan.collection)
    if args.dry_run:
        print("dry run: nothing was copied")
    else:
        print(
            f"moved {name!r} to {plan.target}. Use it there with --qdrant-url {plan.target} "
            f"(or INSTRUCTOR_SEARCH_QDRANT__URL); the embedded copy is kept "
            f"(remove it with: instructor-search collections drop {name} --yes)"
        )
    return 0
