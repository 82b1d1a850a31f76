"""The ``eval`` subcommands: BEIR retrieval (JSON or PDF corpus) and STS, through the real product path."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.commands.eval_ocr import register_ocr
from config import Settings, override
from retrieval.modes import MODES

#: The standard suite of `make eval`, on the shared data folder.
SHARED = Path("..") / "shared" / "data"


def register(subparsers: Any) -> None:
    """Add ``eval beir``, ``eval beir-pdf``, ``eval sts``, ``eval tune`` and ``eval all``."""
    parser = subparsers.add_parser("eval", help="measure quality on real benchmarks")
    inner = parser.add_subparsers(dest="eval_command", metavar="BENCHMARK", required=True)

    for name, corpus_format, help_text in (
        ("beir", "json", "BEIR retrieval: ingest the corpus, search every query, score with pytrec_eval"),
        (
            "beir-pdf",
            "pdf",
            "the same, with every document rendered to a PDF and ingested through the PDF path",
        ),
        (
            "beir-pdf-image",
            "pdf-image",
            "the same PDFs as page images without a text layer, read through OCR (slow)",
        ),
    ):
        beir = inner.add_parser(name, help=help_text)
        beir.set_defaults(handler=_beir_handler, corpus_format=corpus_format)
        _add_beir_arguments(beir)
        _add_output_flags(beir)

    sts = inner.add_parser(
        "sts", help="STS-benchmark Spearman correlation, with and without an STS instruction"
    )
    sts.add_argument("file", metavar="FILE", help="stsbenchmark/sts-test.csv")
    _add_output_flags(sts)
    sts.set_defaults(handler=_sts_handler)

    tune = inner.add_parser(
        "tune",
        help="score a grid of search settings (modes, fusion, RRF k and weights, keyword weights) on a "
        "train split, against one kept collection",
    )
    tune.add_argument("folder", metavar="DIR", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    tune.add_argument("--split", default="train", help="qrels split to tune on (default: train)")
    tune.add_argument("--instructions", default="none", help="as for eval beir (default: none)")
    tune.add_argument("--store", metavar="DIR", required=True, help="the kept collection's folder")
    tune.add_argument(
        "--max-queries", type=int, default=None, help="score a reproducible sample of this many queries"
    )
    tune.add_argument(
        "--modes",
        default=None,
        metavar="MODE[,MODE]",
        help="only the grid's configurations of these modes (default: the whole grid)",
    )
    _add_output_flags(tune)
    tune.set_defaults(handler=_tune_handler)

    register_ocr(inner, _add_output_flags)

    suite = inner.add_parser("all", help="the standard suite on ../shared/data (what `make eval` runs)")
    suite.add_argument("--data", default=str(SHARED), help="shared data folder (default ../shared/data)")
    _add_output_flags(suite)
    suite.set_defaults(handler=_all_handler)


def _add_beir_arguments(beir: argparse.ArgumentParser) -> None:
    """The options of ``eval beir`` and ``eval beir-pdf``."""
    beir.add_argument("folder", metavar="DIR", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    beir.add_argument("--split", default="test", help="qrels split (default: test)")
    beir.add_argument(
        "--instructions",
        default="default",
        help="default | none | 'QUERY INSTRUCTION::DOCUMENT INSTRUCTION' (default: default)",
    )
    beir.add_argument("--domain", default=None, help="domain of the default instructions")
    beir.add_argument("--top-k", type=int, default=100, help="documents per query (default 100)")
    beir.add_argument("--store", metavar="DIR", help="keep the embedded collection here and reuse it")
    beir.add_argument(
        "--mode",
        choices=list(MODES),
        default=None,
        help="retrieval mode of the searches (default: the search.mode setting)",
    )
    beir.add_argument(
        "--fusion",
        choices=["rrf", "dbsf"],
        default=None,
        help="fusion of the fused modes (default: setting)",
    )
    beir.add_argument(
        "--keyword-weights",
        metavar="W0,W1",
        default=None,
        help="re-weight the stored keyword vectors to W0*chunk + W1*keywords before searching",
    )
    beir.add_argument(
        "--keep-identical-ids", action="store_true", help="do not drop hits whose id is the query id"
    )


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--label",
        metavar="NAME",
        default=None,
        help="with --record: file the run under the fine-tuning comparison as model NAME "
        "(docs/results/training), not under the base model's tables",
    )
    parser.add_argument(
        "--record", action="store_true", help="save to docs/results and re-render docs/benchmarks.md"
    )
    parser.add_argument("--docs-dir", default="docs", help="docs folder for --record (default: docs)")


def _print(result: dict[str, Any], as_json: bool) -> None:
    from app.cli import print_json

    if as_json:
        print_json(result)
        return
    for key, value in result.items():
        if not isinstance(value, dict):
            print(f"{key:>22}: {value}")


def run_beir_command(
    settings: Settings,
    folder: str,
    *,
    split: str = "test",
    instructions: str = "default",
    corpus_format: str = "json",
    top_k: int = 100,
    store: str | None = None,
    ignore_identical_ids: bool = True,
    mode: str | None = None,
    keyword_weights: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Load, ingest, search and score one BEIR split; returns the JSON-ready result."""
    # The evaluation modules (qdrant-client, pytrec_eval, the model) load here, not at the top:
    # every CLI start imports this module to register ``eval``.
    from embedder import make_embedder
    from evaluation.beir import load_beir
    from evaluation.runner import InstructionChoice, run_beir

    dataset = load_beir(folder, split)
    choice = InstructionChoice.parse(instructions, domain=settings.instructions.domain)
    embedder = make_embedder(settings)  # cached: a rerun on the same corpus encodes nothing

    def progress(stage: str, done: int, total: int) -> None:
        print(f"  {stage}: {done}/{total}", file=sys.stderr, flush=True)

    result = run_beir(
        dataset,
        settings=settings,
        embedder=embedder,
        instructions=choice,
        corpus_format="pdf"
        if corpus_format == "pdf"
        else "pdf-image"
        if corpus_format == "pdf-image"
        else "json",
        top_k=top_k,
        store_dir=Path(store) if store else None,
        # text and image-only PDFs of a document share its file name: one folder per format
        pdf_folder=settings.data_dir
        / "eval"
        / dataset.name
        / ("pdfs-image" if corpus_format == "pdf-image" else "pdfs"),
        ignore_identical_ids=ignore_identical_ids,
        on_progress=progress,
        mode=mode,
        keyword_weights=keyword_weights,
    )
    return result.to_json()


def _slug(text: str) -> str:
    """``text`` as part of a result key: letters, digits, ``.`` and ``=`` kept, the rest ``-``."""
    return "".join(ch if ch.isalnum() or ch in ".=" else "-" for ch in text).strip("-")


def _weights(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    from evaluation.errors import EvaluationError

    try:
        first, second = (float(part) for part in value.split(","))
    except ValueError:
        raise EvaluationError(
            f"--keyword-weights {value!r} is not understood; give two numbers, e.g. 0.7,0.3"
        ) from None
    return first, second


def _beir_handler(args: argparse.Namespace, settings: Settings) -> int:
    from evaluation.record import save_result  # the evaluation stack: not for registering the command

    if args.fusion:
        settings = override(settings, **{"search.fusion": args.fusion})
    result = run_beir_command(
        settings,
        args.folder,
        split=args.split,
        instructions=args.instructions,
        corpus_format=args.corpus_format,
        top_k=args.top_k,
        store=args.store,
        ignore_identical_ids=not args.keep_identical_ids,
        mode=args.mode,
        keyword_weights=_weights(args.keyword_weights),
    )
    if args.record and args.label:
        key = f"{_slug(args.label)}-{result['dataset']}-{result['split']}-{result.get('mode', 'dense')}-{result['instructions']}"
        data = {**result, "label": args.label}
        save_result("training", key, data, command=args.command_line, docs=Path(args.docs_dir))
    elif args.record:
        key = f"{result['dataset']}-{result['split']}-{result['corpus_format']}-{result['instructions']}"
        if settings.instructions.domain and result["instructions"] == "default":
            key += f"-{settings.instructions.domain.lower()}"
        extra_representations = set(result.get("representations", {})) - {"sparse"}  # sparse: default, cheap
        if result.get("mode", "dense") != "dense" or extra_representations:
            # a dense run on a collection with costlier representations is a different build
            key += f"-{result['mode'].replace('+', '-')}"
            if result.get("fusion") and result["fusion"] != "rrf":
                key += "-" + _slug(result["fusion"])
        keywords = result.get("representations", {}).get("keywords")
        if keywords and "keywords" in result.get("mode", ""):
            key += f"-kw{keywords['chunk_weight']:g}-{keywords['keyword_weight']:g}"
        save_result("beir", key, result, command=args.command_line, docs=Path(args.docs_dir))
    _print(result, args.json)
    return 0


def _tune_handler(args: argparse.Namespace, settings: Settings) -> int:
    from embedder import make_embedder
    from evaluation.beir import load_beir
    from evaluation.record import save_result
    from evaluation.runner import InstructionChoice
    from evaluation.tuning import TuneConfig, run_tuning, sample_queries

    dataset = sample_queries(load_beir(args.folder, args.split), args.max_queries)
    # Cached queries too: every configuration searches the same queries.
    embedder = make_embedder(settings, cache=True)

    def report(config: TuneConfig, row: dict[str, Any]) -> None:
        print(
            f"  {config.label():<40} nDCG@10 {row['ndcg_at_10']:.4f}  R@100 {row['recall_at_100']:.4f}",
            file=sys.stderr,
            flush=True,
        )
        if args.record:
            slug = _slug(config.label())
            data = {"dataset": dataset.name, "split": dataset.split, **row}
            save_result(
                "tuning",
                f"{dataset.name}-{dataset.split}-{slug}",
                data,
                command=args.command_line,
                docs=Path(args.docs_dir),
            )

    rows = run_tuning(
        dataset,
        settings=settings,
        embedder=embedder,
        instructions=InstructionChoice.parse(args.instructions, domain=settings.instructions.domain),
        store_dir=Path(args.store),
        on_result=report,
        modes=[m.strip() for m in args.modes.split(",") if m.strip()] if args.modes else None,
        on_progress=lambda stage, done, total: print(
            f"  {stage}: {done}/{total}", file=sys.stderr, flush=True
        ),
    )
    best = max(rows, key=lambda row: row["ndcg_at_10"])
    _print({"dataset": dataset.name, "split": dataset.split, "best": best["config"], "rows": rows}, args.json)
    if not args.json:
        print(f"best: {best['config']} (nDCG@10 {best['ndcg_at_10']:.4f})")
    return 0


def run_sts_command(settings: Settings, file: str) -> dict[str, Any]:
    """Spearman correlation on an STS file, without and with the STS instruction."""
    from embedder import InstructionSet, make_embedder
    from evaluation.sts import load_sts_benchmark, sts_spearman

    pairs = load_sts_benchmark(file)
    embedder = make_embedder(settings.model)
    instruction = InstructionSet.symmetric("sts").query
    return {
        "file": str(file),
        "pairs": len(pairs),
        "model": embedder.model_id,
        "spearman_no_instruction": round(sts_spearman(embedder, pairs), 4),
        "spearman_sts_instruction": round(sts_spearman(embedder, pairs, instruction=instruction), 4),
        "sts_instruction": instruction,
    }


def _sts_handler(args: argparse.Namespace, settings: Settings) -> int:
    from evaluation.record import save_result  # the evaluation stack: not for registering the command

    result = run_sts_command(settings, args.file)
    if args.record and args.label:
        data = {**result, "label": args.label}
        save_result(
            "training",
            f"{_slug(args.label)}-sts-{Path(args.file).stem}",
            data,
            command=args.command_line,
            docs=Path(args.docs_dir),
        )
    elif args.record:
        save_result("sts", Path(args.file).stem, result, command=args.command_line, docs=Path(args.docs_dir))
    _print(result, args.json)
    return 0


def _all_handler(args: argparse.Namespace, settings: Settings) -> int:
    from evaluation.record import save_result  # the evaluation stack: not for registering the command

    data = Path(args.data)
    if not data.is_dir():
        print(f"error: shared data folder {str(data)!r} not found; pass --data DIR", file=sys.stderr)
        return 2
    docs = Path(args.docs_dir)
    command = args.command_line
    results: list[dict[str, Any]] = []
    sts_file = data / "sts" / "stsbenchmark" / "sts-test.csv"
    sts = run_sts_command(settings, str(sts_file))
    save_result("sts", "sts-test", sts, command=command, docs=docs)
    results.append(sts)
    domains = {"scifact": "science", "nfcorpus": "medicine"}
    for name, domain in domains.items():
        folder = str(data / "beir" / name)
        domain_settings = override(settings, **{"instructions.domain": domain})
        # (instructions, corpus format, settings, mode): the MTEB reproduction (dense, no
        # instruction), our instructions, the default hybrid mode, and the PDF path.
        runs: list[tuple[str, str, Settings, str]] = [
            ("none", "json", settings, "dense"),
            ("none", "json", settings, "hybrid"),
            ("default", "json", settings, "dense"),
            ("default", "json", domain_settings, "dense"),
        ]
        if name == "nfcorpus":
            runs.append(("none", "pdf", settings, "dense"))
        for instructions, corpus_format, run_settings, mode in runs:
            print(
                f"{name}: {corpus_format}, instructions={instructions} {run_settings.instructions.domain}, {mode}",
                file=sys.stderr,
            )
            # One kept collection per build (dataset, format, instructions): the dense and hybrid
            # runs of the same build search it without ingesting the corpus twice.
            build = f"{corpus_format}-{instructions}-{run_settings.instructions.domain or 'general'}"
            result = run_beir_command(
                run_settings,
                folder,
                instructions=instructions,
                corpus_format=corpus_format,
                mode=mode,
                store=str(settings.data_dir / "eval" / name / f"store-{build}"),
            )
            key = f"{name}-test-{corpus_format}-{instructions}"
            if run_settings.instructions.domain and instructions == "default":
                key += f"-{run_settings.instructions.domain}"
            if mode != "dense":
                key += f"-{mode}"
            save_result("beir", key, result, command=command, docs=docs)
            results.append(result)
    _print({"runs": len(results)}, args.json)
    return 0
