"""The BEIR section of ``docs/benchmarks.md``: every configuration once, with its newest figure.

A *configuration* is what decides a run's figures: dataset, split, corpus format, model, mode,
fusion, instructions (their wording) and the parameters of the representations the mode searches
(keyword weights, BM25 k1 and b, ...). Records of one configuration are runs of the same
measurement: the newest one is shown, with its commit and date; older ones stay in
``docs/results/`` and the git history and are only listed, under the provenance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluation.markdown import cell, provenance, table

#: Published nDCG@10 anchors (MTEB leaderboard / INSTRUCTOR paper), by dataset.
PUBLISHED_NDCG = {
    "scifact": {"all-MiniLM-L6-v2 (MTEB)": 0.6451, "instructor-large (paper)": 0.6443},
    "nfcorpus": {"all-MiniLM-L6-v2 (MTEB)": 0.3159, "instructor-large (paper)": 0.3409},
}
#: Representation parameters measured on the corpus rather than chosen (not part of a configuration).
MEASURED = frozenset({"avg_length"})
#: Column order of the modes (others follow, sorted).
MODE_ORDER = (
    "dense",
    "sparse",
    "hybrid",
    "sentences",
    "keywords",
    "questions",
    "hybrid+sentences",
    "hybrid+keywords",
    "hybrid+questions",
    "all",
)

Entry = Mapping[str, Any]


def _searched_representations(data: Mapping[str, Any]) -> list[str]:
    """The recorded representations the run's mode searches (``all``: every one the collection has)."""
    # retrieval.modes loads qdrant-client; this module is imported by every CLI start (via record).
    from retrieval.modes import MODES

    recorded = data.get("representations") or {}
    mode = data.get("mode", "dense")
    used = recorded if mode == "all" else MODES.get(mode, ())
    return sorted(name for name in used if name in recorded)


def configuration(data: Mapping[str, Any]) -> tuple[Any, ...]:
    """What decides a run's figures (two records with the same configuration measured the same thing)."""
    recorded = data.get("representations") or {}
    params = tuple(
        (name, json.dumps({k: v for k, v in recorded[name].items() if k not in MEASURED}, sort_keys=True))
        for name in _searched_representations(data)
    )
    return (
        data["dataset"],
        data.get("split", "test"),
        data["corpus_format"],
        data.get("model", ""),
        data.get("mode", "dense"),
        data.get("fusion") or "",
        data["instructions"],
        data.get("query_instruction"),
        data.get("document_instruction"),
        params,
    )


def _newest_first(entry: Entry) -> tuple[str, str]:
    return entry["environment"]["date"], entry["key"]


def current_records(entries: Sequence[Entry]) -> tuple[list[Entry], list[tuple[Entry, Entry]]]:
    """The newest record of each configuration, in table order, and (superseded, newer) pairs.

    Args:
        entries: the saved ``beir`` records.

    Returns:
        The current records, sorted by dataset, split, corpus, mode, instructions and settings,
        and every older record with the one that replaces it.
    """
    newest: dict[tuple[Any, ...], Entry] = {}
    older: list[Entry] = []
    for entry in sorted(entries, key=_newest_first, reverse=True):
        key = configuration(entry["data"])
        if key in newest:
            older.append(entry)
        else:
            newest[key] = entry
    current = sorted(newest.values(), key=_table_order)
    superseded = [(entry, newest[configuration(entry["data"])]) for entry in sorted(older, key=_table_order)]
    return current, superseded


def _mode_rank(mode: str) -> tuple[int, str]:
    return (MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER), mode)


def _table_order(entry: Entry) -> tuple[Any, ...]:
    d = entry["data"]
    return (
        d["dataset"],
        d.get("split", "test"),
        d["corpus_format"],
        _mode_rank(d.get("mode", "dense")),
        d["instructions"],
        settings_label(d),
        entry["key"],
    )


def settings_label(data: Mapping[str, Any]) -> str:
    """The fusion and keyword weights of a run, e.g. ``rrf(k=60); keywords 0.9/0.1`` (empty: none)."""
    parts = [data["fusion"]] if data.get("fusion") else []
    keywords = (data.get("representations") or {}).get("keywords")
    if keywords and "keywords" in _searched_representations(data):
        parts.append(f"keywords {keywords['chunk_weight']:g}/{keywords['keyword_weight']:g}")
    return "; ".join(parts)


def _wordings(
    current: Sequence[Entry],
) -> tuple[list[tuple[str, Any, Any]], Callable[[Mapping[str, Any]], str]]:
    """Distinct (label, query, document) instruction wordings, and each run's name for its wording."""
    wordings: list[tuple[str, Any, Any]] = []
    for entry in current:
        d = entry["data"]
        wording = (d["instructions"], d.get("query_instruction"), d.get("document_instruction"))
        if wording not in wordings:
            wordings.append(wording)
    labels = [label for label, _, _ in wordings]

    def name(data: Mapping[str, Any]) -> str:
        wording = (data["instructions"], data.get("query_instruction"), data.get("document_instruction"))
        label = wording[0]
        return label if labels.count(label) == 1 else f"{label} ({wordings.index(wording) + 1})"

    return wordings, name


def _wording_lines(current: Sequence[Entry]) -> list[str]:
    wordings, name = _wordings(current)
    lines = ["Instruction wordings (the instructions column names them):", ""]
    for label, query, document in wordings:
        shown = name({"instructions": label, "query_instruction": query, "document_instruction": document})
        if query is None and document is None:
            lines.append(f"- `{shown}`: no instruction")
        else:
            lines.append(f"- `{shown}`: query `{query}`, document `{document}`")
    return [*lines, ""]


def _ingest_cost(d: Mapping[str, Any]) -> tuple[float, float]:
    """Ingest seconds and docs/s of the build of the run's collection.

    A run that reused a kept collection reports the build it reused, not its own seconds of checking.
    """
    build = d.get("extra", {}).get("build") or {}
    if build.get("reused") and build.get("seconds"):
        seconds = float(build["seconds"])
        return seconds, round(d["documents"] / seconds, 2) if seconds else 0.0
    return d["ingest_seconds"], d["docs_per_second"]


def _headline(current: Sequence[Entry]) -> list[str]:
    """Dataset x mode nDCG@10 on the test splits, the best configuration and the published anchors."""
    tests = [e for e in current if e["data"].get("split", "test") == "test"]
    anchored = [e for e in tests if e["data"]["dataset"] in PUBLISHED_NDCG]
    tests = anchored or tests
    if not tests:
        return []
    modes = sorted({e["data"].get("mode", "dense") for e in tests}, key=_mode_rank)
    anchors = list(
        dict.fromkeys(name for e in tests for name in PUBLISHED_NDCG.get(e["data"]["dataset"], {}))
    )
    _, wording = _wordings(current)
    rows = []
    for dataset, corpus in dict.fromkeys((e["data"]["dataset"], e["data"]["corpus_format"]) for e in tests):
        mine = [
            e["data"]
            for e in tests
            if (e["data"]["dataset"], e["data"]["corpus_format"]) == (dataset, corpus)
        ]
        best = max(mine, key=lambda d: d["ndcg_at_10"])
        cells = []
        for mode in modes:
            scores = [d["ndcg_at_10"] for d in mine if d.get("mode", "dense") == mode]
            top = max(scores) if scores else None
            cells.append(f"**{cell(top)}**" if top == best["ndcg_at_10"] else cell(top))
        described = ", ".join(
            p for p in (best.get("mode", "dense"), settings_label(best), wording(best)) if p
        )
        published = PUBLISHED_NDCG.get(dataset, {})
        rows.append(
            [
                dataset,
                corpus,
                *cells,
                f"{described}: {cell(best['ndcg_at_10'])}",
                *map(published.get, anchors),
            ]
        )
    lines = [
        "### At a glance: nDCG@10 on the test splits",
        "",
        "A cell is the best current figure of that mode over its fusions, weights and instructions (each",
        "configuration is a row of the next table); bold: the row's best, named in *best configuration*.",
        "Published anchors: MTEB leaderboard (all-MiniLM-L6-v2) and the INSTRUCTOR paper (instructor-large).",
        "",
    ]
    return [*lines, *table(["dataset", "corpus", *modes, "best configuration", *anchors], rows), ""]


def _configuration_table(current: Sequence[Entry]) -> list[str]:
    _, wording = _wordings(current)
    models = sorted({e["data"].get("model", "") for e in current})
    rows = []
    for entry in current:
        d, env = entry["data"], entry["environment"]
        rows.append(
            [
                d["dataset"],
                d.get("split", "test"),
                d["corpus_format"],
                d.get("mode", "dense"),
                wording(d),
                d["ndcg_at_10"],
                d["recall_at_100"],
                d["mrr_at_10"],
                d["map_at_100"],
                settings_label(d),
                d["chunks"],
                *_ingest_cost(d),
                env["commit"],
                env["date"].split(" ")[0],
                *([d.get("model", "")] if len(models) > 1 else []),
            ]
        )
    headers = ["dataset", "split", "corpus", "mode", "instructions", "nDCG@10", "Recall@100", "MRR@10"]
    headers += ["MAP@100", "fusion, weights", "chunks", "ingest s", "docs/s", "commit", "date"]
    lines = ["### Every configuration (its newest run)", ""]
    if len(models) == 1:
        lines += [f"Model: `{models[0]}`.", ""]
    return [*lines, *table([*headers, *(["model"] if len(models) > 1 else [])], rows), ""]


def _representation_table(current: Sequence[Entry]) -> list[str]:
    """Runs that record their representations: what each costs and the gap to instructor-large."""
    rows = []
    for entry in current:
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
    headers = ["dataset", "split", "corpus", "mode", "fusion", "collection has", "nDCG@10", "Recall@100"]
    headers += ["vs instructor-large", "build s", "of which (s)", "index MiB"]
    return [*lines, *table(headers, rows), ""]


def _beir_plot(current: Sequence[Entry], docs: Path) -> Path | None:
    test_entries = [e for e in current if e["data"].get("split", "test") == "test"]
    if not test_entries:
        return None
    # matplotlib only when a report is rendered (this module is imported by every CLI start).
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, wording = _wordings(current)
    datasets = sorted({e["data"]["dataset"] for e in test_entries})
    most = max(sum(e["data"]["dataset"] == name for e in test_entries) for name in datasets)
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), max(4, 0.3 * most)), squeeze=False)
    for ax, name in zip(axes[0], datasets, strict=True):
        mine = [e["data"] for e in test_entries if e["data"]["dataset"] == name]
        labels = [
            "/".join(
                p for p in (d["corpus_format"], d.get("mode", "dense"), settings_label(d), wording(d)) if p
            )
            for d in mine
        ]
        values = [d["ndcg_at_10"] for d in mine]
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


def _superseded_lines(superseded: Sequence[tuple[Entry, Entry]]) -> list[str]:
    if not superseded:
        return []
    lines = [
        "Superseded runs (an older record of a configuration above; kept in `docs/results/beir/` and the",
        "git history, not in the tables):",
        "",
    ]
    for old, new in superseded:
        env = old["environment"]
        lines.append(
            f"- `{old['key']}` ({env['date']}, commit {env['commit']}, nDCG@10 {cell(old['data']['ndcg_at_10'])})"
            f" → `{new['key']}`"
        )
    return [*lines, ""]


def beir_section(entries: Sequence[Entry], docs: Path) -> list[str]:
    """The BEIR section: headline, every configuration once, wordings, representations, plot, provenance.

    Args:
        entries: every saved ``beir`` record.
        docs: the docs folder (the plot goes to ``docs/img/beir_ndcg.png``).

    Returns:
        The section's Markdown lines.
    """
    current, superseded = current_records(entries)
    lines = ["## Retrieval on BEIR (test split unless stated)", ""]
    lines += _headline(current)
    lines += _configuration_table(current)
    lines += _wording_lines(current)
    lines += _representation_table(current)
    plot = _beir_plot(current, docs)
    if plot is not None:
        lines += [f"![nDCG@10 per setting]({plot.relative_to(docs).as_posix()})", ""]
    return lines + provenance(current) + _superseded_lines(superseded)
