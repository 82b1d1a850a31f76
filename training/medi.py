"""MEDI-format training data: ``[instruction, text]`` pairs for a query, a positive and a negative.

The format of INSTRUCTOR's MEDI collection (Su et al., 2022). Each record is::

    {"query": [instruction, text], "pos": [instruction, text], "neg": [instruction, text],
     "task_name": "scifact"}

``neg`` is optional here. Two file layouts load as they are:

* JSON Lines, one record per line (what the builders of :mod:`training.builders` write);
* the original repository's ``medi-data.json``: one JSON list of records, whose task is named by
  ``task_name`` or ``task_id``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.errors import TrainingDataError

#: Records are the three sides, in the order the contrastive loss takes them.
SIDES = ("query", "pos", "neg")


@dataclass(frozen=True)
class Pair:
    """One ``[instruction, text]`` pair.

    Attributes:
        instruction: the instruction (``""`` for none).
        text: the text.
    """

    instruction: str
    text: str

    def as_list(self) -> list[str]:
        """The pair as MEDI writes it."""
        return [self.instruction, self.text]


@dataclass(frozen=True)
class MediRecord:
    """One training example: a query, its positive and (optionally) a hard negative.

    Attributes:
        query: the query pair.
        pos: the positive pair.
        neg: the hard negative pair, or ``None``.
        task: the task name; every training batch comes from one task.
    """

    query: Pair
    pos: Pair
    neg: Pair | None
    task: str

    def as_dict(self) -> dict[str, Any]:
        """The record as one MEDI JSON object."""
        row: dict[str, Any] = {"query": self.query.as_list(), "pos": self.pos.as_list()}
        if self.neg is not None:
            row["neg"] = self.neg.as_list()
        row["task_name"] = self.task
        return row


def _pair(row: Mapping[str, Any], side: str, where: str) -> Pair | None:
    value = row.get(side)
    if value is None and side == "neg":
        return None
    if value is None:
        raise TrainingDataError(f"{where}: field {side!r} is missing; every record needs 'query' and 'pos'")
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(isinstance(part, str) for part in value)
    ):
        raise TrainingDataError(
            f"{where}: field {side!r} must be [instruction, text] (two strings), got {str(value)[:80]!r}"
        )
    if not value[1].strip():
        raise TrainingDataError(f"{where}: field {side!r} has an empty text; drop the record or fill it")
    return Pair(instruction=value[0].strip(), text=value[1].strip())


def parse_record(row: Any, where: str, default_task: str) -> MediRecord:
    """Check one decoded JSON value and turn it into a record.

    Args:
        row: the decoded JSON object.
        where: ``file:line`` (or ``file[index]``) for error messages.
        default_task: the task of a record that names none.

    Returns:
        The record.

    Raises:
        TrainingDataError: the value is not a MEDI record; the message names the place and field.
    """
    if not isinstance(row, Mapping):
        raise TrainingDataError(
            f"{where}: expected a JSON object with 'query' and 'pos', got {type(row).__name__}"
        )
    task = row.get("task_name", row.get("task_id", default_task))
    if not isinstance(task, (str, int)) or isinstance(task, bool) or not str(task).strip():
        raise TrainingDataError(f"{where}: field 'task_name' must be a non-empty string, got {task!r}")
    query = _pair(row, "query", where)
    pos = _pair(row, "pos", where)
    assert query is not None and pos is not None
    return MediRecord(query=query, pos=pos, neg=_pair(row, "neg", where), task=str(task).strip())


def iter_medi(path: str | Path) -> Iterator[MediRecord]:
    """Read a MEDI file, JSON Lines or one JSON list (``medi-data.json``), record by record.

    Args:
        path: the file. A record without ``task_name``/``task_id`` belongs to the task named
            after the file (its stem).

    Yields:
        The records in file order.

    Raises:
        TrainingDataError: the file is missing or a record is malformed (file, line and field named).
    """
    file = Path(path)
    if not file.is_file():
        raise TrainingDataError(
            f"training file {str(file)!r} does not exist; pass a MEDI JSONL file "
            "(build one with `instructor-search dataset ...`)"
        )
    with file.open(encoding="utf-8") as handle:
        head = handle.read(4096).lstrip()
    if head.startswith("["):
        yield from _iter_json_list(file)
        return
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(
                    f"{file}:{number}: not valid JSON ({exc.msg} at column {exc.colno})"
                ) from exc
            yield parse_record(row, f"{file}:{number}", file.stem)


def _iter_json_list(file: Path) -> Iterator[MediRecord]:
    try:
        rows = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TrainingDataError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(rows, list):
        raise TrainingDataError(f"{file}: a JSON file must hold a list of MEDI records")
    for index, row in enumerate(rows):
        yield parse_record(row, f"{file}[{index}]", file.stem)


def read_medi(paths: str | Path | Iterable[str | Path]) -> list[MediRecord]:
    """Every record of one or more MEDI files (see :func:`iter_medi`).

    Raises:
        TrainingDataError: a file is missing, malformed, or holds no record.
    """
    files = [paths] if isinstance(paths, (str, Path)) else list(paths)
    records: list[MediRecord] = []
    for file in files:
        before = len(records)
        records.extend(iter_medi(file))
        if len(records) == before:
            raise TrainingDataError(f"training file {str(file)!r} holds no record")
    return records


def write_medi(records: Iterable[MediRecord], path: str | Path) -> int:
    """Write records as MEDI JSON Lines, atomically (a half-written file never replaces a good one).

    Args:
        records: the records.
        path: the output file; its folder is created.

    Returns:
        How many records were written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record.as_dict(), ensure_ascii=False) + "\n")
                count += 1
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


@dataclass(frozen=True)
class DataSummary:
    """What a training set holds (recorded with a trained model).

    Attributes:
        sha256: hash over the records in order.
        records: how many records.
        tasks: records per task.
        with_negatives: records that carry a hard negative.
        instructions: per task, the query and document instructions (first record's).
        files: the files read.
    """

    sha256: str
    records: int
    tasks: dict[str, int]
    with_negatives: int
    instructions: dict[str, dict[str, str]]
    files: list[str]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "sha256": self.sha256,
            "records": self.records,
            "tasks": dict(self.tasks),
            "with_negatives": self.with_negatives,
            "instructions": {task: dict(pair) for task, pair in self.instructions.items()},
            "files": list(self.files),
        }


def summarize(records: Sequence[MediRecord], files: Sequence[str | Path] = ()) -> DataSummary:
    """Hash and count a training set.

    Args:
        records: the records.
        files: the files they came from (names only are recorded).

    Returns:
        The summary.
    """
    digest = hashlib.sha256()
    instructions: dict[str, dict[str, str]] = {}
    for record in records:
        digest.update(json.dumps(record.as_dict(), ensure_ascii=False, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
        instructions.setdefault(
            record.task, {"query": record.query.instruction, "document": record.pos.instruction}
        )
    return DataSummary(
        sha256=digest.hexdigest(),
        records=len(records),
        tasks=dict(sorted(Counter(record.task for record in records).items())),
        with_negatives=sum(1 for record in records if record.neg is not None),
        instructions=instructions,
        files=[Path(file).name for file in files],
    )
