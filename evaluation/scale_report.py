"""The ``scale`` section of ``docs/benchmarks.md``: the embedded store's curve as a table and a plot.

A record (``docs/results/scale/<key>.json``, written by ``instructor-search bench`` with its
``scale`` part, :mod:`evaluation.scale`) holds the figures at each store size (``points``), the
rate of each ingest call (``steps``), the real model's rate at 0 (``real_at_zero``) and the
headline figures (``summary``). The plot (``docs/img/scale_<key>.png``) draws chunks/s (the
filler's calls and the real model's) and RSS against the store size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluation.markdown import provenance, table

Entry = Mapping[str, Any]

#: The targets the headline figures are held against: (figure, comparison, target, label).
TARGETS = (
    ("real_rate_ratio", ">=", 0.8, "real model's ingest rate at the largest size / at 0"),
    ("rate_ratio", ">=", 0.8, "store-only (filler) ingest rate at the largest size / first calls"),
    ("open_plus_first_search_s", "<=", 10.0, "open + first search in the measuring process (s)"),
    ("process_open_plus_first_search_s", "<=", 10.0, "open + first search in a fresh process (s)"),
    ("dense_p50_ms", "<=", 25.0, "dense query p50 (ms), query embedded by the model"),
)

_COLUMNS = (
    ("size", "chunks"),
    ("ingest_chunks_per_s", "filler chunks/s"),
    ("real_chunks_per_s", "real chunks/s"),
    ("process_open_s", "open s (fresh)"),
    ("process_first_search_s", "1st search s (fresh)"),
    ("open_s", "open s"),
    ("first_search_s", "1st search s"),
    ("dense_p50_ms", "dense p50 ms"),
    ("hybrid_p50_ms", "hybrid p50 ms"),
    ("first_hybrid_ms", "1st hybrid ms"),
    ("peak_rss_mb", "peak RSS MB"),
)


def _verdict(value: Any, comparison: str, target: float) -> str:
    if not isinstance(value, int | float):
        return "not measured"
    met = value >= target if comparison == ">=" else value <= target
    return "met" if met else "not met"


def _headline(data: Mapping[str, Any]) -> list[str]:
    summary = data.get("summary", {})
    rows = [
        [label, summary.get(name), f"{comparison} {target}", _verdict(summary.get(name), comparison, target)]
        for name, comparison, target, label in TARGETS
    ]
    return table(["figure", "measured", "target", ""], rows)


def _curve(data: Mapping[str, Any]) -> list[str]:
    points: list[Mapping[str, Any]] = list(data.get("points", []))
    zero = data.get("real_at_zero") or {}
    if zero:
        points = [zero, *points]
    present = [(key, title) for key, title in _COLUMNS if any(key in point for point in points)]
    rows = [[point.get(key) for key, _ in present] for point in points]
    return table([title for _, title in present], rows)


def scale_plot(key: str, data: Mapping[str, Any], docs: Path) -> Path | None:
    """Draw chunks/s and RSS against the store size; returns the PNG's path (``None``: no points)."""
    steps = [step for step in data.get("steps", []) if not step.get("real")]
    points = data.get("points", [])
    if not steps or not points:
        return None
    # matplotlib only when a report is rendered (this module is imported by every CLI start).
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, rate_axis = plt.subplots(figsize=(7, 4))
    rate_axis.plot(
        [s["chunks"] for s in steps], [s["chunks_per_s"] for s in steps], ".-", label="filler chunks/s"
    )
    real = [p for p in [data.get("real_at_zero") or {}, *points] if "real_chunks_per_s" in p]
    if real:
        rate_axis.plot(
            [p["size"] for p in real],
            [p["real_chunks_per_s"] for p in real],
            "s-",
            label="real model chunks/s",
        )
    rate_axis.set_xlabel("chunks in the store")
    rate_axis.set_ylabel("ingest chunks/s")
    rate_axis.set_ylim(bottom=0)
    rss_axis = rate_axis.twinx()
    rss_axis.plot(
        [p["size"] for p in points],
        [p["peak_rss_mb"] / 1024 for p in points],
        "^--",
        color="#C44E52",
        label="peak RSS",
    )
    rss_axis.set_ylabel("peak RSS (GB)")
    rss_axis.set_ylim(bottom=0)
    handles = rate_axis.get_legend_handles_labels()[0] + rss_axis.get_legend_handles_labels()[0]
    rate_axis.legend(handles=handles, loc="lower left", fontsize=8)
    rate_axis.set_title(f"Embedded store: {data.get('settings', {}).get('model', key)}")
    fig.tight_layout()
    path = docs / "img" / f"scale_{key}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scale_section(entries: Sequence[Entry], docs: Path) -> list[str]:
    """The section: per record, the headline against the targets, the curve and its plot."""
    lines = ["## Scale: the embedded store from 0 to 200,000 chunks", ""]
    for entry in entries:
        data, key = entry["data"], entry["key"]
        settings = data.get("settings", {})
        lines += [
            f"### {key}: {settings.get('model')}, {settings.get('dimension')} dimensions",
            "",
            *_headline(data),
            "",
            *_curve(data),
            "",
        ]
        plot = scale_plot(key, data, docs)
        if plot is not None:
            lines += [f"![{key}: chunks/s and RSS against store size](img/{plot.name})", ""]
    return lines + provenance(entries)


__all__ = ["TARGETS", "scale_plot", "scale_section"]
