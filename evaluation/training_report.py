"""The fine-tuning comparison of ``docs/benchmarks.md``: one row per trained model.

Its results (``docs/results/training/``) are written by ``instructor-search train --record LABEL``
(time, memory, data) and by ``eval beir`` / ``eval sts`` with ``--record --label LABEL`` (quality),
which is what ``make train`` runs for each model. ``base`` is the model before fine-tuning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evaluation.markdown import provenance, table

#: (dataset, mode, instructions) of the quality columns, in order.
_BEIR_COLUMNS = [
    (dataset, mode, instructions)
    for dataset in ("scifact", "nfcorpus")
    for mode in ("dense", "hybrid")
    for instructions in ("default", "none")
]


def _label_order(labels: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(labels))
    return sorted(unique, key=lambda label: (label != "base", label))


def _row(label: str, entries: Sequence[Mapping[str, Any]]) -> list[Any]:
    beir: dict[tuple[str, str, str], Any] = {}
    sts: Mapping[str, Any] = {}
    train: Mapping[str, Any] = {}
    for entry in entries:
        data = entry["data"]
        if "ndcg_at_10" in data:
            beir[(str(data["dataset"]), str(data.get("mode", "dense")), str(data["instructions"]))] = data[
                "ndcg_at_10"
            ]
        elif "spearman_sts_instruction" in data:
            sts = data
        elif "steps" in data:
            train = data
    records = train.get("data", {}).get("records") if train else None
    return [
        label,
        train.get("steps", ""),
        records or "",
        train.get("seconds", ""),
        train.get("peak_rss_mb", ""),
        *[beir.get(column, "") for column in _BEIR_COLUMNS],
        sts.get("spearman_sts_instruction", ""),
        sts.get("spearman_no_instruction", ""),
    ]


def training_section(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The markdown of the fine-tuning comparison."""
    by_label: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        by_label.setdefault(str(entry["data"].get("label", "?")), []).append(entry)
    headers = [
        "model",
        "steps",
        "records",
        "train s",
        "peak RSS MB",
        *[f"{d} {m} {'instr' if i == 'default' else 'no instr'}" for d, m, i in _BEIR_COLUMNS],
        "STS-B (STS instr)",
        "STS-B (no instr)",
    ]
    lines = [
        "## Instruction fine-tuning (make train)",
        "",
        "nDCG@10 on the test splits and STS-benchmark test Spearman of each model; *instr*: the "
        "dataset's domain instructions (science, medicine) on queries and documents, *no instr*: none. "
        "Train seconds and peak RSS are those of `instructor-search train` on this machine.",
        "",
    ]
    rows = [_row(label, by_label[label]) for label in _label_order(list(by_label))]
    return lines + table(headers, rows) + provenance(entries)
