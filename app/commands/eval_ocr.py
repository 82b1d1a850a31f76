"""``eval ocr``: OCR accuracy, speed, the garbage test, the end-to-end OCR run and every awkward PDF.

Each part prints its figures and, with ``--record``, files them under the OCR section of
``docs/benchmarks.md`` (kind ``ocr``). ``all`` runs every part in that order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from config import Settings

#: The shared data folder (``make eval`` runs from the project root).
SHARED = Path("..") / "shared" / "data"
PARTS = ("accuracy", "speed", "garbage", "e2e", "files")
_SCAN = "scanned-image-only_linn-brochure.pdf"


def register_ocr(inner: Any, add_output_flags: Any) -> None:
    """Add ``eval ocr PART`` to the ``eval`` subcommands."""
    parser = inner.add_parser(
        "ocr", help="OCR: engine accuracy and speed, the garbage test, text vs image-only PDFs, awkward PDFs"
    )
    parser.add_argument("part", choices=[*PARTS, "all"], help="what to measure")
    parser.add_argument("--data", default=str(SHARED), help="shared data folder (default ../shared/data)")
    parser.add_argument(
        "--engines", default="rapidocr,tesseract", help="engines to compare (default rapidocr,tesseract)"
    )
    parser.add_argument(
        "--docs", type=int, default=300, help="NFCorpus documents of the e2e run (default 300)"
    )
    parser.add_argument("--seed", type=int, default=13, help="sampling seed of the e2e subset (default 13)")
    add_output_flags(parser)
    parser.set_defaults(handler=_ocr_handler)


def _progress(stage: str, done: int, total: int) -> None:
    print(f"  {stage}: {done}/{total}", file=sys.stderr, flush=True)


def _accuracy(args: argparse.Namespace, settings: Settings, data: Path) -> dict[str, Any]:
    from evaluation.ocr import measure_engine

    pdf = data / "pdfs" / _SCAN
    truth = pdf.with_suffix(".groundtruth.txt")
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    scores = [
        measure_engine(pdf, truth, engine=name, dpi=settings.ingest.ocr_dpi).to_json() for name in engines
    ]
    return {"scores": scores, "dpi": settings.ingest.ocr_dpi}


def _speed(args: argparse.Namespace, settings: Settings, data: Path) -> dict[str, Any]:
    from evaluation.ocr import measure_speed

    pdfs = sorted((data / "pdfs").glob("scanned-image-only_*.pdf"))
    images = sorted((settings.data_dir / "eval" / f"nfcorpus-ocr{args.docs}" / "pdfs-image").glob("*.pdf"))[
        :20
    ]
    runs = []
    for name in (n.strip() for n in args.engines.split(",") if n.strip()):
        try:
            runs.append(measure_speed([*pdfs, *images], engine=name, dpi=settings.ingest.ocr_dpi))
        except Exception as exc:  # noqa: BLE001 - an engine that is not installed is reported, not fatal
            runs.append(
                {
                    "engine": name,
                    "pages": 0,
                    "seconds": None,
                    "pages_per_second": None,
                    "chars": 0,
                    "error": str(exc),
                }
            )
    where = f"the {len(pdfs)} scanned PDFs of the shared folder"
    if images:
        where += f" and {len(images)} image-only NFCorpus pages of the e2e run"
    return {"runs": runs, "pages_from": where}


def _garbage(args: argparse.Namespace, settings: Settings, data: Path) -> dict[str, Any]:
    from evaluation.quality import garbage_rows

    return {"rows": garbage_rows(data / "pdfs", data / "beir")}


def _e2e(args: argparse.Namespace, settings: Settings, data: Path) -> dict[str, Any]:
    from config import override
    from embedder import make_embedder
    from evaluation.beir import load_beir
    from evaluation.runner import InstructionChoice, run_beir
    from evaluation.subsets import write_subset

    folder = settings.data_dir / "eval" / f"nfcorpus-ocr{args.docs}"
    subset = write_subset(data / "beir" / "nfcorpus", folder, docs=args.docs, seed=args.seed)
    run_settings = override(settings, **{"instructions.domain": "medicine"})
    dataset = load_beir(folder, "test")
    embedder = make_embedder(run_settings)
    out: dict[str, Any] = {"subset": subset}
    for name, corpus_format in (("text", "pdf"), ("image", "pdf-image")):
        print(f"e2e: {corpus_format}", file=sys.stderr, flush=True)
        result = run_beir(
            dataset,
            settings=run_settings,
            embedder=embedder,
            instructions=InstructionChoice.parse("default", domain="medicine"),
            corpus_format="pdf" if corpus_format == "pdf" else "pdf-image",
            pdf_folder=folder / ("pdfs" if corpus_format == "pdf" else "pdfs-image"),
            on_progress=_progress,
        ).to_json()
        build = result["extra"]["build"]
        out[name] = {
            "ndcg_at_10": result["ndcg_at_10"],
            "recall_at_100": result["recall_at_100"],
            "pages": build.get("pages"),
            "ocr_pages": build.get("ocr_pages"),
            "failed_files": build.get("failed_files"),
            "ingest_seconds": result["ingest_seconds"],
            "chunks": result["chunks"],
        }
    return out


def _files(args: argparse.Namespace, settings: Settings, data: Path) -> dict[str, Any]:
    from embedder import make_embedder
    from evaluation.pdf_outcomes import measure_outcomes

    return measure_outcomes(
        data / "pdfs", settings=settings, embedder=make_embedder(settings), on_progress=_progress
    )


_RUNNERS = {"accuracy": _accuracy, "speed": _speed, "garbage": _garbage, "e2e": _e2e, "files": _files}


def _ocr_handler(args: argparse.Namespace, settings: Settings) -> int:
    from app.cli import print_json
    from evaluation.record import save_result

    data = Path(args.data)
    if not (data / "pdfs").is_dir():
        print(f"error: shared data folder {str(data)!r} has no pdfs/; pass --data DIR", file=sys.stderr)
        return 2
    parts = PARTS if args.part == "all" else (args.part,)
    results = {}
    for part in parts:
        print(f"ocr {part}", file=sys.stderr, flush=True)
        results[part] = _RUNNERS[part](args, settings, data)
        if args.record:
            save_result("ocr", part, results[part], command=args.command_line, docs=Path(args.docs_dir))
    print_json(results) if args.json else print_json({part: "done" for part in results})
    return 0
