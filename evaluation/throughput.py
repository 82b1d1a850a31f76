"""Ingest speed: pipeline against raw encoding, re-ingest of an edited PDF, compute efficiency, memory.

All measured in this process (memory in fresh subprocesses), on PDFs rendered
(fpdf2, DejaVu Sans from matplotlib) from real text: BEIR SciFact abstracts when the shared data
folder is present, else the public-domain sample texts of this repository.

* **Throughput** per runtime: (a) :func:`ingest.ingest_files` end to end (read, extract, chunk,
  embed, upsert) into a fresh embedded store, and (b) ``SentenceTransformer.encode`` alone on
  the chunk texts (a) stored, same instruction and batch size. ``ratio`` is raw time over
  pipeline time (medians of the rounds); the CPU-time ratio is less sensitive to other load.
  The embedding cache is off here: both sides encode everything.
* **Padding**: the share of the token positions computed in the pipeline's forward batches that
  were padding (measured by the embedder), and the instruction's share of the real tokens.
* **Efficiency**: encode GFLOP/s (FLOPs of the transformer's matmuls and attention on the
  padded batches, from the model's config) against a plain fp32 ``torch.mm`` peak measured in
  the same run.
* **Re-ingest**: a 50-page PDF ingested with the embedding cache, one page edited, ingested
  again; time of the second ingest over the first.
* **Memory**: peak RSS of a fresh process that ingests a 1x and a 4x corpus (:func:`child` runs
  it; :mod:`evaluation.footprint` compares it with the LangChain stack and times the cold starts).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config import override

if TYPE_CHECKING:
    from config import Settings
    from embedder import Embedder
    from ingest.report import IngestReport

REPO = Path(__file__).resolve().parents[1]
SAMPLE_TEXTS = REPO / "scripts" / "sample_texts"
PAGES_PER_PDF = 3
DOCS_PER_PAGE = 2
REINGEST_PAGES = 50


# -- corpus ------------------------------------------------------------------------------------------


def passages(data: Path | None) -> Iterator[tuple[str, str]]:
    """(title, text) pairs of real text, as many as needed, never repeating.

    Args:
        data: the shared data folder (``../shared/data``); SciFact abstracts of at least 80 words
            are used when it holds them, else the sample texts, numbered so that each is distinct.
    """
    scifact = data / "beir" / "scifact" / "corpus.jsonl" if data is not None else None
    if scifact is not None and scifact.is_file():
        with scifact.open(encoding="utf-8") as handle:
            for line in handle:
                doc = json.loads(line)
                if len(doc["text"].split()) >= 80:
                    yield doc["title"], doc["text"]
        return
    paragraphs = [
        p.strip()
        for path in sorted(SAMPLE_TEXTS.glob("*.txt"))
        for p in path.read_text(encoding="utf-8").split("\n\n")
        if len(p.split()) >= 40
    ]
    for round_ in range(1000):
        for index, paragraph in enumerate(paragraphs):
            yield f"Passage {round_}.{index}", paragraph


def corpus_name(data: Path | None) -> str:
    """What :func:`passages` reads."""
    scifact = data / "beir" / "scifact" / "corpus.jsonl" if data is not None else None
    return "SciFact abstracts" if scifact is not None and scifact.is_file() else "sample texts"


def render_pdf(path: Path, pages: Sequence[Sequence[tuple[str, str]]]) -> Path:
    """Write a PDF with one page per item of ``pages`` (each a list of (title, text) passages)."""
    from fpdf import FPDF

    from evaluation.pdfs import unicode_font

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("DejaVu", fname=str(unicode_font()))
    for page in pages:
        pdf.add_page()
        for title, text in page:
            pdf.set_font("DejaVu", size=12)
            pdf.multi_cell(0, 6, title, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("DejaVu", size=9.5)
            pdf.multi_cell(0, 4.8, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def build_corpus(folder: Path, pdfs: int, source: Iterator[tuple[str, str]]) -> list[Path]:
    """Render ``pdfs`` PDFs of :data:`PAGES_PER_PDF` pages, :data:`DOCS_PER_PAGE` passages a page."""
    return [
        render_pdf(
            folder / f"doc-{number:03d}.pdf",
            [[next(source) for _ in range(DOCS_PER_PAGE)] for _ in range(PAGES_PER_PDF)],
        )
        for number in range(pdfs)
    ]


# -- helpers -------------------------------------------------------------------------------------------


def bench_settings(base: Settings, folder: Path, *, runtime: str | None = None) -> Settings:
    """``base`` with the data folder and an embedded store in ``folder`` (and a runtime)."""
    model = {} if runtime is None else {"runtime": runtime, "query_runtime": runtime}
    return override(
        base,
        data_dir=folder,
        model=model,
        qdrant={"path": str(folder / "qdrant"), "url": None, "api_key": None},
    )


def ingest_folder(
    paths: Sequence[Path], settings: Settings, embedder: Embedder
) -> tuple[IngestReport, list[str]]:
    """Ingest files into the ``bench`` collection of the settings' store; returns the report and stored texts."""
    from evaluation.errors import EvaluationError
    from ingest import discover, ingest_files
    from store.client import open_client
    from store.core import store_for
    from store.payload import CHUNK_INDEX, CONTENT_KEY, SOURCE, metadata_of
    from store.points import scroll_pages

    sources, results = discover(list(paths))
    failures = [result for result in results if result.status == "failed"]  # hidden files: "skipped"
    if failures:
        raise EvaluationError(f"benchmark corpus problem: {failures}")
    client = open_client(settings)
    try:
        store = store_for(settings, "bench", client=client)
        report = ingest_files(sources, settings=settings, embedder=embedder, store=store)
        if report.failed:
            raise EvaluationError(f"ingest failed: {[f for f in report.files if f.status == 'failed']}")
        records = [r for page in scroll_pages(client, "bench", payload=True, limit=512) for r in page]
    finally:
        client.close()
    records.sort(key=lambda r: (metadata_of(r.payload)[SOURCE], metadata_of(r.payload)[CHUNK_INDEX]))
    return report, [r.payload[CONTENT_KEY] for r in records]


def raw_encode(embedder: Embedder, texts: list[str], instruction: str | None, batch_size: int) -> None:
    """The model alone: ``SentenceTransformer.encode`` (the fake backend: its ``embed``)."""
    from embedder.base import unwrap
    from embedder.instructions import prompt_text

    inner = unwrap(embedder)
    model = getattr(inner, "model", None)
    if model is not None:
        model.encode(
            texts,
            prompt=prompt_text(instruction),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=inner.normalize,
        )
    else:
        inner.embed(texts, instruction, batch_size=batch_size)


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    """Run ``fn``; returns its result, wall seconds and process CPU seconds (all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def token_lengths(embedder: Embedder, texts: Sequence[str], instruction: str | None) -> list[int]:
    """Tokens each text occupies in a forward pass (instruction and special tokens included)."""
    extra = embedder.instruction_tokens(instruction) + 2
    return [min(embedder.max_seq_length, embedder.count_tokens(text) + extra) for text in texts]


def padding_share(lengths: Sequence[int], batch_size: int) -> float:
    """Share of padding among the positions computed when batches are padded to their longest."""
    real = sum(lengths)
    padded = sum(
        max(lengths[start : start + batch_size]) * len(lengths[start : start + batch_size])
        for start in range(0, len(lengths), batch_size)
    )
    return 1.0 - real / padded if padded else 0.0


def encode_flops(embedder: Embedder, lengths: Sequence[int], batch_size: int) -> float | None:
    """FLOPs of a BERT-style encoder on length-sorted, padded batches (matmuls and attention).

    Per layer and token: Q, K, V and output projections ``8 d^2``, feed-forward ``4 d f``; per
    layer and batch of padded length ``s``: attention scores and weighted sum ``4 s^2 d``.
    ``None`` when the model's config does not name these sizes.
    """
    from embedder.base import unwrap

    model = getattr(unwrap(embedder), "model", None)
    config = getattr(getattr(model[0], "model", None), "config", None) if model is not None else None
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "num_layers", None)
    ff = getattr(config, "intermediate_size", None) or getattr(config, "d_ff", None)
    if not (hidden and layers and ff):
        return None
    ordered = sorted(lengths, reverse=True)
    total = 0.0
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        s, n = max(batch), len(batch)
        total += layers * (n * s * (8 * hidden * hidden + 4 * hidden * ff) + n * 4 * s * s * hidden)
    return total


def matmul_peak_gflops(repeats: int = 5, size: int = 1024) -> float:
    """fp32 ``torch.mm`` GFLOP/s on this CPU (median of ``repeats``; all of torch's threads)."""
    import torch

    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(5):
            torch.mm(a, b)
        rates.append(5 * 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return statistics.median(rates)


# -- throughput --------------------------------------------------------------------------------------


def measure_throughput(
    base: Settings, tmp: Path, corpus: Sequence[Path], runtime: str, rounds: int
) -> dict[str, Any]:
    """Pipeline and raw encode on the same chunks, alternating, for one runtime.

    Args:
        base: the settings (model, batch size, chunking, instructions).
        tmp: a scratch folder.
        corpus: the PDFs.
        runtime: ``torch``, ``onnx`` or ``onnx-int8``.
        rounds: pipeline/raw rounds; figures are medians.

    Returns:
        ``pipeline_chunks_per_s``, ``raw_encode_chunks_per_s``, ``ratio``, padding, instruction
        tokens and GFLOP/s figures.
    """
    from embedder import make_embedder
    from embedder.base import unwrap
    from store.record import expected_record

    settings = bench_settings(base, tmp / f"warm-{runtime}", runtime=runtime)
    embedder = make_embedder(settings, cache=False)
    instruction = expected_record(settings, embedder).instruction_set.document
    batch_size = settings.model.batch_size
    embedder.embed(["warm up the model and its thread pool"] * batch_size, instruction)
    ingest_folder(corpus[:1], settings, embedder)  # first imports of pypdf, the splitter, qdrant
    stats = unwrap(embedder).stats
    pipeline_wall, pipeline_cpu, raw_wall, raw_cpu = [], [], [], []
    texts: list[str] = []
    padding, instruction_share = [], []
    for round_ in range(rounds):
        run_settings = bench_settings(base, tmp / f"round-{runtime}-{round_}", runtime=runtime)
        before = (stats.tokens, stats.padded_tokens, stats.instruction_tokens)
        (_, texts), wall, cpu = timed(ingest_folder, corpus, run_settings, embedder)
        tokens = stats.tokens - before[0]
        padded = stats.padded_tokens - before[1]
        padding.append(1 - tokens / padded if padded else 0.0)
        instruction_share.append((stats.instruction_tokens - before[2]) / tokens if tokens else 0.0)
        pipeline_wall.append(wall)
        pipeline_cpu.append(cpu)
        _, wall, cpu = timed(raw_encode, embedder, texts, instruction, batch_size)
        raw_wall.append(wall)
        raw_cpu.append(cpu)
    chunks = len(texts)
    lengths = token_lengths(embedder, texts, instruction)
    median = statistics.median
    flops = encode_flops(embedder, lengths, batch_size)
    figures: dict[str, Any] = {
        "runtime": runtime,
        "chunks": chunks,
        "batch_size": batch_size,
        "mean_chunk_tokens": round(statistics.mean(lengths), 1),
        "pipeline_chunks_per_s": round(chunks / median(pipeline_wall), 2),
        "raw_encode_chunks_per_s": round(chunks / median(raw_wall), 2),
        "ratio": round(median(raw_wall) / median(pipeline_wall), 3),
        "ratio_cpu_time": round(median(raw_cpu) / median(pipeline_cpu), 3),
        "padding_pipeline": round(median(padding), 4),
        "padding_unsorted": round(padding_share(lengths, batch_size), 4),
        "instruction_tokens": embedder.instruction_tokens(instruction),
        "instruction_token_share": round(median(instruction_share), 4),
        "rounds": rounds,
    }
    if flops is not None:
        figures["encode_gflops"] = round(flops / median(raw_wall) / 1e9, 2)
    return figures


# -- re-ingest of an edited PDF ----------------------------------------------------------------------


def measure_reingest(
    base: Settings, tmp: Path, data: Path | None, runtime: str, repeats: int
) -> dict[str, Any]:
    """First ingest of a 50-page PDF against re-ingesting it after one page was edited.

    Each repeat starts from an empty store and an empty embedding cache. The cache and the
    chunk-level reuse are what make the second ingest cheap: only the edited page's chunks are
    encoded.
    """
    from embedder import make_embedder
    from embedder.base import unwrap

    source = passages(data)
    pages = [[next(source)] for _ in range(REINGEST_PAGES)]  # one abstract a page
    edit = [next(source)]
    first_s, second_s, ratios = [], [], []
    encoded: list[int] = []
    hits: list[int] = []
    chunks = 0
    for repeat in range(repeats):
        folder = tmp / f"reingest-{runtime}-{repeat}"
        settings = bench_settings(base, folder, runtime=runtime)
        embedder = make_embedder(settings, cache=True)
        embedder.embed(["warm up"], None)
        path = render_pdf(folder / "docs" / "book.pdf", pages)
        (report, texts), first, _ = timed(ingest_folder, [path], settings, embedder)
        chunks = len(texts)
        render_pdf(path, [*pages[:24], edit, *pages[25:]])
        before = unwrap(embedder).stats.texts
        (report, _), second, _ = timed(ingest_folder, [path], settings, embedder)
        encoded.append(unwrap(embedder).stats.texts - before)
        hits.append(report.cache_hits)
        first_s.append(first)
        second_s.append(second)
        ratios.append(second / first)
    median = statistics.median
    return {
        "runtime": runtime,
        "pages": REINGEST_PAGES,
        "chunks": chunks,
        "first_ingest_s": round(median(first_s), 2),
        "reingest_s": round(median(second_s), 2),
        "reingest_ratio": round(median(ratios), 4),
        "reingest_chunks_encoded": int(median(encoded)),
        "reingest_cache_hits": int(median(hits)),
        "repeats": repeats,
    }


# -- memory and cold start (fresh processes) ----------------------------------------------------------------


def status_kb(field: str) -> int:
    """A field of this process's ``/proc/self/status`` in kB (``VmRSS``, ``VmHWM``: peak RSS); 0 if absent."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(*args: str, module: str = "evaluation.throughput") -> dict[str, Any]:
    """Run ``python -m MODULE ARGS`` in the repository; its last stdout line as JSON, plus ``process_s``.

    Each measurement of memory or start-up runs in such a fresh process, so nothing this process
    has imported or allocated counts.
    """
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=3600,
    )
    result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    result["process_s"] = round(time.perf_counter() - started, 3)
    return result


def measure_memory(base: Settings, corpus: Path, runtime: str, backend: str | None = None) -> dict[str, Any]:
    """Peak RSS of a fresh process that loads the model and ingests the PDFs in ``corpus``.

    ONNX exports are read from ``base.data_dir/models`` (made beforehand). ``backend="fake"``
    measures the pipeline's own memory, without the model's inference buffers.
    """
    return child(
        "rss",
        str(corpus),
        "--data-dir",
        str(base.data_dir),
        "--backend",
        backend or base.model.backend,
        "--model",
        base.model.name,
        "--runtime",
        runtime,
    )


def _rss_main(folder: Path, data_dir: str, backend: str, model: str, runtime: str) -> dict[str, Any]:
    from config import load_settings
    from embedder import make_embedder

    with tempfile.TemporaryDirectory(prefix="instructor-search-rss-") as tmp:
        settings = load_settings(
            data_dir=data_dir,
            qdrant={"path": str(Path(tmp) / "qdrant")},
            model={"backend": backend, "name": model, "runtime": runtime},
        )
        embedder = make_embedder(settings, cache=False)
        embedder.embed(["warm up"], None)
        loaded_kb = status_kb("VmRSS")
        started = time.perf_counter()
        _, texts = ingest_folder(sorted(folder.glob("*.pdf")), settings, embedder)
        return {
            "chunks": len(texts),
            "seconds": round(time.perf_counter() - started, 2),
            "rss_after_model_load_mb": round(loaded_kb / 1024, 1),
            "peak_rss_mb": round(status_kb("VmHWM") / 1024, 1),
        }


def main(argv: Sequence[str] | None = None) -> None:
    """Subprocess entry point: ``rss FOLDER`` (used by the bench, prints JSON)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m evaluation.throughput")
    parser.add_argument("mode", choices=["rss"])
    parser.add_argument("folder", nargs="?")
    parser.add_argument("--backend", default="sentence-transformers")
    parser.add_argument("--model", default="default")
    parser.add_argument("--runtime", default="torch")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args(argv)
    result = _rss_main(Path(args.folder), args.data_dir, args.backend, args.model, args.runtime)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":  # pragma: no cover
    main()
