"""The ``ingest``, ``documents`` and ``collections`` subcommands.

* ``instructor-search ingest PATH... [--recursive] [--domain D] [--password PW] [--json]``
* ``instructor-search documents list [--json]`` / ``documents delete SOURCE [--json]``
* ``instructor-search collections list|info|create|drop [NAME] [--json] [--yes] [--domain D]``

Collection names go through :func:`config.validate_collection_name` (internal ``NAME__documents``
collections can be neither written nor dropped); file and collection names are printed through
:func:`config.display`, so no escape sequence in a name reaches the terminal.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from app.errors import AppError
from config import display, validate_collection_name

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from config import Settings
    from ingest.pipeline import IngestReport, ProgressEvent
    from store.core import VectorStore


def register(subparsers: Any) -> None:
    """Add the ``ingest``, ``documents`` and ``collections`` parsers."""
    ingest = subparsers.add_parser(
        "ingest",
        help="ingest PDFs, .txt and .md files into the collection",
        description="Extract, chunk, embed (under the collection's document instruction) and store "
        "files. Unchanged files are skipped; changed files replace their old chunks.",
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (.pdf, .txt, .md)")
    ingest.add_argument("--recursive", "-r", action="store_true", help="descend into subfolders")
    ingest.add_argument("--domain", metavar="DOMAIN", help="domain of the instructions (e.g. medicine)")
    ingest.add_argument("--password", metavar="PW", help="password for encrypted PDFs")
    ingest.add_argument("--json", action="store_true", help="print a machine-readable summary")
    ingest.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    ingest.set_defaults(handler=run_ingest)

    documents = subparsers.add_parser(
        "documents",
        help="list or delete stored documents",
        description="list: the stored source files. delete SOURCE: remove a document's chunks "
        "(SOURCE is the stored source, a path, or a file name if it is unambiguous).",
    )
    actions = documents.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the stored source files")
    delete = actions.add_parser("delete", help="remove a document's chunks and manifest")
    delete.add_argument("source", metavar="SOURCE", help="stored source, path or unambiguous file name")
    for parser in (listing, delete):
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.set_defaults(handler=run_documents)

    collections = subparsers.add_parser(
        "collections",
        help="list, describe, create or drop collections",
        description="list: all collections. info [NAME]: the build record of a collection. "
        "create NAME [--domain D]: an empty collection with the settings' instructions. "
        "drop [NAME] --yes: delete a collection and its documents.",
    )
    actions = collections.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("list", "all collections"),
        ("info", "the build record of a collection"),
        ("create", "create an empty collection (instructions from the settings and --domain)"),
        ("drop", "delete a collection and its documents"),
    ):
        parser = actions.add_parser(action, help=text)
        if action == "create":
            parser.add_argument("name", metavar="NAME", help="the new collection's name")
            parser.add_argument(
                "--domain", metavar="DOMAIN", help="domain of the instructions (e.g. medicine)"
            )
        elif action != "list":
            parser.add_argument("name", nargs="?", metavar="NAME", help="collection (default: --collection)")
        if action == "drop":
            parser.add_argument("--yes", action="store_true", help="drop without asking")
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.set_defaults(handler=run_collections, name=None, yes=False)


def _print_json(data: Any) -> None:
    from app.cli import print_json

    print_json(data)


def _open_store(settings: Settings, collection: str | None = None) -> tuple[QdrantClient, VectorStore]:
    from store.core import VectorStore, open_client

    name = validate_collection_name(collection) if collection is not None else settings.qdrant.collection
    client = open_client(settings)
    try:
        return client, VectorStore(client, name, local=settings.qdrant_mode != "server")
    except BaseException:
        client.close()
        raise


# -- ingest ------------------------------------------------------------------------------------------


class _ProgressBars:
    """Two tqdm bars on stderr: files done and chunks embedded."""

    def __init__(self, file_count: int, *, enabled: bool) -> None:
        from tqdm import tqdm

        self.files = tqdm(
            total=file_count, desc="files ", unit="file", disable=not enabled, file=sys.stderr, position=0
        )
        self.chunks = tqdm(
            total=0, desc="chunks", unit="chunk", disable=not enabled, file=sys.stderr, position=1
        )
        self._done: dict[int, int] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage == "reading":
            self.files.set_postfix_str(event.file_name[-40:], refresh=False)
        if event.stage in ("embedding", "stored") and event.file_index not in self._done:
            self._done[event.file_index] = 0
            self.chunks.total = (self.chunks.total or 0) + event.chunks_total
            self.chunks.refresh()
        if event.stage in ("embedding", "stored"):
            delta = event.chunks_done - self._done[event.file_index]
            if delta > 0:
                self.chunks.update(delta)
                self._done[event.file_index] = event.chunks_done
        if event.stage in ("stored", "skipped", "failed"):
            self.files.update(1)

    def close(self) -> None:
        self.chunks.close()
        self.files.close()


def _print_report(report: IngestReport) -> None:
    for result in report.files:
        line = f"{result.status:<9} {result.chunks:>6} chunks  {display(result.path)}"
        if result.error:
            line += f"\n          reason: {display(result.error)}"
        if result.note:
            line += f"\n          note: {display(result.note)}"
        print(line)
    counts = report.counts()
    summary = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    print(
        f"collection {report.collection!r}: {report.points} points "
        f"({summary or 'no files'}; {report.chunks_embedded} chunks embedded in {report.seconds:.1f} s)"
    )
    if report.repaired:
        print(f"removed {report.repaired} leftover chunks of an interrupted earlier run")
    if report.truncated:
        print(f"warning: {report.truncated} chunks were longer than the model's limit and were truncated")
    for note in report.skipped:
        print(f"skipped representation {display(note)}")


def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Ingest the given paths; exit status 1 if any file failed."""
    from ingest.pipeline import IngestReport, ingest_files
    from ingest.sources import discover

    sources, failures = discover(args.paths, recursive=args.recursive)
    client, store = _open_store(settings)
    try:
        if sources:
            from embedder import make_embedder

            embedder = make_embedder(settings)
            bars = _ProgressBars(len(sources), enabled=not args.no_progress)
            try:
                report = ingest_files(
                    sources,
                    settings=settings,
                    embedder=embedder,
                    store=store,
                    password=args.password,
                    on_progress=bars,
                )
            finally:
                bars.close()
        else:
            report = IngestReport(files=[], points=store.count(), collection=store.collection)
    finally:
        client.close()
    report.files = [*failures, *report.files]  # paths that could not be used, then the files
    if args.json:
        _print_json(report.to_json())
    else:
        _print_report(report)
    return 1 if report.failed else 0


# -- documents -----------------------------------------------------------------------------------------


def run_documents(args: argparse.Namespace, settings: Settings) -> int:
    """List or delete stored documents."""
    client, store = _open_store(settings)
    try:
        if args.action == "list":
            _list_documents(store, as_json=args.json)
            return 0
        manifest = store.find_document(args.source)
        removed = store.delete_document(manifest.source)
        if args.json:
            _print_json({"deleted": manifest.source, "chunks": removed, "points": store.count()})
        else:
            print(f"deleted {display(manifest.source)} ({removed} chunks); {store.count()} points left")
        return 0
    finally:
        client.close()


def _list_documents(store: VectorStore, *, as_json: bool) -> None:
    documents = store.documents()
    if as_json:
        _print_json(
            {
                "collection": store.collection,
                "points": store.count(),
                "documents": [doc.model_dump(mode="json") for doc in documents],
            }
        )
    elif not documents:
        print(f"collection {store.collection!r} has no documents")
    else:
        for doc in documents:
            pages = "text" if doc.pages is None else f"{doc.pages} page" + ("s" if doc.pages != 1 else "")
            print(f"{doc.chunks:>6} chunks  {pages:<10} {doc.ingested_at}  {display(doc.source)}")
        print(f"{len(documents)} documents, {store.count()} points in {store.collection!r}")


# -- collections ---------------------------------------------------------------------------------------


def run_collections(args: argparse.Namespace, settings: Settings) -> int:
    """List, describe, create or drop collections."""
    if args.action == "create":
        return _create_collection(args, settings)
    client, store = _open_store(settings, args.name)
    try:
        if args.action == "list":
            _list_collections(client, local=store.local, as_json=args.json)
        elif args.action == "info":
            record = store.require_record()
            info = {
                "name": store.collection,
                "points": store.count(),
                "documents": len(store.documents()),
                "record": record.model_dump(mode="json"),
            }
            _print_json(info)
        else:
            _drop_collection(store, yes=args.yes, as_json=args.json)
        return 0
    finally:
        client.close()


def _create_collection(args: argparse.Namespace, settings: Settings) -> int:
    from app.service import SearchService

    service = SearchService.open(settings)
    try:
        instructions = settings.instructions
        record = service.create_collection(
            args.name,
            service.new_record(
                domain=instructions.domain,
                query_instruction=instructions.query,
                document_instruction=instructions.document,
                instructions_enabled=instructions.enabled,
            ),
        )
    finally:
        service.close()
    name = validate_collection_name(args.name)
    if args.json:
        _print_json({"created": name, "record": record.model_dump(mode="json")})
    else:
        print(f"created collection {name!r} ({record.model}, domain {record.domain or '(general)'!r})")
    return 0


def _list_collections(client: QdrantClient, *, local: bool, as_json: bool) -> None:
    from store.core import VectorStore, list_collections
    from store.errors import StoreError

    rows: list[dict[str, Any]] = []
    for name in list_collections(client):
        other = VectorStore(client, name, local=local)
        try:
            record = other.read_record()
        except StoreError as exc:  # a collection of another tool: list it without a record
            rows.append({"name": name, "points": other.count(), "error": str(exc)})
            continue
        rows.append(
            {
                "name": name,
                "points": other.count(),
                "documents": len(other.documents()),
                "model": record.model if record else None,
                "domain": record.domain if record else None,
            }
        )
    if as_json:
        _print_json({"collections": rows})
    elif not rows:
        print("no collections yet (create one with: instructor-search ingest PATH)")
    else:
        for row in rows:
            detail = f"model {row['model']}" if row.get("model") else str(row.get("error", ""))
            print(f"{display(row['name']):<30} {row['points']:>8} points  {display(detail)}")


def _drop_collection(store: VectorStore, *, yes: bool, as_json: bool) -> None:
    if not store.exists():
        raise AppError(
            f"collection {store.collection!r} does not exist (see: instructor-search collections list)"
        )
    if not yes and not _confirm(f"drop collection {store.collection!r} ({store.count()} points)?"):
        raise AppError(f"not dropped; pass --yes to drop {store.collection!r} without asking")
    points = store.count()
    store.drop()
    if as_json:
        _print_json({"dropped": store.collection, "points": points})
    else:
        print(f"dropped collection {store.collection!r} ({points} points)")


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")
