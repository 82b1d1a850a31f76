"""The embedded store as it grows: ingest rate, open time, first search, query latency and memory.

Many small generated text files (10 paragraphs of 80 made-up words, one chunk each) are ingested
with the fake embedder (or the settings' one) through the real :func:`ingest.pipeline.ingest_files`
into an embedded store on disk, in calls of ``step_chunks`` chunks, until each size of ``sizes`` is
reached. At each size the measurement records:

* ``ingest_chunks_per_s`` (median of the last three calls: the rate *at* that size),
  ``ingest_last_step_chunks_per_s`` and ``ingest_cpu_ms_per_chunk`` (CPU time of the process,
  less sensitive than wall time to other load on the machine);
* ``open_s`` (a fresh client in this process: :func:`store.client.open_client`) and
  ``first_search_s`` (the first dense search after it, which reads the ids and dense vectors into
  the in-process index of :mod:`retrieval.local_index`); with ``fresh``, the same in a new
  interpreter (``process_*``: import, open, first search, and the whole process);
* ``first_{mode}_ms``, ``{mode}_p50_ms`` and ``{mode}_p95_ms`` for ``dense`` and ``hybrid`` over
  ``queries`` searches through :func:`retrieval.engine.search` (the first hybrid search reads the
  BM25 vectors);
* ``rss_mb`` / ``peak_rss_mb``: VmRSS and VmHWM of this process (``/proc/self/status``).

The generated files are written per call and deleted after it, so the measuring process holds
no chunk beyond what the store itself keeps. ``scripts/scale.py`` runs it.

Measured on an idle machine with all-MiniLM-L6-v2 (ONNX, 384 dimensions, BM25 on) up to 200,000
chunks, and what limits each target: ``docs/notes/scale.md`` and the Scale section of
``docs/benchmarks.md`` (open plus first search 13.4 s in-process and 29.6 s in a fresh process at
200,000, dense p50 21.8 ms, the real model's ingest rate 0.993 of its rate at 0).
"""

from __future__ import annotations

import gc
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from config import override

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from config import Settings
    from embedder import Embedder

REPO = Path(__file__).resolve().parents[1]
COLLECTION = "scale"
#: Default sizes (chunks) of the curve.
SIZES = (20_000, 50_000, 100_000, 200_000)
#: The random stream of the queries (file numbers stay below it).
_QUERY_STREAM = 2**40
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "sa", "do", "fu", "gi", "ha", "ju", "be")


# -- the corpus ---------------------------------------------------------------------------------------


@dataclass
class Corpus:
    """Generated text: a Zipf-distributed vocabulary of made-up words, one paragraph per chunk.

    Args:
        seed: the random seed (the same seed gives the same files).
        words_per_chunk: words of each paragraph: with the default chunking and the fake
            embedder (128 words, less the instruction), one paragraph is one chunk and two do not fit.
        chunks_per_file: paragraphs of each file.
    """

    seed: int = 0
    words_per_chunk: int = 80
    chunks_per_file: int = 10
    vocabulary: int = 20_000

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        words: set[str] = set()
        while len(words) < self.vocabulary:
            words.add("".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 5)))))
        self.words = np.array(sorted(words))
        weights = 1.0 / np.arange(1, self.vocabulary + 1) ** 1.05
        self.probabilities = weights / weights.sum()

    def words_of(self, count: int, rng: np.random.Generator) -> list[str]:
        """``count`` words drawn from the vocabulary's distribution."""
        return [str(w) for w in rng.choice(self.words, size=count, p=self.probabilities)]

    def text(self, number: int) -> str:
        """The text of file ``number`` (it depends on the seed and the number alone)."""
        rng = np.random.default_rng((self.seed, number))
        paragraphs = (
            " ".join(self.words_of(self.words_per_chunk, rng)).capitalize() + "."
            for _ in range(self.chunks_per_file)
        )
        return "\n\n".join(paragraphs) + "\n"

    def write_files(self, folder: Path, first: int, count: int) -> list[Path]:
        """Write files ``first .. first + count - 1`` into ``folder`` (``doc-NNNNNNN.txt``)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for number in range(first, first + count):
            path = folder / f"doc-{number:07d}.txt"
            path.write_text(self.text(number), encoding="utf-8")
            paths.append(path)
        return paths

    def queries(self, count: int) -> list[str]:
        """``count`` short keyword queries from the same distribution (not any file's text)."""
        rng = np.random.default_rng((self.seed, _QUERY_STREAM))
        return [" ".join(self.words_of(6, rng)) for _ in range(count)]


# -- measurements -------------------------------------------------------------------------------------


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB (0.0 where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def scale_settings(base: Settings, folder: Path, *, cache: bool = False) -> Settings:
    """``base`` with an embedded store in ``folder`` (the embedding cache off unless ``cache``)."""
    return override(
        base,
        data_dir=folder,
        qdrant={"path": str(folder / "qdrant"), "url": None, "api_key": None, "collection": COLLECTION},
        cache={"ingest": cache},
    )


def ingest_step(
    settings: Settings, embedder: Embedder, client: QdrantClient, files: Sequence[Path]
) -> tuple[int, float]:
    """Ingest ``files`` into the scale collection; returns ``(chunks embedded, seconds)``."""
    from evaluation.errors import EvaluationError
    from ingest import discover, ingest_files
    from store.core import store_for

    sources, _ = discover(list(files))
    store = store_for(settings, COLLECTION, client=client)
    started = time.perf_counter()
    report = ingest_files(sources, settings=settings, embedder=embedder, store=store)
    seconds = time.perf_counter() - started
    if report.failed:
        raise EvaluationError(f"scale corpus problem: {[f for f in report.files if f.status == 'failed']}")
    return report.chunks_embedded, seconds


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def time_queries(
    settings: Settings, embedder: Embedder, client: QdrantClient, queries: Sequence[str], mode: str
) -> dict[str, float]:
    """p50 / p95 (ms) of searches in ``mode`` through :func:`retrieval.engine.search`, after a first one.

    The first search of a mode reads the vectors it needs into the in-process index (the sparse
    ones for ``hybrid``, see :mod:`retrieval.local_index`); its time is ``first_{mode}_ms``.
    """
    from retrieval.engine import search
    from store.core import store_for

    store = store_for(settings, COLLECTION, client=client)
    started = time.perf_counter()
    search(queries[0], store=store, embedder=embedder, top_k=5, mode=mode)
    first = (time.perf_counter() - started) * 1000
    times = []
    for query in queries[1:]:
        started = time.perf_counter()
        search(query, store=store, embedder=embedder, top_k=5, mode=mode)
        times.append((time.perf_counter() - started) * 1000)
    return {
        f"first_{mode}_ms": round(first, 1),
        f"{mode}_p50_ms": round(_percentile(times, 50), 2),
        f"{mode}_p95_ms": round(_percentile(times, 95), 2),
    }


def open_and_search(
    settings: Settings, embedder: Embedder, query: str
) -> tuple[QdrantClient, dict[str, float]]:
    """Open a fresh client on the store and run a first search; returns the client and the times."""
    from retrieval.engine import search
    from store.client import open_client
    from store.core import store_for

    started = time.perf_counter()
    client = open_client(settings)
    opened = time.perf_counter()
    search(
        query, store=store_for(settings, COLLECTION, client=client), embedder=embedder, top_k=5, mode="dense"
    )
    searched = time.perf_counter()
    return client, {"open_s": round(opened - started, 3), "first_search_s": round(searched - opened, 3)}


def fresh_process(
    settings: Settings, query: str, *, dimension: int | None = None, real: bool = False
) -> dict[str, float]:
    """Import, open and first search in a new interpreter (``python -m evaluation.scale open``).

    ``dimension``: the fake embedder's (``None``: its default), as the store was built with;
    ``real``: the store was grown for the settings' real model, which the process loads (the
    settings' model section goes to it as JSON).
    """
    started = time.perf_counter()
    extra = ["--dimension", str(dimension)] if dimension is not None else []
    extra += ["--real", settings.model.model_dump_json()] if real else []
    out = subprocess.run(
        [sys.executable, "-m", "evaluation.scale", "open", str(settings.data_dir), query, *extra],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=3600,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = round(time.perf_counter() - started, 3)
    return result


class FillerEmbedder:
    """Grows a store in the name of a real model: its identity, tokenizer and dimension, hashed vectors.

    The store records the real model (so the real one can ingest into it and search it later),
    chunks are cut by the real tokenizer, and only :meth:`embed` is the fake embedder's. The rates
    measured while it ingests are the store's own cost; the real model's rate at each size is
    measured separately, by a call of the real model (:func:`measure_scale` with ``real``).

    Args:
        real: the model the store is for.
    """

    def __init__(self, real: Embedder) -> None:
        from embedder.backends import FakeEmbedder

        self.real = real
        self._hashing = FakeEmbedder(dimension=real.dimension, max_seq_length=1_000_000)

    model_id = property(lambda self: self.real.model_id)
    dimension = property(lambda self: self.real.dimension)
    max_seq_length = property(lambda self: self.real.max_seq_length)
    normalize = property(lambda self: self.real.normalize)
    stats = property(lambda self: self._hashing.stats)

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Any:
        """Hashed vectors of the real model's dimension (see :class:`embedder.backends.FakeEmbedder`)."""
        return self._hashing.embed(texts, instruction, batch_size=batch_size, show_progress=show_progress)

    def count_tokens(self, text: str) -> int:
        """The real model's tokens."""
        return self.real.count_tokens(text)

    def instruction_tokens(self, instruction: str | None) -> int:
        """The real model's tokens of the instruction."""
        return self.real.instruction_tokens(instruction)

    def token_budget(self, instruction: str | None) -> int:
        """The real model's budget."""
        return self.real.token_budget(instruction)


def fake_embedder(settings: Settings, dimension: int | None) -> Embedder:
    """The settings' embedder without cache, or the fake one with ``dimension`` (e.g. 384, as all-MiniLM-L6-v2)."""
    from embedder import make_embedder
    from embedder.backends import FakeEmbedder

    if dimension is None:
        return make_embedder(settings, cache=False)
    return FakeEmbedder(dimension=dimension)


def _open_main(data_dir: str, query: str, dimension: int | None, real: str | None) -> dict[str, float]:
    t0 = time.perf_counter()
    from config import load_settings
    from embedder import make_embedder
    from retrieval.engine import search  # noqa: F401  (timed as part of the import)

    base = load_settings(model=json.loads(real) if real else {"backend": "fake"})
    settings = scale_settings(base, Path(data_dir))
    embedder = (
        make_embedder(settings, purpose="query", cache=False)
        if real is not None
        else fake_embedder(settings, dimension)
    )
    imported = time.perf_counter()
    client, times = open_and_search(settings, embedder, query)
    client.close()
    return {
        "process_import_s": round(imported - t0, 3),
        "process_open_s": times["open_s"],
        "process_first_search_s": times["first_search_s"],
        "process_peak_rss_mb": status_mb("VmHWM"),
    }


# -- the curve ----------------------------------------------------------------------------------------


@dataclass
class _Growth:
    """How far the store has grown: chunks stored, files written, and each ingest call's rate."""

    stored: int = 0
    files: int = 0
    steps: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def _client(settings: Settings) -> Iterator[QdrantClient]:
    """An embedded client on the scale store, closed afterwards (the store allows one at a time)."""
    from store.client import open_client

    client = open_client(settings)
    try:
        yield client
    finally:
        client.close()


def _call(
    settings: Settings, embedder: Embedder, client: QdrantClient, corpus: Corpus, growth: _Growth, count: int
) -> dict[str, Any]:
    """One ingest call of ``count`` new files; returns its rate (also kept in ``growth.steps``)."""
    folder = Path(settings.data_dir) / "files"
    files = corpus.write_files(folder, growth.files, count)
    cpu = time.process_time()
    chunks, seconds = ingest_step(settings, embedder, client, files)
    cpu = time.process_time() - cpu
    shutil.rmtree(folder)
    growth.files += count
    growth.stored += chunks
    step = {
        "chunks": growth.stored,
        "step_chunks": chunks,
        "chunks_per_s": round(chunks / seconds, 1),
        "cpu_ms_per_chunk": round(cpu * 1000 / max(1, chunks), 3),
    }
    growth.steps.append(step)
    return step


def _files_for(corpus: Corpus, growth: _Growth, chunks: int) -> int:
    """Files that hold about ``chunks`` chunks (at the chunks per file seen so far)."""
    per_file = growth.stored / growth.files if growth.files else corpus.chunks_per_file
    return max(1, math.ceil(chunks / per_file))


def _grow(
    settings: Settings,
    embedder: Embedder,
    client: QdrantClient,
    corpus: Corpus,
    growth: _Growth,
    size: int,
    step_chunks: int,
) -> None:
    """Ingest calls of about ``step_chunks`` chunks until the store holds ``size``."""
    while growth.stored < size:
        count = _files_for(corpus, growth, min(step_chunks, size - growth.stored))
        _call(settings, embedder, client, corpus, growth, count)


def _real_call(
    settings: Settings, real: Embedder, client: QdrantClient, corpus: Corpus, growth: _Growth, chunks: int
) -> dict[str, Any]:
    """One ingest call of about ``chunks`` chunks by the real model, into the store as it is now."""
    step = _call(settings, real, client, corpus, growth, _files_for(corpus, growth, chunks))
    step["real"] = True
    return {
        "real_chunks_per_s": step["chunks_per_s"],
        "real_step_chunks": step["step_chunks"],
        "real_cpu_ms_per_chunk": step["cpu_ms_per_chunk"],
    }


def _real_at_zero(
    settings: Settings,
    real: Embedder,
    corpus: Corpus,
    growth: _Growth,
    chunks: int,
    fresh_query: str | None,
    dimension: int | None,
) -> dict[str, Any]:
    """The real model's rate into the empty store: ``{"size": ..., **figures of its call}``.

    Warm first: the first call's one-off costs (the collection, the model's first batches and,
    with ``fresh_query``, the first fresh process's load of its export) are not the store's; the
    rate "at 0" is the next call's. ``dimension`` goes to :func:`fresh_process`.
    """
    with _client(settings) as client:
        _real_call(settings, real, client, corpus, growth, corpus.chunks_per_file)
        at_zero = {"size": growth.stored, **_real_call(settings, real, client, corpus, growth, chunks)}
    if fresh_query is not None:
        fresh_process(settings, fresh_query, dimension=dimension, real=True)
    return at_zero


def _measure_at(
    settings: Settings,
    embedder: Embedder,
    texts: Sequence[str],
    growth: _Growth,
    *,
    fresh: bool,
    dimension: int | None,
    real: bool = False,
) -> dict[str, Any]:
    """The figures of the store as it is now (no other client of it open in this process)."""
    last = [step for step in growth.steps if not step.get("real")][-3:]
    point: dict[str, Any] = {
        "size": growth.stored,
        "ingest_chunks_per_s": statistics.median(step["chunks_per_s"] for step in last),
        "ingest_last_step_chunks_per_s": last[-1]["chunks_per_s"],
        "ingest_cpu_ms_per_chunk": statistics.median(step["cpu_ms_per_chunk"] for step in last),
    }
    gc.collect()  # the ingest's client and what qdrant-client held for it
    if fresh:
        point.update(fresh_process(settings, texts[0], dimension=dimension, real=real))
    client, opened = open_and_search(settings, embedder, texts[0])
    try:
        point.update(opened)
        for mode in ("dense", "hybrid"):
            point.update(time_queries(settings, embedder, client, texts[1:], mode))
    finally:
        client.close()
    point.update(rss_mb=status_mb("VmRSS"), peak_rss_mb=status_mb("VmHWM"))
    point["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return point


def measure_scale(
    base: Settings,
    sizes: Sequence[int] = SIZES,
    *,
    folder: Path,
    embedder: Embedder | None = None,
    step_chunks: int = 5_000,
    queries: int = 50,
    corpus: Corpus | None = None,
    fresh: bool = True,
    dimension: int | None = None,
    filler: bool = False,
    real_step_chunks: int = 0,
    on_point: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Grow an embedded store to each of ``sizes`` chunks and measure it at each (see the module).

    Args:
        base: the settings (their model decides the embedder; the fake one for the store curve).
        sizes: store sizes in chunks, ascending.
        folder: an empty work folder (the store and the files of the current call).
        embedder: the embedder (``None``: the settings', without the embedding cache).
        step_chunks: chunks per ingest call.
        queries: searches per latency figure.
        corpus: the generated text (``None``: :class:`Corpus` with its defaults).
        fresh: also measure open and first search in a fresh process at each size.
        dimension: use the fake embedder with this dimension (``embedder`` is then ignored).
        filler: ``embedder`` is a real model: the store is grown by :class:`FillerEmbedder` in
            its name, and queries are embedded by the real model.
        real_step_chunks: with ``filler`` and more than 0, at 0 and at each size one call of
            about this many chunks is ingested by the real model (``real_chunks_per_s``).
        on_point: called with each size's figures as soon as they are measured.

    Returns:
        ``{"points": [per-size figures], "steps": [per-call rate], "settings": {...}}``.
    """
    settings = scale_settings(base, folder)
    if dimension is not None or embedder is None:
        embedder = fake_embedder(settings, dimension)
    grower: Embedder = FillerEmbedder(embedder) if filler else embedder
    real = embedder if filler and real_step_chunks > 0 else None  # takes its own calls
    corpus = corpus or Corpus()
    texts = corpus.queries(queries + 2)
    growth = _Growth()
    points: list[dict[str, Any]] = []
    fresh_query = texts[0] if fresh else None
    at_zero = (
        _real_at_zero(settings, real, corpus, growth, real_step_chunks, fresh_query, dimension)
        if real is not None
        else {}
    )
    for size in sizes:
        real_figures: dict[str, Any] = {}
        with _client(settings) as client:  # the same client grows the store and takes the real call
            _grow(settings, grower, client, corpus, growth, size, step_chunks)
            if real is not None:
                real_figures = _real_call(settings, real, client, corpus, growth, real_step_chunks)
        point = _measure_at(settings, embedder, texts, growth, fresh=fresh, dimension=dimension, real=filler)
        point.update(real_figures)
        points.append(point)
        if on_point is not None:
            on_point(point)
    return {
        "points": points,
        "steps": growth.steps,
        "real_at_zero": at_zero,
        "settings": {
            "step_chunks": step_chunks,
            "real_step_chunks": real_step_chunks,
            "chunks_per_file": corpus.chunks_per_file,
            "words_per_chunk": corpus.words_per_chunk,
            "queries": queries,
            "model": embedder.model_id,
            "dimension": getattr(embedder, "dimension", None),
        },
    }


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Headline figures: the rate at the largest size against the first steps', open + first search.

    With a real model (``real_at_zero``), also its rate at the largest size against its rate at 0.
    """
    steps = [step for step in result["steps"] if not step.get("real")]
    points = result["points"]
    if not steps or not points:
        return {}
    last = points[-1]
    first = statistics.median(step["chunks_per_s"] for step in steps[:3])
    figures: dict[str, Any] = {
        "size": last["size"],
        "rate_first_steps": first,
        "rate_at_size": last["ingest_chunks_per_s"],
        "rate_ratio": round(last["ingest_chunks_per_s"] / first, 3),
        "cpu_ms_per_chunk_first_steps": statistics.median(step["cpu_ms_per_chunk"] for step in steps[:3]),
        "cpu_ms_per_chunk_at_size": last["ingest_cpu_ms_per_chunk"],
        "open_plus_first_search_s": round(last["open_s"] + last["first_search_s"], 3),
        "dense_p50_ms": last["dense_p50_ms"],
        "hybrid_p50_ms": last["hybrid_p50_ms"],
        "peak_rss_mb": max(point["peak_rss_mb"] for point in points),
    }
    zero = result.get("real_at_zero") or {}
    if zero and "real_chunks_per_s" in last:
        figures["real_rate_at_0"] = zero["real_chunks_per_s"]
        figures["real_rate_at_size"] = last["real_chunks_per_s"]
        figures["real_rate_ratio"] = round(last["real_chunks_per_s"] / zero["real_chunks_per_s"], 3)
    if "process_s" in last:
        figures["process_open_plus_first_search_s"] = round(
            last["process_open_s"] + last["process_first_search_s"], 3
        )
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    """Subprocess entry point: ``open DATA_DIR QUERY`` (prints JSON)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m evaluation.scale")
    parser.add_argument("mode", choices=["open"])
    parser.add_argument("data_dir")
    parser.add_argument("query")
    parser.add_argument("--dimension", type=int)
    parser.add_argument(
        "--real", metavar="MODEL_JSON", help="the store's model section (settings.model as JSON)"
    )
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(_open_main(args.data_dir, args.query, args.dimension, args.real)) + "\n")


if __name__ == "__main__":  # pragma: no cover
    main()
