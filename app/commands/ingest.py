"""The ``ingest``, ``documents`` and ``collections`` subcommands.

* ``instructor-search ingest PATH... [--recursive] [--domain D] [--password PW] [--json]``
* ``instructor-search documents list [--json]`` / ``documents delete SOURCE [--json]``
* ``instructor-search collections list|info|create|drop [NAME] [--json] [--yes] [--domain D]``
  (``collections migrate``: :mod:`app.commands.migrate`)

Collection names go through :func:`config.validate_collection_name` (internal ``NAME__documents``
collections can be neither written nor dropped); file and collection names are printed through
:func:`config.display`, so no escape sequence in a name reaches the terminal.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from app.cli import print_json
from app.commands.migrate import register as register_migrate
from app.errors import AppError
from app.wording import page_list, plural
from config import display, validate_collection_name

if TYPE_CHECKING:
    from app.service import CollectionSummary, SearchService
    from config import Settings
    from ingest.report import IngestReport, ProgressEvent
    from ingest.sources import FileResult
    from store.manifest import DocumentManifest
    from store.record import CollectionRecord


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
    register_migrate(actions)  # collections migrate: app.commands.migrate


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


def file_lines(result: FileResult) -> list[str]:
    """What ``ingest`` prints for one file: status, chunks and path, then its reason, OCR, warning and note.

    Names and messages go through :func:`config.display` (no terminal escapes).
    """
    count, word = plural(result.chunks, "chunk").split(" ", 1)
    lines = [f"{result.status:<9} {count:>6} {word:<6}  {display(result.path)}"]
    if result.error:
        lines.append(f"          reason: {display(result.error)}")
    if result.ocr_pages:
        lines.append(
            f"          {plural(len(result.ocr_pages), 'page')} OCR'd ({page_list(result.ocr_pages)})"
        )
    if result.warning:
        lines.append(f"          warning: {display(result.warning)}")
    if result.note:
        lines.append(f"          note: {display(result.note)}")
    return lines


def _print_report(report: IngestReport) -> None:
    for result in report.files:
        print("\n".join(file_lines(result)))
    counts = report.counts()
    summary = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    print(
        f"collection {report.collection!r}: {plural(report.points, 'point')} "
        f"({summary or 'no files'}; {plural(report.chunks_embedded, 'chunk')} embedded in {report.seconds:.1f} s)"
    )
    if report.repaired:
        print(f"removed {plural(report.repaired, 'leftover chunk')} of an interrupted earlier run")
    if report.truncated:
        were = "was" if report.truncated == 1 else "were"
        print(
            f"warning: {plural(report.truncated, 'chunk')} {were} longer than the model's limit and {were} truncated"
        )
    for note in report.skipped:
        print(f"skipped representation {display(note)}")


def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Ingest the given paths; exit status 1 if any file failed."""
    from app.service import SearchService  # qdrant-client and the model stack: not for --help
    from ingest.sources import discover

    sources, failures = discover(args.paths, recursive=args.recursive)
    with SearchService.open(settings) as service:
        bars = _ProgressBars(len(sources), enabled=not args.no_progress and bool(sources))
        try:
            # The settings' instructions: a collection recorded with others is refused.
            report = service.ingest(sources, password=args.password, on_progress=bars, follow_record=False)
        finally:
            bars.close()
    report.files = [*failures, *report.files]  # paths that could not be used, then the files
    if args.json:
        print_json(report.to_json())
    else:
        _print_report(report)
    return 1 if report.failed else 0


# -- documents -----------------------------------------------------------------------------------------


def run_documents(args: argparse.Namespace, settings: Settings) -> int:
    """List or delete stored documents."""
    from app.service import SearchService

    with SearchService.open(settings) as service:
        if args.action == "list":
            _print_documents(
                service.store().collection, service.documents(), service.count(), as_json=args.json
            )
            return 0
        manifest = service.find_document(args.source)
        removed = service.delete_document(manifest.source)
        points = service.count()
    if args.json:
        print_json({"deleted": manifest.source, "chunks": removed, "points": points})
    else:
        print(
            f"deleted {display(manifest.source)} ({plural(removed, 'chunk')}); {plural(points, 'point')} left"
        )
    return 0


def _print_documents(
    collection: str, documents: list[DocumentManifest], points: int, *, as_json: bool
) -> None:
    if as_json:
        print_json(
            {
                "collection": collection,
                "points": points,
                "documents": [doc.model_dump(mode="json") for doc in documents],
            }
        )
    elif not documents:
        print(f"collection {collection!r} has no documents")
    else:
        for doc in documents:
            pages = "text" if doc.pages is None else plural(doc.pages, "page")
            count, word = plural(doc.chunks, "chunk").split(" ", 1)
            print(f"{count:>6} {word:<6}  {pages:<10} {doc.ingested_at}  {display(doc.source)}")
        print(f"{plural(len(documents), 'document')}, {plural(points, 'point')} in {collection!r}")


# -- collections ---------------------------------------------------------------------------------------


def run_collections(args: argparse.Namespace, settings: Settings) -> int:
    """List, describe, create or drop collections."""
    from app.service import SearchService
    from store.core import outgrown

    name = validate_collection_name(args.name) if args.name is not None else None  # before opening
    with SearchService.open(settings) as service:
        if args.action == "list":
            _print_collections(service.collection_summaries(), as_json=args.json)
        elif args.action == "info":
            info = service.collection_info(name)
            note = outgrown(service.store(name))  # past qdrant.local_max_points: how to move it
            print_json(
                {
                    "name": info.name,
                    "points": info.points,
                    "documents": info.documents,
                    "record": info.record.model_dump(mode="json"),
                    **({"outgrown": note} if note else {}),
                }
            )
            if note:
                print(f"note: {note}", file=sys.stderr)
        elif args.action == "create":
            record = service.create_collection(args.name)
            _print_created(validate_collection_name(args.name), record, as_json=args.json)
        else:
            _drop(service, name, yes=args.yes, as_json=args.json)
    return 0


def _print_created(name: str, record: CollectionRecord, *, as_json: bool) -> None:
    if as_json:
        print_json({"created": name, "record": record.model_dump(mode="json")})
    else:
        print(f"created collection {name!r} ({record.model}, domain {record.domain or '(general)'!r})")


def _print_collections(rows: list[CollectionSummary], *, as_json: bool) -> None:
    if as_json:
        print_json({"collections": [_row_json(row) for row in rows]})
    elif not rows:
        print("no collections yet (create one with: instructor-search ingest PATH)")
    else:
        for row in rows:
            detail = f"model {row.model}" if row.model else str(row.error or "")
            print(
                f"{display(row.name):<30} {row.points:>8} {'point ' if row.points == 1 else 'points'}  {display(detail)}"
            )


def _row_json(row: CollectionSummary) -> dict[str, Any]:
    if row.error is not None:
        return {"name": row.name, "points": row.points, "error": row.error}
    return {
        "name": row.name,
        "points": row.points,
        "documents": row.documents,
        "model": row.model,
        "domain": row.domain,
    }


def _drop(service: SearchService, name: str | None, *, yes: bool, as_json: bool) -> None:
    def confirm(collection: str, points: int) -> bool:
        return yes or _confirm(f"drop collection {collection!r} ({plural(points, 'point')})?")

    collection = service.store(name).collection
    points = service.drop_collection(name, confirm=confirm)
    if points is None:
        raise AppError(f"not dropped; pass --yes to drop {collection!r} without asking")
    if as_json:
        print_json({"dropped": collection, "points": points})
    else:
        print(f"dropped collection {collection!r} ({plural(points, 'point')})")


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")
