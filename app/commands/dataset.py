"""The ``dataset`` subcommands: MEDI-format training data for ``instructor-search train``.

``instructor-search dataset beir DIR [--split train] [--domain D] [--negatives bm25|none]
[--max-records N] [--positives-per-query N] [--seed S] --out FILE [--json]``

``instructor-search dataset sts FILE [--min-score S] [--max-negative-score S] [--both-directions]
[--max-records N] [--seed S] --out FILE [--json]``

``instructor-search dataset collection [--collection NAME] [--kinds keywords,title,ict,questions]
[--max-per-kind N] [--domain D] [--negatives bm25|none] [--seed S] --out FILE [--json]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli import print_json
from app.wording import plural
from config import display

if TYPE_CHECKING:
    from config import Settings
    from training.medi import MediRecord

_NEGATIVES = ("bm25", "none")


def register(subparsers: Any) -> None:
    """Add ``dataset beir``, ``dataset sts`` and ``dataset collection``."""
    parser = subparsers.add_parser(
        "dataset",
        help="build MEDI-format training data (for `instructor-search train`)",
        description="Write [instruction, text] training records as MEDI JSON Lines, with the product's "
        "own instructions: from BEIR qrels, from STS-benchmark pairs, or label-free from a collection.",
    )
    inner = parser.add_subparsers(dest="dataset_command", metavar="SOURCE", required=True)

    beir = inner.add_parser("beir", help="a BEIR folder's judgements (one task per dataset)")
    beir.add_argument("folder", metavar="DIR", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    beir.add_argument("--split", default="train", help="qrels split (default: train)")
    beir.add_argument(
        "--domain",
        default=None,
        help="domain of the instructions (default: science for scifact, medicine for nfcorpus, else none)",
    )
    beir.add_argument(
        "--positives-per-query",
        type=int,
        default=None,
        metavar="N",
        help="records per query at most (default 8)",
    )
    _add_common(beir, "--max-records", "keep a seeded random sample of N records")
    beir.set_defaults(handler=_beir_handler)

    sts = inner.add_parser("sts", help="STS-benchmark pairs as a symmetric task under the STS instruction")
    sts.add_argument("file", metavar="FILE", help="stsbenchmark/sts-train.csv")
    sts.add_argument("--min-score", type=float, default=4.0, help="lowest score of a positive (default 4.0)")
    sts.add_argument(
        "--max-negative-score",
        type=float,
        default=2.0,
        help="highest score of a pair that gives the anchor a hard negative (default 2.0)",
    )
    sts.add_argument("--both-directions", action="store_true", help="also write each pair swapped")
    _add_common(sts, "--max-records", "keep a seeded random sample of N records", negatives=False)
    sts.set_defaults(handler=_sts_handler)

    collection = inner.add_parser(
        "collection", help="label-free pseudo-queries from a collection's chunks (one task per kind)"
    )
    collection.add_argument(
        "--kinds",
        default="keywords,title,ict,questions",
        help="comma-separated kinds: keywords, title, ict, questions (questions need "
        "index.questions.generator; default: all)",
    )
    collection.add_argument(
        "--domain", default=None, help="domain of the instructions (default: the collection's)"
    )
    _add_common(collection, "--max-per-kind", "records per kind at most (a seeded random choice of chunks)")
    collection.set_defaults(handler=_collection_handler)


def _add_common(
    parser: argparse.ArgumentParser, limit: str, limit_help: str, *, negatives: bool = True
) -> None:
    if negatives:
        parser.add_argument(
            "--negatives",
            choices=_NEGATIVES,
            default="bm25",
            help="hard negatives: bm25 or none (default bm25)",
        )
    parser.add_argument(limit, type=int, default=None, metavar="N", help=limit_help)
    parser.add_argument("--seed", type=int, default=42, help="seed of every random choice (default 42)")
    parser.add_argument("--out", "-o", required=True, metavar="FILE", help="the MEDI JSONL file to write")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _beir_handler(args: argparse.Namespace, settings: Settings) -> int:
    from training.builders.beir import POSITIVES_PER_QUERY, beir_records

    records = beir_records(
        args.folder,
        split=args.split,
        domain=args.domain,
        negatives=args.negatives,
        max_records=args.max_records,
        seed=args.seed,
        positives_per_query=POSITIVES_PER_QUERY
        if args.positives_per_query is None
        else args.positives_per_query,
    )
    return _write(args, records, notes=[])


def _sts_handler(args: argparse.Namespace, settings: Settings) -> int:
    from training.builders.sts import sts_records

    records = sts_records(
        args.file,
        min_score=args.min_score,
        max_negative_score=args.max_negative_score,
        both_directions=args.both_directions,
        max_records=args.max_records,
        seed=args.seed,
    )
    return _write(args, records, notes=[])


def _collection_handler(args: argparse.Namespace, settings: Settings) -> int:
    from app.service import SearchService  # qdrant-client: not for --help
    from training.builders.unlabeled import (
        MIN_CHUNK_WORDS,
        collection_records,
        parse_kinds,
        question_generator,
    )

    kinds = parse_kinds(args.kinds.split(","))
    notes: list[str] = []
    generator = question_generator(settings) if "questions" in kinds else None
    if "questions" in kinds and generator is None:
        notes.append(
            "questions: not built, no question generator is configured "
            "(set INSTRUCTOR_SEARCH_INDEX__QUESTIONS__GENERATOR to a local sequence-to-sequence model)"
        )
    with SearchService.open(settings) as service:
        store = service.store()
        record = store.require_record()
        records = collection_records(
            store.iter_chunks(),
            domain=record.domain if args.domain is None else args.domain,
            kinds=kinds,
            seed=args.seed,
            max_per_kind=args.max_per_kind,
            generator=generator,
            negatives=args.negatives,
        )
    if not records:
        print(
            f"error: collection {display(store.collection)!r} gave no record (no chunk of {MIN_CHUNK_WORDS} words or more, "
            "or none of the kinds applies); ingest documents or choose other --kinds",
            file=sys.stderr,
        )
        return 1
    return _write(args, records, notes=notes)


def _write(args: argparse.Namespace, records: list[MediRecord], *, notes: list[str]) -> int:
    """Write the records and print what each task holds."""
    from training.builders.common import count_tasks
    from training.medi import summarize, write_medi

    out = Path(args.out)
    written = write_medi(records, out)
    tasks = count_tasks(records)
    if args.json:
        print_json(
            {
                "out": str(out),
                "records": written,
                "sha256": summarize(records).sha256,
                "tasks": {
                    task: {
                        "records": count.records,
                        "with_negatives": count.with_negatives,
                        "query_instruction": count.query_instruction,
                        "document_instruction": count.document_instruction,
                    }
                    for task, count in tasks.items()
                },
                "notes": notes,
            }
        )
        return 0
    print(f"wrote {plural(written, 'record')} to {display(str(out))}")
    for task, count in tasks.items():
        print(
            f"  {display(task)}: {plural(count.records, 'record')}, {count.with_negatives} with a hard negative"
        )
        print(f"    query: {display(count.query_instruction) or '(none)'}")
        print(f"    document: {display(count.document_instruction) or '(none)'}")
    for note in notes:
        print(f"note: {display(note)}")
    print(f"train on it: instructor-search train {display(str(out))} --output MODEL_DIR")
    return 0
