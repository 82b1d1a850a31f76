"""Markdown pieces of the benchmark report: tables and the provenance of their figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def cell(value: Any) -> str:
    """One table cell: floats to 4 decimals (1 from 10 on), ``None`` empty, pipes escaped."""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table, one line per row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def provenance(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """A folded list of each record's command, date, commit, CPU and package versions."""
    lines = ["", "<details><summary>Commands and environment</summary>", ""]
    for entry in entries:
        env = entry["environment"]
        packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
        lines.append(
            f"- `{entry['key']}`: `{entry['command']}` — {env['date']}, commit {env['commit']}, "
            f"{env['cpu']} ({env['cores']} cores{_load(env)}), Python {env['python']}, {packages}"
        )
    lines += ["", "</details>", ""]
    return lines


def _load(env: Mapping[str, Any]) -> str:
    load = env.get("load_average")
    return f", load average {' '.join(str(value) for value in load)}" if load else ""
