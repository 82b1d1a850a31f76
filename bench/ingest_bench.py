"""Ingestion benchmark: pipeline throughput against raw model encoding, and peak memory vs corpus size.

In one process, on the same chunks:

* (a) the ingest pipeline end to end (parse + chunk + embed + upsert) in chunks/s, into a fresh
  embedded Qdrant store;
* (b) the model alone: ``SentenceTransformer.encode`` on the chunk texts that (a) stored, under
  the same document instruction and batch size;

and their ratio (target >= 0.85). Each round runs (a) then (b); the ratio of the median wall
times is reported, with the ratio of the best times and of the process CPU times (both less
sensitive to other load on the machine).

Then, in a fresh subprocess per size, the peak RSS (``VmHWM``) of ingesting the corpus and a
corpus four times larger with the model, and, for the pipeline's own memory without the
model's inference buffers, 1x/4x/16x with the fake backend: streaming keeps it flat.

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


def _ingest(folder: Path, store: Path, settings: Any, embedder: Any) -> tuple[list[str], float]:
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


def _raw_encode(embedder: Any, texts: list[str], instruction: str | None, batch_size: int) -> None:
    from embedder.instructions import prompt_text

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


def _padding(lengths: list[int], batch_size: int, window: int | None = None) -> float:
    """Padding tokens per real token when batches are padded to their longest text.

    ``window``: texts are taken ``window`` at a time and sorted by length before batching (as
    the pipeline does with ``model.sort_window`` batches); ``None`` sorts all of them (as
    ``encode`` does within one call).
    """
    window = window or len(lengths)
    padded = 0
    for first in range(0, len(lengths), window):
        part = sorted(lengths[first : first + window])
        padded += sum(
            max(part[start : start + batch_size]) * len(part[start : start + batch_size])
            for start in range(0, len(part), batch_size)
        )
    return padded / sum(lengths) - 1


def _timed(fn: Any, *args: Any) -> tuple[Any, float, float]:
    """Run ``fn``; returns its result, wall seconds and process CPU seconds (all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def measure_throughput(tmp: Path, corpus: Path, backend: str, rounds: int) -> dict[str, Any]:
    """(a) pipeline and (b) raw encode on the same chunks, in this process, alternating."""
    from embedder import make_embedder
    from ingest.store import expected_record

    settings = _settings(tmp / "q-throughput", backend)
    embedder = make_embedder(settings.model)
    instruction = expected_record(settings, embedder).instruction_set.document
    batch_size = settings.model.batch_size
    embedder.embed(["warm up the model and its thread pool"] * batch_size, instruction)
    # Warm up the pipeline too (first imports of pypdf, the splitter, qdrant's local mode).
    warm_up = tmp / "corpus-warm-up"
    build_corpus(warm_up, 1, _passages())
    _ingest(warm_up, tmp / "q-warm-up", settings, embedder)

    pipeline_wall: list[float] = []
    pipeline_cpu: list[float] = []
    raw_wall: list[float] = []
    raw_cpu: list[float] = []
    texts: list[str] = []
    for round_ in range(rounds):
        (texts, _), wall, cpu = _timed(_ingest, corpus, tmp / f"q{round_}", settings, embedder)
        pipeline_wall.append(wall)
        pipeline_cpu.append(cpu)
        _, wall, cpu = _timed(_raw_encode, embedder, texts, instruction, batch_size)
        raw_wall.append(wall)
        raw_cpu.append(cpu)
        print(
            f"round {round_ + 1}: pipeline {pipeline_wall[-1]:.1f} s ({pipeline_cpu[-1]:.1f} s CPU), "
            f"raw encode {raw_wall[-1]:.1f} s ({raw_cpu[-1]:.1f} s CPU) for {len(texts)} chunks",
            flush=True,
        )
    chunks = len(texts)
    median = statistics.median
    # Tokens each text occupies in a forward pass (instruction and special tokens included), in
    # the order the pipeline queues them (files in order, chunks in order).
    sort_window = int(getattr(settings.model, "sort_window", 1))
    extra = embedder.instruction_tokens(instruction) + 2
    lengths = [embedder.count_tokens(text) + extra for text in texts]
    return {
        "model": embedder.model_id,
        "chunks": chunks,
        "mean_chunk_tokens": round(statistics.mean(lengths) - extra, 1),
        "sort_window": sort_window,
        "padding_pipeline": round(_padding(lengths, batch_size, batch_size * sort_window), 3),
        "padding_raw_encode": round(_padding(lengths, batch_size), 3),
        "instruction_tokens": embedder.instruction_tokens(instruction),
        "batch_size": batch_size,
        "pipeline_chunks_per_s": round(chunks / median(pipeline_wall), 2),
        "raw_encode_chunks_per_s": round(chunks / median(raw_wall), 2),
        "ratio": round(median(raw_wall) / median(pipeline_wall), 3),
        "ratio_best_of_rounds": round(min(raw_wall) / min(pipeline_wall), 3),
        "ratio_cpu_time": round(median(raw_cpu) / median(pipeline_cpu), 3),
        "target_ratio": 0.85,
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pdfs", type=int, default=10, help="PDFs in the base corpus (3 pages each)")
    parser.add_argument("--rounds", type=int, default=3, help="pipeline/raw-encode rounds")
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
    corpus_name = "SciFact abstracts" if SCIFACT.is_file() else "sample texts"
    entries: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp_name:
        tmp = Path(tmp_name)
        passages = _passages()  # consumed in order: every corpus gets different passages
        sizes = {"1x": args.pdfs, "4x": args.pdfs * 4, "16x": args.pdfs * 16}
        corpora = {name: tmp / f"corpus-{name}" for name in sizes}
        build_corpus(corpora["1x"], sizes["1x"], passages)
        load_before = round(os.getloadavg()[0], 2)
        throughput = measure_throughput(tmp, corpora["1x"], args.backend, args.rounds)
        throughput |= {"load_avg_1m_before": load_before, "load_avg_1m_after": round(os.getloadavg()[0], 2)}
        entries[f"throughput-{args.backend}"] = {
            "corpus": f"{corpus_name}, {sizes['1x']} PDFs, {sizes['1x'] * PAGES_PER_PDF} pages",
            **throughput,
        }
        if not args.no_rss:
            build_corpus(corpora["4x"], sizes["4x"], passages)
            runs = [(args.backend, "1x"), (args.backend, "4x")]
            if args.backend != "fake":
                # The pipeline's own memory, without the model's inference buffers, up to 16x.
                build_corpus(corpora["16x"], sizes["16x"], passages)
                runs += [("fake", "1x"), ("fake", "4x"), ("fake", "16x")]
            for backend, size in runs:
                child = _run_child(corpora[size], backend)
                print(f"peak RSS {backend} {size}: {child}", flush=True)
                entries[f"memory-{backend}-{size}"] = {
                    "corpus": f"{corpus_name}, {sizes[size]} PDFs, {sizes[size] * PAGES_PER_PDF} pages",
                    "backend": backend,
                    "chunks": child["chunks"],
                    "peak_rss_mb": child["peak_rss_mb"],
                    "rss_after_model_load_mb": child["rss_after_model_load_mb"],
                    "pipeline_chunks_per_s": round(child["chunks"] / child["seconds"], 2),
                }
    print(json.dumps(entries, indent=2))
    if not args.no_save:
        from app.evaluation.record import save_result

        command = ("python bench/ingest_bench.py " + " ".join(sys.argv[1:])).strip()
        for key, data in entries.items():
            save_result("ingest", key, data, command=command, docs=ROOT / "docs")
        print("saved docs/results/ingest/*.json and rendered docs/benchmarks.md")


if __name__ == "__main__":
    main()
