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

DOCS = Path("docs")
RESULTS = "results"
PACKAGES = ("torch", "sentence-transformers", "transformers", "qdrant-client", "numpy", "pypdf")

#: Published nDCG@10 references (MTEB leaderboard / INSTRUCTOR paper).
PUBLISHED_NDCG = {
    "scifact": {"all-MiniLM-L6-v2 (MTEB)": 0.6451, "instructor-large (paper)": 0.6443},
    "nfcorpus": {"all-MiniLM-L6-v2 (MTEB)": 0.3159, "instructor-large (paper)": 0.3409},
}


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


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _provenance(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["", "<details><summary>Commands and environment</summary>", ""]
    for entry in entries:
        env = entry["environment"]
        packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
        lines.append(
            f"- `{entry['key']}`: `{entry['command']}` — {env['date']}, commit {env['commit']}, "
            f"{env['cpu']} ({env['cores']} cores), Python {env['python']}, {packages}"
        )
    lines += ["", "</details>", ""]
    return lines


def _beir_section(entries: Sequence[Mapping[str, Any]], docs: Path) -> list[str]:
    lines = ["## Retrieval on BEIR (test split unless stated)", ""]
    rows = []
    for entry in entries:
        d = entry["data"]
        rows.append(
            [
                d["dataset"],
                d.get("split", "test"),
                d["corpus_format"],
                d.get("mode", "dense"),
                d["instructions"],
                d["ndcg_at_10"],
                d["recall_at_100"],
                d["mrr_at_10"],
                d["map_at_100"],
                d["chunks"],
                *_ingest_cost(d),
            ]
        )
    lines += _table(
        [
            "dataset",
            "split",
            "corpus",
            "mode",
            "instructions",
            "nDCG@10",
            "Recall@100",
            "MRR@10",
            "MAP@100",
            "chunks",
            "ingest s",
            "docs/s",
        ],
        rows,
    )
    lines += ["", "Instruction wording per run:", ""]
    for entry in entries:
        d = entry["data"]
        lines.append(
            f"- `{entry['key']}`: query `{d.get('query_instruction')}`, document `{d.get('document_instruction')}`"
        )
    refs = "; ".join(
        f"{name}: " + ", ".join(f"{k} {v}" for k, v in values.items())
        for name, values in PUBLISHED_NDCG.items()
    )
    lines += ["", f"Published nDCG@10 references — {refs}.", ""]
    lines += _representation_table(entries)
    plot = _beir_plot(entries, docs)
    if plot is not None:
        lines += [f"![nDCG@10 per setting]({plot.relative_to(docs).as_posix()})", ""]
    return lines + _provenance(entries)


def _ingest_cost(d: Mapping[str, Any]) -> tuple[float, float]:
    """Ingest seconds and docs/s of the build of the run's collection.

    A run that reused a kept collection reports the build it reused, not its own seconds of checking.
    """
    build = d.get("extra", {}).get("build") or {}
    if build.get("reused") and build.get("seconds"):
        seconds = float(build["seconds"])
        return seconds, round(d["documents"] / seconds, 2) if seconds else 0.0
    return d["ingest_seconds"], d["docs_per_second"]


def _representation_table(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Runs that record their representations: what each costs and the gap to instructor-large."""
    rows = []
    for entry in entries:
        d = entry["data"]
        if "index" not in d:
            continue
        build = d.get("extra", {}).get("build", {})
        costs = ", ".join(f"{k} {v:g}" for k, v in sorted(build.get("representation_seconds", {}).items()))
        size = (d.get("index") or {}).get("bytes_on_disk")
        reference = PUBLISHED_NDCG.get(d["dataset"], {}).get("instructor-large (paper)")
        rows.append(
            [
                d["dataset"],
                d.get("split", "test"),
                d["corpus_format"],
                d.get("mode", "dense"),
                d.get("fusion") or "",
                "+".join(["dense", *d.get("representations", {})]),
                d["ndcg_at_10"],
                d["recall_at_100"],
                f"{d['ndcg_at_10'] - reference:+.4f}" if reference is not None else "",
                build.get("seconds", d["ingest_seconds"]),
                costs,
                f"{size / 2**20:.1f}" if size else "",
            ]
        )
    if not rows:
        return []
    lines = [
        "### Retrieval modes and representations",
        "",
        "Build s: wall time of the ingest that built the collection (every representation at once); "
        "the next column splits out the seconds spent on each extra representation (extraction and "
        "embedding). Index MiB: the collection's folder in the embedded store.",
        "",
    ]
    lines += _table(
        [
            "dataset",
            "split",
            "corpus",
            "mode",
            "fusion",
            "collection has",
            "nDCG@10",
            "Recall@100",
            "vs instructor-large",
            "build s",
            "of which (s)",
            "index MiB",
        ],
        rows,
    )
    return [*lines, ""]


def _beir_plot(entries: Sequence[Mapping[str, Any]], docs: Path) -> Path | None:
    test_entries = [e for e in entries if e["data"].get("split", "test") == "test"]
    if not test_entries:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({e["data"]["dataset"] for e in test_entries})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    for ax, name in zip(axes[0], datasets, strict=True):
        mine = [e for e in test_entries if e["data"]["dataset"] == name]
        labels = [
            f"{e['data']['corpus_format']}/{e['data'].get('mode', 'dense')}/{e['data']['instructions']}"
            for e in mine
        ]
        values = [e["data"]["ndcg_at_10"] for e in mine]
        ax.barh(labels, values, color="#4C72B0")
        for ref_name, ref in PUBLISHED_NDCG.get(name, {}).items():
            ax.axvline(ref, linestyle="--", color="#C44E52" if "instructor" in ref_name else "#55A868")
            ax.text(ref, len(labels) - 0.5, ref_name, rotation=90, va="top", ha="right", fontsize=7)
        ax.set_title(f"{name}: nDCG@10")
        ax.set_xlim(0, max([*values, *PUBLISHED_NDCG.get(name, {}).values(), 0.1]) * 1.15)
    fig.tight_layout()
    path = docs / "img" / "beir_ndcg.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
        lines += _table(["figure", "value"], [[key, data.get(key)] for key in keys])
        return lines + _provenance(entries)
    rows = [[entry["key"], *[entry["data"].get(k) for k in keys]] for entry in entries]
    lines += _table(["run", *keys], rows)
    return lines + _provenance(entries)


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
    order = ["beir", "tuning", "sts", "speed", "latency", "ingest", "accuracy"]
    for kind in sorted(results, key=lambda k: (order.index(k) if k in order else len(order), k)):
        entries = results[kind]
        lines += _beir_section(entries, docs) if kind == "beir" else _generic_section(kind, entries)
        notes = docs / "notes" / f"{kind}.md"
        if notes.is_file():
            lines += [notes.read_text(encoding="utf-8").strip(), ""]
    path = docs / "benchmarks.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path
