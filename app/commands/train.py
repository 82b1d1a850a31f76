"""The ``train`` subcommand: INSTRUCTOR-style fine-tuning on MEDI-format data.

``instructor-search train DATA.jsonl [DATA ...] --output DIR [--model BASE] [--epochs E]
[--max-steps N] [--seed S] [--batch-size B] [--learning-rate LR] [--max-seq-length T]
[--resume] [--no-instructions] [--json]``
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli import print_json
from app.wording import plural
from config import display, override

if TYPE_CHECKING:
    from config import Settings

#: Options that map onto ``settings.train`` (destination, setting).
_TRAIN_OPTIONS = (
    ("epochs", "epochs"),
    ("max_steps", "max_steps"),
    ("seed", "seed"),
    ("batch_size", "batch_size"),
    ("mini_batch_size", "mini_batch_size"),
    ("learning_rate", "learning_rate"),
    ("max_seq_length", "max_seq_length"),
    ("save_steps", "save_steps"),
)


def register(subparsers: Any) -> None:
    """Add the ``train`` parser."""
    parser = subparsers.add_parser(
        "train",
        help="fine-tune the embedder on MEDI-format [instruction, text] data (INSTRUCTOR recipe)",
        description="Contrastive fine-tuning of --model (the base model) on MEDI JSONL records "
        '({"query": [instruction, text], "pos": [...], "neg": [...], "task_name": ...}): one task per '
        "batch, in-batch and hard negatives, instruction tokens left out of the pooling. Writes a model "
        "folder that --model, INSTRUCTOR(path) and the LangChain class load.",
    )
    parser.add_argument("data", nargs="+", metavar="DATA", help="MEDI JSONL files (or a medi-data.json list)")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="the model folder to write")
    parser.add_argument(
        "--epochs", type=float, metavar="E", help="passes over the data (default: train.epochs)"
    )
    parser.add_argument("--max-steps", type=int, metavar="N", help="stop after N steps (wins over --epochs)")
    parser.add_argument("--seed", type=int, metavar="S", help="seed (default: train.seed)")
    parser.add_argument("--batch-size", type=int, metavar="B", help="examples per batch (one task each)")
    parser.add_argument("--mini-batch-size", type=int, metavar="M", help="examples per forward pass")
    parser.add_argument("--learning-rate", type=float, metavar="LR", help="AdamW learning rate")
    parser.add_argument("--max-seq-length", type=int, metavar="T", help="token limit while training")
    parser.add_argument("--save-steps", type=int, metavar="N", help="a checkpoint every N steps")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    parser.add_argument(
        "--no-instructions", action="store_true", help="train without instructions (the paper's ablation)"
    )
    parser.add_argument("--json", action="store_true", help="print the training record as JSON")
    parser.add_argument(
        "--record",
        metavar="LABEL",
        default=None,
        help="save the run's time, memory and data as model LABEL of the fine-tuning comparison "
        "(docs/results/training) and re-render docs/benchmarks.md",
    )
    parser.add_argument("--docs-dir", default="docs", help="docs folder for --record (default: docs)")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace, settings: Settings) -> int:
    """Train and print where the model is and how to use it."""
    from training.trainer import train_files

    changes = {
        f"train.{setting}": getattr(args, dest)
        for dest, setting in _TRAIN_OPTIONS
        if getattr(args, dest) is not None
    }
    settings = override(settings, changes) if changes else settings
    result = train_files(
        args.data,
        settings=settings,
        output=Path(args.output),
        resume=args.resume,
        use_instructions=not args.no_instructions,
    )
    if args.record:
        from evaluation.record import save_result

        data = {"label": args.record, "output": str(result.output), **result.record}
        save_result(
            "training", f"{args.record}-train", data, command=args.command_line, docs=Path(args.docs_dir)
        )
    if args.json:
        print_json({"output": str(result.output), "seconds": round(result.seconds, 1), **result.record})
        return 0
    data = result.record["data"]
    tasks = ", ".join(f"{display(task)} {count}" for task, count in data["tasks"].items())
    print(f"trained {display(str(result.output))}: {plural(result.steps, 'step')} in {result.seconds:.0f} s")
    print(f"  base model: {display(result.record['base_model'])}")
    print(f"  data: {plural(data['records'], 'record')} ({tasks}), sha256 {data['sha256'][:12]}")
    if result.train_loss is not None:
        print(f"  mean training loss: {result.train_loss:.4f}")
    print(f"use it: instructor-search ingest FILES --model {display(str(result.output))} --collection NAME")
    return 0
