"""The ``bench`` subcommand: query latency, ingest throughput, re-ingest, efficiency, cold start, memory, footprint.

``instructor-search bench --json`` prints the headline figures (``query_p50_ms_10k``,
``query_p50_ms_50k``, ``ingest_ratio``, ``reingest_ratio``, ...) and every figure per runtime;
``--record`` saves them under ``docs/results/`` and re-renders ``docs/benchmarks.md``.

``footprint`` compares the peak RSS of an ingest with the default settings against the standard
LangChain stack on the same PDFs (1x, 4x and 16x corpora; the stack comes with the ``bench``
extra, else its half says ``not installed``); ``cold`` times ``instructor-search search`` to its
hits and the app to its first page, each in a fresh process (see :mod:`evaluation.footprint`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast, get_args

from app.wording import plural
from config import Runtime, Settings, override

PARTS = ("latency", "throughput", "reingest", "memory", "cold", "footprint", "scale", "accuracy")


def register(subparsers: Any) -> None:
    """Add ``bench``."""
    parser = subparsers.add_parser(
        "bench", help="measure query latency, ingest throughput, re-ingest, cold start and memory"
    )
    parser.add_argument(
        "--runtimes", default="torch,onnx,onnx-int8", help="runtimes to measure (default: all three)"
    )
    parser.add_argument("--sizes", default="10000,50000", help="store sizes in chunks (default 10000,50000)")
    parser.add_argument("--queries", type=int, default=50, help="real queries per pass (default 50)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="passes/rounds per figure; figures are medians (default 5)"
    )
    parser.add_argument(
        "--passages", type=int, default=300, help="real passages embedded for the store (default 300)"
    )
    parser.add_argument("--pdfs", type=int, default=10, help="PDFs (3 pages each) of the ingest corpus")
    parser.add_argument(
        "--footprint-sizes",
        default=",".join(str(n) for n in (75, 300, 1200)),
        metavar="N,N,N",
        help="documents of the 1x, 4x and 16x footprint corpora (default 75,300,1200)",
    )
    parser.add_argument(
        "--scale-sizes",
        default="20000,50000,100000,200000",
        metavar="N,N,...",
        help="embedded store sizes (chunks) of the scale curve (default 20000,50000,100000,200000)",
    )
    parser.add_argument(
        "--scale-real-chunks",
        type=int,
        default=300,
        help="chunks the real model ingests at 0 and at each scale size (default 300; 0: filler only)",
    )
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {', '.join(PARTS)}")
    parser.add_argument(
        "--accuracy-passages", type=int, default=500, help="NFCorpus passages for the accuracy check"
    )
    parser.add_argument(
        "--ndcg",
        action="append",
        default=[],
        metavar="RUNTIME=FILE",
        help="NFCorpus nDCG@10 of a runtime: the JSON of `eval beir ... --runtime RUNTIME --json` (repeatable)",
    )
    parser.add_argument("--data", default=str(Path("..") / "shared" / "data"), help="shared data folder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--record", action="store_true", help="save to docs/results and re-render docs/benchmarks.md"
    )
    parser.add_argument("--docs-dir", default="docs", help="docs folder for --record (default: docs)")
    parser.set_defaults(handler=_handler)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _handler(args: argparse.Namespace, settings: Settings) -> int:
    from app.cli import print_json

    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        print(f"error: --sizes {args.sizes!r} must be comma-separated whole numbers", file=sys.stderr)
        return 2
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = [r for r in runtimes if r not in get_args(Runtime)]
    skip = {p.strip() for p in args.skip.split(",") if p.strip()}
    if unknown or skip - set(PARTS):
        print(
            f"error: unknown runtime(s) {unknown} or part(s) {sorted(skip - set(PARTS))}; "
            f"runtimes: {', '.join(get_args(Runtime))}; parts: {', '.join(PARTS)}",
            file=sys.stderr,
        )
        return 2
    chosen = [cast(Runtime, r) for r in runtimes]
    ndcg: dict[str, Path] = {}
    for item in args.ndcg:
        runtime, _, file = item.partition("=")
        if not file:
            print(f"error: --ndcg {item!r} must be RUNTIME=FILE", file=sys.stderr)
            return 2
        ndcg[runtime] = Path(file)
    data = Path(args.data) if Path(args.data).is_dir() else None
    with tempfile.TemporaryDirectory(prefix="instructor-search-bench-") as tmp_name:
        tmp = Path(tmp_name)
        # One data folder for the whole run: ONNX exports are made once (outside the timings).
        base = override(settings, data_dir=tmp / "data")
        figures = _run(args, base, tmp, data, chosen, sizes, skip, ndcg)
    if args.record:
        _record(figures, args.command_line, Path(args.docs_dir))
    if args.json:
        print_json(figures)
    else:
        for key, value in figures.items():
            print(f"{key:>28}: {value}")
    return 0


def _run(
    args: argparse.Namespace,
    base: Settings,
    tmp: Path,
    data: Path | None,
    runtimes: list[Runtime],
    sizes: list[int],
    skip: set[str],
    ndcg: dict[str, Path],
) -> dict[str, Any]:
    # Imported here, not at the top: every CLI start loads this module to register ``bench``.
    from embedder import make_embedder
    from evaluation import throughput

    query_runtime = base.model.query_runtime or base.model.runtime
    ingest_runtime = base.model.runtime
    figures: dict[str, Any] = {
        "model": base.model.name,
        "query_runtime": query_runtime,
        "ingest_runtime": ingest_runtime,
        "load_avg_1m_before": round(os.getloadavg()[0], 2),
    }
    for runtime in runtimes:  # export (and quantise) once, outside every timing
        make_embedder(base, runtime=runtime, cache=False)
    figures["matmul_peak_gflops"] = round(throughput.matmul_peak_gflops(args.repeats), 2)
    if "latency" not in skip:
        figures.update(_latency(args, base, data, runtimes, sizes, query_runtime))
    corpus_folder = tmp / "corpus-1x"
    source = throughput.passages(data)
    pdfs = throughput.build_corpus(corpus_folder, args.pdfs, source)
    if "throughput" not in skip:
        figures.update(_throughput(args, base, tmp, data, runtimes, pdfs, figures["matmul_peak_gflops"]))
    if "reingest" not in skip:
        _say(
            f"re-ingest: a {throughput.REINGEST_PAGES}-page PDF, one page edited, {plural(args.repeats, 'repeat')}"
        )
        figures["reingest"] = throughput.measure_reingest(
            base, tmp / "reingest", data, ingest_runtime, args.repeats
        )
        figures["reingest_ratio"] = figures["reingest"]["reingest_ratio"]
    if "cold" not in skip:
        figures.update(_cold_start(args, base, tmp / "cold", pdfs, runtimes, query_runtime))
    if "footprint" not in skip:
        figures.update(_footprint(args, base, tmp / "footprint", data))
    if "scale" not in skip:
        figures.update(_scale(args, base, tmp / "scale", query_runtime))
    if "memory" not in skip:
        folders = {"1x": corpus_folder, "4x": tmp / "corpus-4x", "16x": tmp / "corpus-16x"}
        figures.update(_memory(args, base, folders, source))
    if "accuracy" not in skip:
        from evaluation.accuracy import measure_accuracy
        from evaluation.latency import load_corpus

        corpus = load_corpus(data, args.accuracy_passages, 1000)
        _say(
            f"accuracy: {plural(len(corpus.passages), 'passage')}, "
            f"{plural(len(corpus.queries), 'query', 'queries')} from {corpus.name}"
        )
        figures["accuracy"] = measure_accuracy(base, corpus, runtimes, ndcg=ndcg)
    figures["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    return figures


def _latency(
    args: argparse.Namespace,
    base: Settings,
    data: Path | None,
    runtimes: list[Runtime],
    sizes: list[int],
    query_runtime: str,
) -> dict[str, Any]:
    """Query latency per runtime and store size, and the query runtime's p50/p95 as headline figures."""
    from embedder import Embedder, make_embedder
    from evaluation.latency import load_corpus, measure_latency

    corpus = load_corpus(data, args.passages, args.queries)
    _say(
        f"latency: {plural(len(corpus.passages), 'passage')} from {corpus.name}, sizes {sizes}, runtimes {runtimes}"
    )
    embedders: dict[str, Embedder] = {
        r: make_embedder(base, purpose="query", runtime=r, cache=False) for r in runtimes
    }
    figures: dict[str, Any] = {
        "latency": measure_latency(base, embedders, corpus, sizes, repeats=args.repeats)
    }
    headline = figures["latency"].get(query_runtime) or next(iter(figures["latency"].values()))
    for key, value in headline.items():
        if key.startswith("query_p"):
            figures[key] = value
    return figures


def _throughput(
    args: argparse.Namespace,
    base: Settings,
    tmp: Path,
    data: Path | None,
    runtimes: list[Runtime],
    pdfs: list[Path],
    peak_gflops: float,
) -> dict[str, Any]:
    """Ingest throughput per runtime, and the ingest runtime's ratios, padding and efficiency."""
    from evaluation import throughput

    runs: dict[str, Any] = {}
    for runtime in runtimes:
        _say(f"throughput: {runtime}, {plural(len(pdfs), 'PDF')}, {plural(args.repeats, 'round')}")
        entry = throughput.measure_throughput(base, tmp / "throughput", pdfs, runtime, args.repeats)
        runs[runtime] = {
            "corpus": f"{throughput.corpus_name(data)}, {plural(len(pdfs), 'PDF')}, "
            f"{plural(len(pdfs) * throughput.PAGES_PER_PDF, 'page')}",
            **entry,
        }
    main = runs.get(base.model.runtime) or next(iter(runs.values()))
    figures: dict[str, Any] = {
        "throughput": runs,
        "ingest_ratio": main["ratio"],
        "ingest_ratio_cpu_time": main["ratio_cpu_time"],
        "padding_pipeline": main["padding_pipeline"],
        "instruction_tokens": main["instruction_tokens"],
        "instruction_token_share": main["instruction_token_share"],
    }
    if "encode_gflops" in main:
        figures["encode_gflops"] = main["encode_gflops"]
        figures["efficiency_ratio"] = round(main["encode_gflops"] / peak_gflops, 3)
    return figures


def _cold_start(
    args: argparse.Namespace,
    base: Settings,
    folder: Path,
    pdfs: list[Path],
    runtimes: list[Runtime],
    query_runtime: str,
) -> dict[str, Any]:
    """``instructor-search search`` to its hits per runtime, and the app to its first page, on one collection."""
    from evaluation import footprint

    settings = footprint.start_collection(base, folder, pdfs)
    cold: dict[str, Any] = {}
    for runtime in runtimes:
        _say(f"cold start: search, {runtime}")
        cold[f"cli-search-{runtime}"] = footprint.measure_search_start(settings, runtime, args.repeats)
    app_runtime = base.model.runtime
    _say(f"cold start: first page, {app_runtime}")
    cold[f"app-page-{app_runtime}"] = footprint.measure_page_start(settings, app_runtime, args.repeats)
    return {
        "cold_start": cold,
        "cli_cold_start_s": cold.get(f"cli-search-{query_runtime}", {}).get("process_s"),
        "app_cold_start_s": cold[f"app-page-{app_runtime}"]["process_s"],
    }


def _footprint(args: argparse.Namespace, base: Settings, folder: Path, data: Path | None) -> dict[str, Any]:
    """Peak RSS of our ingest and of the LangChain stack on the 1x, 4x and 16x corpora."""
    from evaluation import footprint

    counts = [int(n) for n in args.footprint_sizes.split(",") if n.strip()]
    sizes = dict(zip(("1x", "4x", "16x"), counts, strict=False))
    _say(
        f"footprint: {footprint.corpus_name(data)} as PDFs, {sizes}; LangChain: {footprint.langchain_missing() or 'installed'}"
    )
    corpora = footprint.build_corpora(folder, sizes, data)
    result = footprint.measure_footprint(base, corpora)
    return {"footprint": result["runs"], **{k: v for k, v in result.items() if k != "runs"}}


def _scale(args: argparse.Namespace, base: Settings, folder: Path, query_runtime: str) -> dict[str, Any]:
    """The embedded store grown to each size for the settings' model: rates, open, first search, latency, RSS."""
    from embedder import make_embedder
    from evaluation.scale import measure_scale, summary

    sizes = [int(n) for n in args.scale_sizes.split(",") if n.strip()]
    _say(
        f"scale: {base.model.name}, sizes {sizes}, {plural(args.scale_real_chunks, 'chunk')} by the real model"
    )
    embedder = make_embedder(base, purpose="query", runtime=cast(Runtime, query_runtime), cache=False)
    folder.mkdir(parents=True, exist_ok=True)

    def show(point: dict[str, Any]) -> None:
        _say(f"scale: {point['size']:,} chunks: {point}")

    result = measure_scale(
        base,
        sizes,
        folder=folder,
        embedder=embedder,
        filler=True,
        real_step_chunks=args.scale_real_chunks,
        on_point=show,
    )
    result["summary"] = summary(result)
    return {"scale": result, **{f"scale_{k}": v for k, v in result["summary"].items()}}


def _memory(
    args: argparse.Namespace, base: Settings, folders: dict[str, Path], source: Iterator[tuple[str, str]]
) -> dict[str, Any]:
    """Peak memory of ingesting 1x and 4x the corpus (and, without the model, up to 16x)."""
    from evaluation import throughput

    throughput.build_corpus(folders["4x"], args.pdfs * 4, source)
    backend = base.model.backend
    runs = [(backend, "1x"), (backend, "4x")]
    if backend != "fake":  # the pipeline's own memory, without the model's buffers, up to 16x
        throughput.build_corpus(folders["16x"], args.pdfs * 16, source)
        runs += [("fake", "1x"), ("fake", "4x"), ("fake", "16x")]
    memory: dict[str, Any] = {}
    for run_backend, label in runs:
        _say(f"memory: {run_backend} {label}")
        entry = throughput.measure_memory(base, folders[label], base.model.runtime, backend=run_backend)
        memory[f"{run_backend}-{label}"] = {
            "backend": run_backend,
            "runtime": base.model.runtime if run_backend != "fake" else None,
            "pdfs": len(list(folders[label].glob("*.pdf"))),
            **entry,
        }
    peak = max(entry["peak_rss_mb"] for entry in memory.values() if entry["backend"] == backend)
    return {"memory": memory, "peak_rss_mb": peak}


def _record(figures: dict[str, Any], command: str, docs: Path) -> None:
    """Save the headline figures and one result per runtime and part."""
    from evaluation.record import save_result

    summary = {key: value for key, value in figures.items() if not isinstance(value, dict | list)}
    for label, entry in figures.get("cold_start", {}).items():
        summary[f"cold_start_{label}_s"] = entry["process_s"]
        save_result("startup", f"cold-start-{label}", entry, command=command, docs=docs)
    for label, entry in figures.get("footprint", {}).items():
        save_result("footprint", label, entry, command=command, docs=docs)
    if "scale" in figures:
        save_result("scale", "embedded-store", figures["scale"], command=command, docs=docs)
    for runtime, entry in figures.get("latency", {}).items():
        save_result("latency", f"query-latency-{runtime}", entry, command=command, docs=docs)
    for runtime, entry in figures.get("throughput", {}).items():
        save_result("ingest", f"throughput-{runtime}", entry, command=command, docs=docs)
    for label, entry in figures.get("memory", {}).items():
        save_result("ingest", f"memory-{label}", entry, command=command, docs=docs)
    if "reingest" in figures:
        save_result("ingest", "reingest-50-pages", figures["reingest"], command=command, docs=docs)
    for entry in figures.get("accuracy", []):
        key = f"runtime-{entry['runtime']}"
        save_result("accuracy", key, _with_previous_ndcg(entry, docs, key), command=command, docs=docs)
    if all(part in figures for part in ("latency", "throughput", "reingest")):  # only a full run
        save_result("speed", "summary", summary, command=command, docs=docs)


def _with_previous_ndcg(entry: dict[str, Any], docs: Path, key: str) -> dict[str, Any]:
    """A run without ``--ndcg`` keeps the nDCG@10 recorded earlier (and says which run measured it).

    The nDCG of a runtime comes from a full ``eval beir`` run, which ``bench`` does not repeat;
    without this a plain ``make bench`` would erase it from ``docs/results``.
    """
    import json

    from evaluation.record import RESULTS

    if entry.get("ndcg_at_10") is not None:
        return entry
    path = docs / RESULTS / "accuracy" / f"{key}.json"
    if not path.is_file():
        return entry
    previous = json.loads(path.read_text(encoding="utf-8"))
    data = previous.get("data", {})
    if data.get("ndcg_at_10") is None:
        return entry
    merged = dict(entry)
    for name in ("ndcg_at_10", "ndcg_drop", "default_allowed"):
        if name in data:
            merged[name] = data[name]
    merged["ndcg_from"] = data.get("ndcg_from") or (
        f"{previous.get('command', '?')} ({previous.get('environment', {}).get('date', '?')})"
    )
    return merged
