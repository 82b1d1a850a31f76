"""Ingestion benchmark: pipeline throughput against raw model encoding, and peak memory vs corpus size.

In one process, on the same chunks:

* (a) the ingest pipeline end to end (parse + chunk + embed + upsert) in chunks/s, into a fresh
  embedded Qdrant store;
* (b) the model alone: ``SentenceTransformer.encode`` on the chunk texts that (a) stored, under
  the same document instruction and batch size;

and their ratio (target >= 0.85). Rounds alternate (a) and (b); the ratio of the medians is
reported, and the ratio of the best times (less sensitive to other load on the machine).

Then, in a fresh subprocess per size, the peak RSS (``VmHWM``) of ingesting the corpus and a
corpus four times larger: streaming keeps it flat.

The corpus is PDFs rendered (fpdf2, DejaVu Sans from matplotlib) from real text: BEIR SciFact
abstracts when ``../shared`` is present, else the public-domain sample texts of this repository.

Usage::

    .venv/bin/python bench/ingest_bench.py                  # real default model, writes docs/
    .venv/bin/python bench/ingest_bench.py --backend fake --no-save   # quick smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("INSTRUCTOR_SEARCH_SHARED", ROOT.parent / "shared"))
SCIFACT = SHARED / "data" / "beir" / "scifact" / "corpus.jsonl"
SAMPLE_TEXTS = ROOT / "scripts" / "sample_texts"
PAGES_PER_PDF = 3
DOCS_PER_PAGE = 2


# -- corpus ----------------------------------------------------------------------------------------


def _passages() -> Iterator[tuple[str, str]]:
    """(title, text) pairs of real text, as many as needed."""
    if SCIFACT.is_file():
        with SCIFACT.open(encoding="utf-8") as handle:
            for line in handle:
                doc = json.loads(line)
                if len(doc["text"].split()) >= 80:
                    yield doc["title"], doc["text"]
        return
    # Fallback without ../shared: the sample texts, paragraph by paragraph, numbered so that
    # every generated PDF has distinct content.
    paragraphs = [
        p.strip()
        for path in sorted(SAMPLE_TEXTS.glob("*.txt"))
        for p in path.read_text(encoding="utf-8").split("\n\n")
        if len(p.split()) >= 40
    ]
    for round_ in range(1000):
        for index, paragraph in enumerate(paragraphs):
            yield f"Passage {round_}.{index}", paragraph


def build_corpus(folder: Path, pdfs: int, passages: Iterator[tuple[str, str]]) -> list[Path]:
    """Render ``pdfs`` PDFs of PAGES_PER_PDF pages, DOCS_PER_PAGE passages per page."""
    from fpdf import FPDF

    from app.evaluation.pdfs import unicode_font

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(pdfs):
        pdf = FPDF(format="A4")
        pdf.set_auto_page_break(auto=True, margin=15)
        pdf.add_font("DejaVu", fname=str(unicode_font()))
        for _ in range(PAGES_PER_PDF):
            pdf.add_page()
            for _ in range(DOCS_PER_PAGE):
                title, text = next(passages)
                pdf.set_font("DejaVu", size=12)
                pdf.multi_cell(0, 6, title, new_x="LMARGIN", new_y="NEXT")
                pdf.set_font("DejaVu", size=9.5)
                pdf.multi_cell(0, 4.8, text, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(3)
        path = folder / f"doc-{number:03d}.pdf"
        pdf.output(str(path))
        paths.append(path)
    return paths


# -- measurement helpers ---------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _settings(store: Path, backend: str) -> Any:
    from config import load_settings

    return load_settings(data_dir=str(store.parent), qdrant={"path": str(store)}, model={"backend": backend})


def _ingest(folder: Path, store: Path, settings: Any, embedder: Any) -> tuple[Any, float]:
    from ingest import VectorStore, discover, ingest_files, open_client

    sources, failures = discover([folder])
    if failures:
        raise SystemExit(f"corpus problem: {failures}")
    client = open_client(
        settings.model_copy(update={"qdrant": settings.qdrant.model_copy(update={"path": str(store)})})
    )
    try:
        vector_store = VectorStore(client, "bench")
        started = time.perf_counter()
        report = ingest_files(sources, settings=settings, embedder=embedder, store=vector_store)
        seconds = time.perf_counter() - started
        if report.failed:
            raise SystemExit(f"ingest failed: {[f for f in report.files if f.status == 'failed']}")
        records: list[Any] = []
        offset = None
        while True:
            batch, offset = client.scroll("bench", limit=512, offset=offset, with_payload=True)
            records += batch
            if offset is None:
                break
    finally:
        client.close()
    records.sort(key=lambda r: (r.payload["metadata"]["source"], r.payload["metadata"]["chunk_index"]))
    return [r.payload["page_content"] for r in records], seconds


def _raw_encode(embedder: Any, texts: list[str], instruction: str | None, batch_size: int) -> float:
    from embedder.instructions import prompt_text

    started = time.perf_counter()
    model = getattr(embedder, "model", None)
    if model is not None:
        model.encode(
            texts,
            prompt=prompt_text(instruction),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=embedder.normalize,
        )
    else:  # the fake backend has no separate model
        embedder.embed(texts, instruction, batch_size=batch_size)
    return time.perf_counter() - started


def _token_stats(embedder: Any, texts: list[str], instruction: str | None) -> dict[str, float]:
    tokens = [embedder.count_tokens(text) for text in texts]
    return {
        "mean_chunk_tokens": round(statistics.mean(tokens), 1),
        "max_chunk_tokens": max(tokens),
        "instruction_tokens": embedder.instruction_tokens(instruction),
    }


# -- the two modes ---------------------------------------------------------------------------------


def rss_child(folder: Path, backend: str) -> None:
    """Ingest one corpus in this fresh process and print peak memory as JSON."""
    from embedder import make_embedder

    with tempfile.TemporaryDirectory(prefix="ingest-bench-rss-") as tmp:
        settings = _settings(Path(tmp) / "q", backend)
        embedder = make_embedder(settings.model)
        embedder.embed(["warm up"], None)
        loaded_kb = _status_kb("VmRSS")
        texts, seconds = _ingest(folder, Path(tmp) / "q", settings, embedder)
        print(
            json.dumps(
                {
                    "chunks": len(texts),
                    "seconds": round(seconds, 2),
                    "rss_after_model_load_mb": round(loaded_kb / 1024, 1),
                    "peak_rss_mb": round(_status_kb("VmHWM") / 1024, 1),
                }
            )
        )


def _run_child(folder: Path, backend: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(folder), "--backend", backend],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pdfs", type=int, default=10, help="PDFs in the base corpus (3 pages each)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/pipeline rounds")
    parser.add_argument(
        "--backend", default="sentence-transformers", choices=["sentence-transformers", "fake"]
    )
    parser.add_argument("--no-save", action="store_true", help="print only; do not write docs/results")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--rss-child", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(Path(args.rss_child), args.backend)
        return

    import logging

    logging.basicConfig(level=logging.WARNING)
    from embedder import make_embedder
    from ingest.store import expected_record

    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp_name:
        tmp = Path(tmp_name)
        passages = _passages()
        corpus = tmp / "corpus-1x"
        build_corpus(corpus, args.pdfs, passages)
        settings = _settings(tmp / "q0", args.backend)
        embedder = make_embedder(settings.model)
        instruction = expected_record(settings, embedder).instruction_set.document
        batch_size = settings.model.batch_size
        embedder.embed(["warm up the model and its thread pool"] * batch_size, instruction)
        # Warm up the pipeline too (first imports of pypdf, the splitter, qdrant's local mode).
        warm_up = tmp / "corpus-warm-up"
        build_corpus(warm_up, 1, _passages())
        _ingest(warm_up, tmp / "q-warm-up", settings, embedder)

        pipeline_s: list[float] = []
        raw_s: list[float] = []
        texts: list[str] = []
        for round_ in range(args.rounds):
            if texts:
                raw_s.append(_raw_encode(embedder, texts, instruction, batch_size))
            texts, seconds = _ingest(corpus, tmp / f"q{round_}", settings, embedder)
            pipeline_s.append(seconds)
            if round_ == 0:
                raw_s.append(_raw_encode(embedder, texts, instruction, batch_size))
            print(
                f"round {round_ + 1}: pipeline {seconds:.1f} s, raw {raw_s[-1]:.1f} s for {len(texts)} chunks"
            )
        chunks = len(texts)
        pipeline_rate = chunks / statistics.median(pipeline_s)
        raw_rate = chunks / statistics.median(raw_s)
        best_ratio = min(raw_s) / min(pipeline_s)
        data: dict[str, Any] = {
            "model": embedder.model_id,
            "backend": args.backend,
            "corpus": "SciFact abstracts as PDFs" if SCIFACT.is_file() else "sample texts as PDFs",
            "pdfs": args.pdfs,
            "pages": args.pdfs * PAGES_PER_PDF,
            "chunks": chunks,
            "batch_size": batch_size,
            **_token_stats(embedder, texts, instruction),
            "pipeline_chunks_per_s": round(pipeline_rate, 2),
            "raw_encode_chunks_per_s": round(raw_rate, 2),
            "ratio": round(pipeline_rate / raw_rate, 3),
            "ratio_best_of_rounds": round(best_ratio, 3),
            "target_ratio": 0.85,
            "rounds": args.rounds,
            "load_avg_1m_before": load_before,
            "load_avg_1m_after": round(os.getloadavg()[0], 2),
        }
        if not args.no_rss:
            big = tmp / "corpus-4x"
            build_corpus(big, args.pdfs * 4, _passages())
            small = _run_child(corpus, args.backend)
            large = _run_child(big, args.backend)
            data.update(
                {
                    "rss_1x_chunks": small["chunks"],
                    "rss_1x_peak_mb": small["peak_rss_mb"],
                    "rss_4x_chunks": large["chunks"],
                    "rss_4x_peak_mb": large["peak_rss_mb"],
                    "rss_after_model_load_mb": small["rss_after_model_load_mb"],
                    "rss_growth_4x_mb": round(large["peak_rss_mb"] - small["peak_rss_mb"], 1),
                }
            )
    print(json.dumps(data, indent=2))
    if not args.no_save:
        from app.evaluation.record import save_result

        command = "python bench/ingest_bench.py " + " ".join(sys.argv[1:])
        path = save_result(
            "ingest", f"ingest-{args.backend}", data, command=command.strip(), docs=ROOT / "docs"
        )
        print(f"saved {path.relative_to(ROOT)} and rendered docs/benchmarks.md")


if __name__ == "__main__":
    main()
