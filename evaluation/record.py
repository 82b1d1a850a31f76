"""The benchmark record: every measurement is saved as JSON and ``docs/benchmarks.md`` is rendered from them.

Each result file (``docs/results/<kind>/<key>.json``) carries the command that produced it, the
date, the commit, package versions and the CPU, so every number in the Markdown can be traced
and reproduced. Rendering is deterministic: the same results give the same Markdown.
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from evaluation.beir_report import beir_section
from evaluation.markdown import provenance, table
from evaluation.ocr_report import ocr_section
from evaluation.scale_report import scale_section
from evaluation.training_report import training_section

DOCS = Path("docs")
RESULTS = "results"
PACKAGES = (
    "torch",
    "sentence-transformers",
    "transformers",
    "qdrant-client",
    "numpy",
    "pypdf",
    "pypdfium2",
    "rapidocr-onnxruntime",
)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict[str, Any]:
    """Date, commit, CPU, core count and package versions of this run."""
    import os

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "packages": versions,
    }


def save_result(kind: str, key: str, data: Mapping[str, Any], *, command: str, docs: Path = DOCS) -> Path:
    """Save one measurement and re-render ``docs/benchmarks.md``.

    Args:
        kind: the section (``beir``, ``sts``, ``ingest``, ``latency``, ...).
        key: unique name within the kind (a rerun with the same key replaces the result).
        data: the figures.
        command: the command line that produced them.
        docs: the docs folder.

    Returns:
        The JSON file written.
    """
    folder = docs / RESULTS / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.json"
    payload = {"kind": kind, "key": key, "command": command, "environment": environment(), "data": dict(data)}
    path.write_text(
        json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )
    render(docs)
    return path


def load_results(docs: Path = DOCS) -> dict[str, list[dict[str, Any]]]:
    """All saved results by kind, sorted by key."""
    results: dict[str, list[dict[str, Any]]] = {}
    root = docs / RESULTS
    if not root.is_dir():
        return results
    for path in sorted(root.glob("*/*.json")):
        entry = json.loads(path.read_text(encoding="utf-8"))
        results.setdefault(entry["kind"], []).append(entry)
    return results


def _generic_section(kind: str, entries: Sequence[Mapping[str, Any]]) -> list[str]:
    titles = {
        "sts": "Semantic textual similarity (STS-benchmark test, Spearman)",
        "ingest": "Ingestion throughput and memory",
        "latency": "Query latency",
        "speed": "Speed: headline figures (instructor-search bench)",
        "accuracy": "Accuracy of the inference runtimes against torch fp32",
        "tuning": "Tuning on the train splits (instructor-search eval tune)",
    }
    lines = [f"## {titles.get(kind, kind.capitalize())}", ""]
    keys: list[str] = []
    for entry in entries:
        for key, value in entry["data"].items():
            if key not in keys and not isinstance(value, dict | list):
                keys.append(key)
    if len(entries) == 1 and len(keys) > 8:  # one wide record (a summary): one figure per row
        data = entries[0]["data"]
        lines += table(["figure", "value"], [[key, data.get(key)] for key in keys])
        return lines + provenance(entries)
    rows = [[entry["key"], *[entry["data"].get(k) for k in keys]] for entry in entries]
    lines += table(["run", *keys], rows)
    return lines + provenance(entries)


def render(docs: Path = DOCS) -> Path:
    """Write ``docs/benchmarks.md`` from all saved results (and the hand-written ``docs/notes/<kind>.md``)."""
    results = load_results(docs)
    lines = [
        "# Benchmarks",
        "",
        "Every figure below was written by a command of this repository (listed under each table),",
        "from the JSON files in `docs/results/`. Re-run `make eval` (quality) or `make bench` (speed) to",
        "reproduce; each section names the date, commit, CPU and package versions of its runs.",
        "",
    ]
    order = ["beir", "training", "tuning", "sts", "ocr", "speed", "latency", "ingest", "scale", "accuracy"]
    for kind in sorted(results, key=lambda k: (order.index(k) if k in order else len(order), k)):
        entries = results[kind]
        if kind == "beir":
            lines += beir_section(entries, docs)
        elif kind == "training":
            lines += training_section(entries)
        elif kind == "ocr":
            lines += ocr_section(entries)
        elif kind == "scale":
            lines += scale_section(entries, docs)
        else:
            lines += _generic_section(kind, entries)
        notes = docs / "notes" / f"{kind}.md"
        if notes.is_file():
            lines += [notes.read_text(encoding="utf-8").strip(), ""]
    path = docs / "benchmarks.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path
