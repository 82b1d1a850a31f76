"""The ``adapt`` subcommand: label-free domain adaptation of a collection in one command.

``instructor-search adapt --collection NAME [--target NAME] [--max-steps N] [--epochs E]
[--max-per-kind N] [--no-resume] [--no-progress] [--json]``

It calls :meth:`app.service.SearchService.adapt` (see :mod:`training.adapt`): training data from
the collection's own chunks, fine-tuning of its model, and re-embedding into a new collection.
One progress bar per stage on stderr. Ctrl-C stops cleanly after the current step or batch
(a second Ctrl-C stops at once); running the same command again resumes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from types import FrameType
from typing import TYPE_CHECKING, Any

from app.cli import print_json
from app.wording import plural
from config import display, override

if TYPE_CHECKING:
    from config import Settings
    from training.adapt import AdaptEvent, AdaptResult

#: What each stage's bar is called, and its unit.
_STAGE_BARS = {
    "data": ("training data", "chunk"),
    "train": ("fine-tuning  ", "step"),
    "reembed": ("re-embedding ", "chunk"),
}


def register(subparsers: Any) -> None:
    """Add the ``adapt`` parser."""
    parser = subparsers.add_parser(
        "adapt",
        help="adapt the model to a collection without labels, into a new collection",
        description="Builds label-free training data from the collection's own chunks (key phrases, "
        "headings, inverse cloze sentences; generated questions when a generator is configured), "
        "fine-tunes the collection's model on it the INSTRUCTOR way, and re-embeds the collection into "
        "a new one (--target) whose record names the adapted model. The collection itself is untouched. "
        "A killed or interrupted run resumes when run again.",
    )
    parser.add_argument("--target", metavar="NAME", help="the new collection (default: COLLECTION-adapted)")
    parser.add_argument("--max-steps", type=int, metavar="N", help="training steps (wins over --epochs)")
    parser.add_argument(
        "--epochs", type=float, metavar="E", help="passes over the data (default: train.epochs)"
    )
    parser.add_argument(
        "--max-per-kind", type=int, metavar="N", help="at most N training records per pseudo-query kind"
    )
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="start over: new training data, a new model, the target rebuilt",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run_adapt)


class _StageBars:
    """One tqdm bar per stage on stderr, opened when the stage starts."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.stage: str | None = None
        self.detail = ""
        self.bar: Any = None

    def __call__(self, event: AdaptEvent) -> None:
        from tqdm import tqdm

        if event.stage != self.stage:
            self.close()
            label, unit = _STAGE_BARS[event.stage]
            self.bar = tqdm(
                desc=label, unit=unit, total=event.total or None, disable=not self.enabled, file=sys.stderr
            )
            self.stage = event.stage
        if event.detail != self.detail:
            self.detail = event.detail
            self.bar.set_postfix_str(event.detail, refresh=False)
        if event.total and self.bar.total != event.total:
            self.bar.reset(total=event.total)
        self.bar.n = event.done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextmanager
def _stop_on_ctrl_c(cancel: threading.Event) -> Iterator[None]:
    """The first Ctrl-C sets ``cancel`` (a clean stop); a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nstopping after the current step (Ctrl-C again to stop at once) ...", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_adapt(args: argparse.Namespace, settings: Settings) -> int:
    """Adapt the collection and print the result and how to use it."""
    from app.service import SearchService
    from training.errors import AdaptCancelledError

    changes = {
        f"train.{name}": value
        for name, value in (("max_steps", args.max_steps), ("epochs", args.epochs))
        if value is not None
    }
    settings = override(settings, changes) if changes else settings
    cancel = threading.Event()
    bars = _StageBars(enabled=not args.no_progress and not args.json)
    try:
        # stdout is for the result alone: the Hugging Face trainer prints its logs there.
        with SearchService.open(settings) as service, _stop_on_ctrl_c(cancel), redirect_stdout(sys.stderr):
            result = service.adapt(
                target=args.target,
                resume=not args.no_resume,
                max_per_kind=args.max_per_kind,
                progress=bars,
                cancel=cancel,
            )
    except AdaptCancelledError as exc:
        bars.close()
        print(f"stopped: {display(str(exc))}", file=sys.stderr)
        return 130
    finally:
        bars.close()
    if args.json:
        print_json(result.to_json())
    else:
        _print_result(result)
    return 0


def _print_result(result: AdaptResult) -> None:
    reused = set(result.reused)

    def note(stage: str) -> str:
        return " (kept from an earlier run)" if stage in reused else ""

    tasks = ", ".join(f"{display(task)} {count}" for task, count in result.records.items())
    print(f"adapted {display(result.collection)} -> {display(result.target)} in {result.seconds:.0f} s")
    print(
        f"  data: {plural(sum(result.records.values()), 'record')} ({tasks}) in {display(str(result.data))}{note('data')}"
    )
    loss = f", mean loss {result.train.train_loss:.4f}" if result.train.train_loss is not None else ""
    print(
        f"  model: {display(str(result.model))}, {plural(result.train.steps, 'step')} from "
        f"{display(result.base_model)}{loss}{note('train')}"
    )
    reembed = result.reembed
    print(
        f"  re-embedded: {plural(reembed.copied, 'document')} ({plural(reembed.chunks_embedded, 'chunk')}) copied, "
        f"{reembed.skipped} already there; {plural(reembed.points, 'point')} in {display(result.target)}{note('reembed')}"
    )
    if reembed.incomplete:
        print(
            f"  not copied (not completely stored in the collection): {plural(len(reembed.incomplete), 'document')}"
        )
    print(result.switch)
