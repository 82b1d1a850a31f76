"""Footprint: peak memory of an ingest against the standard LangChain stack on the same PDFs, and cold starts.

Each run is a fresh child process (:func:`evaluation.throughput.child`) that reports its own
peak RSS (``VmHWM``) and the RSS after each step, so the figures say where the memory goes:

* **ours**: :func:`ingest.ingest_files` with the default settings (the caller's model backend
  and name, the default runtime and representations, the embedding cache in a fresh file) into a fresh embedded Qdrant, then
  one search of the default mode, which builds the in-process index. Steps: imports, embedder
  made, store opened, first batch embedded, ingest done, first search.
* **langchain**: what a LangChain user writes for the same job: ``PyPDFLoader``
  (langchain-community), ``RecursiveCharacterTextSplitter.from_huggingface_tokenizer`` with the
  model's own tokenizer and our chunk size and overlap (langchain-text-splitters; its
  ``TokenTextSplitter`` needs tiktoken and a download of its encoding), ``HuggingFaceEmbeddings``
  on the same weights folder (langchain-huggingface when installed, else the same class of
  langchain-community), and ``QdrantVectorStore.from_documents`` on an embedded path
  (langchain-qdrant), then one ``similarity_search``. Without these packages (the optional
  ``bench`` extra) that half reports ``not installed``.

Corpora: NFCorpus documents (title and abstract, one PDF each, :func:`evaluation.pdfs.render_document_pdf`)
when the shared data folder holds NFCorpus, else the sample texts; the larger corpora are
supersets of the smaller ones (75, 300, 1200 documents: 1x, 4x, 16x), so memory that stays
flat in corpus size shows as equal peaks.

Cold starts (:func:`measure_search_start`, :func:`measure_page_start`): a fresh interpreter that
runs ``instructor-search search`` on an existing embedded collection to its printed hits, and one
that runs the app's first page (``streamlit_app.py`` through Streamlit's AppTest), each with the
model's export already cached.

Run as ``python -m evaluation.footprint ours|langchain FOLDER ...`` (what the children run).
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config import ENV_PREFIX, override
from evaluation.errors import EvaluationError
from evaluation.throughput import REPO, child, passages, status_kb

if TYPE_CHECKING:
    from config import Settings

#: Corpus labels and their document counts.
SIZES: dict[str, int] = {"1x": 75, "4x": 300, "16x": 1200}
#: The LangChain stack's modules and the packages that install them.
LANGCHAIN_PACKAGES: dict[str, str] = {
    "langchain_community": "langchain-community",
    "langchain_qdrant": "langchain-qdrant",
    "langchain_text_splitters": "langchain-text-splitters",
}
#: Packages whose presence after a run says which stack held the memory.
WATCHED_MODULES = (
    "torch",
    "sentence_transformers",
    "transformers",
    "onnxruntime",
    "tokenizers",
    "sklearn",
    "scipy.sparse",
    "scipy.stats",
    "pandas",
    "pypdf",
    "pypdfium2",
    "qdrant_client",
)
QUERY = "What foods lower the risk of heart disease?"


# -- corpora --------------------------------------------------------------------------------------------


def documents(data: Path | None) -> Iterator[tuple[str, str]]:
    """(title, text) of NFCorpus documents in corpus order, else of :func:`evaluation.throughput.passages`."""
    nfcorpus = data / "beir" / "nfcorpus" / "corpus.jsonl" if data is not None else None
    if nfcorpus is None or not nfcorpus.is_file():
        yield from passages(data)
        return
    with nfcorpus.open(encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            if doc.get("text", "").strip():
                yield doc.get("title", ""), doc["text"]


def corpus_name(data: Path | None) -> str:
    """What :func:`documents` reads."""
    nfcorpus = data / "beir" / "nfcorpus" / "corpus.jsonl" if data is not None else None
    return "NFCorpus documents" if nfcorpus is not None and nfcorpus.is_file() else "sample texts"


def build_corpora(folder: Path, sizes: Mapping[str, int], data: Path | None) -> dict[str, Path]:
    """One folder of PDFs per size, each the first ``n`` documents (hard links to one rendering).

    Args:
        folder: where the PDFs and the corpus folders go.
        sizes: label -> number of documents.
        data: the shared data folder (``None``: the sample texts).

    Returns:
        label -> folder with that many PDFs.
    """
    from evaluation.pdfs import render_document_pdf

    rendered = folder / "pdfs"
    rendered.mkdir(parents=True, exist_ok=True)
    needed = max(sizes.values(), default=0)
    source = documents(data)
    paths = []
    for number in range(needed):
        path = rendered / f"doc-{number:05d}.pdf"
        if not path.is_file():
            title, text = next(source)
            render_document_pdf(title, text, path)
        else:
            next(source)
        paths.append(path)
    corpora: dict[str, Path] = {}
    for label, count in sizes.items():
        target = folder / f"corpus-{label}"
        target.mkdir(exist_ok=True)
        for path in paths[:count]:
            link = target / path.name
            if not link.exists():
                os.link(path, link)
        corpora[label] = target
    return corpora


# -- the measurement ------------------------------------------------------------------------------------


def langchain_missing(packages: Mapping[str, str] = LANGCHAIN_PACKAGES) -> list[str]:
    """The packages of the LangChain stack that are not installed (empty: it can run).

    Args:
        packages: module -> the package that installs it.
    """
    return [package for module, package in packages.items() if importlib.util.find_spec(module) is None]


def measure_footprint(
    base: Settings, corpora: Mapping[str, Path], *, langchain: Mapping[str, str] = LANGCHAIN_PACKAGES
) -> dict[str, Any]:
    """Peak RSS of ours and of the LangChain stack on each corpus, interleaved, each in a fresh process.

    The model's ONNX export (and its check) must exist in ``base.data_dir/models`` already (the
    bench makes it first), so no child pays the one-time export.

    Args:
        base: the settings (data folder, model backend and name; everything else at its
            defaults in the children).
        corpora: label -> folder of PDFs (see :func:`build_corpora`).
        langchain: the modules of the LangChain stack and their packages; when one is missing,
            that half of each corpus says ``not installed``.

    Returns:
        ``runs`` (``ours-1x``, ``langchain-1x``, ...: chunks, seconds, peak RSS, the RSS after each
        step, the heavy packages loaded), and per corpus the two peaks and their ratio.
    """
    from embedder.loading import resolve_model

    model = resolve_model(base.model.name)
    missing = langchain_missing(langchain)
    runs: dict[str, Any] = {}
    for label, folder in corpora.items():
        pdfs = len(list(folder.glob("*.pdf")))
        runs[f"ours-{label}"] = {
            "stack": "ours",
            "corpus": label,
            "pdfs": pdfs,
            **child(
                "ours",
                str(folder),
                "--data-dir",
                str(base.data_dir),
                "--backend",
                base.model.backend,
                "--model",
                base.model.name,
                module=__name__,
            ),
        }
        if missing:
            runs[f"langchain-{label}"] = {
                "stack": "langchain",
                "corpus": label,
                "pdfs": pdfs,
                "status": "not installed",
                "missing": missing,
            }
            continue
        runs[f"langchain-{label}"] = {
            "stack": "langchain",
            "corpus": label,
            "pdfs": pdfs,
            **child(
                "langchain",
                str(folder),
                "--model",
                model.location,
                "--chunk-size",
                str(base.chunk.size),
                "--chunk-overlap",
                str(base.chunk.overlap),
                module=__name__,
            ),
        }
    return {"runs": runs, **_summary(runs, corpora)}


def _summary(runs: Mapping[str, Any], corpora: Mapping[str, Path]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for label in corpora:
        ours = runs[f"ours-{label}"].get("peak_rss_mb")
        theirs = runs[f"langchain-{label}"].get("peak_rss_mb")
        summary[f"peak_rss_mb_ours_{label}"] = ours
        summary[f"peak_rss_mb_langchain_{label}"] = theirs
        if ours and theirs:
            summary[f"peak_rss_ratio_{label}"] = round(ours / theirs, 3)
    return summary


# -- cold starts -----------------------------------------------------------------------------------------------

#: The first page of the app, measured in a fresh interpreter (argv: the script, then the JSON file to write).
_PAGE_SCRIPT = """
import json, sys, time
from streamlit.testing.v1 import AppTest
started = time.perf_counter()
at = AppTest.from_file(sys.argv[1], default_timeout=600).run()
errors = [e.value for e in at.exception] + [e.value for e in at.error]
print(json.dumps({"page_s": round(time.perf_counter() - started, 3), "errors": errors}))
"""


def start_collection(base: Settings, folder: Path, pdfs: Sequence[Path]) -> Settings:
    """An embedded collection ``bench`` in ``folder`` with ``pdfs`` ingested, for the cold starts.

    Returns:
        The settings that point at it (``base``'s data folder, so the model export is shared).
    """
    from embedder import make_embedder
    from evaluation.throughput import ingest_folder

    settings = override(
        base, qdrant={"path": str(folder / "qdrant"), "url": None, "api_key": None, "collection": "bench"}
    )
    ingest_folder(pdfs, settings, make_embedder(settings, cache=False))
    return settings


def _child_env(settings: Settings, runtime: str) -> dict[str, str]:
    """The environment of a cold-start child: none of the caller's settings, these ones."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    env.update(
        {
            f"{ENV_PREFIX}DATA_DIR": str(settings.data_dir),
            f"{ENV_PREFIX}QDRANT__COLLECTION": settings.qdrant.collection,
            f"{ENV_PREFIX}MODEL__BACKEND": settings.model.backend,
            f"{ENV_PREFIX}MODEL__NAME": settings.model.name,
            f"{ENV_PREFIX}MODEL__RUNTIME": runtime,
            f"{ENV_PREFIX}MODEL__QUERY_RUNTIME": runtime,
        }
    )
    if settings.qdrant.path is not None:  # else the data folder's own store
        env[f"{ENV_PREFIX}QDRANT__PATH"] = str(settings.qdrant.path)
    return env


def _timed_run(command: Sequence[str], env: Mapping[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(
        list(command), cwd=REPO, env=dict(env), capture_output=True, text=True, timeout=900, check=False
    )
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise EvaluationError(
            f"cold start {command[2:4]} failed ({out.returncode}): {out.stderr.strip()[-500:]}"
        )
    return seconds, out.stdout


def measure_search_start(settings: Settings, runtime: str, repeats: int) -> dict[str, Any]:
    """``instructor-search search`` in a fresh process on an existing collection: process start to its hits.

    Args:
        settings: the settings of the collection (:func:`start_collection`).
        runtime: the query runtime.
        repeats: runs; the figure is their median.

    Returns:
        ``process_s`` (median wall time from the start of the interpreter to its exit, the hits
        printed), every run's time, and the hits of the last run.
    """
    command = [sys.executable, "-m", "app.cli", "search", QUERY, "--json"]
    times, hits = [], 0
    for _ in range(repeats):
        seconds, stdout = _timed_run(command, _child_env(settings, runtime))
        times.append(seconds)
        hits = len(json.loads(stdout)["hits"])
    if not hits:
        raise EvaluationError("the cold-start search found no hits; the collection is empty")
    return {
        "runtime": runtime,
        "process_s": round(statistics.median(times), 3),
        "runs_s": [round(t, 3) for t in times],
        "hits": hits,
    }


def measure_page_start(settings: Settings, runtime: str, repeats: int) -> dict[str, Any]:
    """The app's first page in a fresh process: ``streamlit_app.py``'s first run through Streamlit's AppTest.

    The page runs as it does for a browser's first visit (settings, the cached Qdrant client, the
    collection list, the search box), without Streamlit's web server and the browser.

    Returns:
        ``process_s`` (median wall time from the start of the interpreter to the end of the
        page's first run), ``page_s`` (the run alone), every run's time.
    """
    command = [sys.executable, "-c", _PAGE_SCRIPT, str(REPO / "streamlit_app.py")]
    times, pages = [], []
    for _ in range(repeats):
        seconds, stdout = _timed_run(command, _child_env(settings, runtime))
        report = json.loads(stdout.strip().splitlines()[-1])
        if report["errors"]:
            raise EvaluationError(f"the app's first page shows errors: {report['errors']}")
        times.append(seconds)
        pages.append(report["page_s"])
    return {
        "runtime": runtime,
        "process_s": round(statistics.median(times), 3),
        "page_s": round(statistics.median(pages), 3),
        "runs_s": [round(t, 3) for t in times],
    }


# -- the children -----------------------------------------------------------------------------------------


class _Steps:
    """RSS and peak RSS after each step of a run, with the seconds since the process started."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.started = time.perf_counter()

    def mark(self, step: str) -> None:
        rss = status_kb("VmRSS")
        self.rows.append(
            {
                "step": step,
                "rss_mb": round(rss / 1024, 1),
                "peak_rss_mb": round(max(rss, status_kb("VmHWM")) / 1024, 1),
                "s": round(time.perf_counter() - self.started, 2),
            }
        )

    def peak_mb(self) -> float:
        """The peak RSS so far: ``VmHWM``, or an RSS seen above it (the kernel updates ``VmHWM`` lazily)."""
        seen = max((row["peak_rss_mb"] for row in self.rows), default=0.0)
        return max(seen, round(status_kb("VmHWM") / 1024, 1))


def _result(steps: _Steps, chunks: int, seconds: float) -> dict[str, Any]:
    return {
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "peak_rss_mb": steps.peak_mb(),
        "steps": steps.rows,
        "modules": [name for name in WATCHED_MODULES if name in sys.modules],
    }


def _ours_main(folder: Path, data_dir: str, backend: str, model: str) -> dict[str, Any]:
    steps = _Steps()
    steps.mark("interpreter")
    from config import load_settings
    from embedder import make_embedder
    from ingest import ProgressEvent, discover, ingest_files
    from retrieval.engine import options_from, search
    from store.client import open_client
    from store.core import store_for

    steps.mark("imports")
    with tempfile.TemporaryDirectory(prefix="instructor-search-footprint-") as tmp:
        settings = load_settings(
            data_dir=data_dir,
            qdrant={"path": str(Path(tmp) / "qdrant")},
            cache={"path": str(Path(tmp) / "embeddings.sqlite")},
            model={"backend": backend, "name": model},
        )
        embedder = make_embedder(settings)
        steps.mark("embedder made")
        client = open_client(settings)
        store = store_for(settings, "bench", client=client)
        steps.mark("store opened")
        sources, _ = discover(sorted(folder.glob("*.pdf")))

        first_batch: list[bool] = []

        def progress(event: ProgressEvent) -> None:
            if event.stage == "embedding" and event.chunks_done and not first_batch:
                first_batch.append(True)
                steps.mark("first batch embedded")

        started = time.perf_counter()
        report = ingest_files(
            sources, settings=settings, embedder=embedder, store=store, on_progress=progress
        )
        seconds = time.perf_counter() - started
        steps.mark("ingest done")
        search(
            QUERY, store=store, embedder=embedder, mode=settings.search.mode, **options_from(settings.search)
        )
        steps.mark("first search (in-process index built)")
        client.close()
        return _result(steps, report.chunks_embedded, seconds)


def _embeddings(model: str) -> Any:
    """LangChain's ``HuggingFaceEmbeddings`` (langchain-huggingface, else langchain-community's) on ``model``."""
    if importlib.util.find_spec("langchain_huggingface") is not None:
        from langchain_huggingface import HuggingFaceEmbeddings
    else:
        from langchain_community.embeddings import HuggingFaceEmbeddings
    return HuggingFaceEmbeddings(
        model_name=model, model_kwargs={"device": "cpu"}, encode_kwargs={"normalize_embeddings": True}
    )


def _langchain_main(folder: Path, model: str, chunk_size: int, chunk_overlap: int) -> dict[str, Any]:
    steps = _Steps()
    steps.mark("interpreter")
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from transformers import AutoTokenizer

    steps.mark("imports")
    embeddings = _embeddings(model)
    steps.mark("embedder made")
    started = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        AutoTokenizer.from_pretrained(model), chunk_size=chunk_size, chunk_overlap=chunk_overlap
    )
    pages = [page for path in sorted(folder.glob("*.pdf")) for page in PyPDFLoader(str(path)).load()]
    steps.mark("PDFs loaded")
    chunks = splitter.split_documents(pages)
    steps.mark("split")
    with tempfile.TemporaryDirectory(prefix="instructor-search-footprint-") as tmp:
        store = QdrantVectorStore.from_documents(
            chunks, embeddings, path=str(Path(tmp) / "qdrant"), collection_name="bench"
        )
        seconds = time.perf_counter() - started
        steps.mark("ingest done")
        store.similarity_search(QUERY, k=5)
        steps.mark("first search")
        store.client.close()
    return _result(steps, len(chunks), seconds)


def main(argv: Sequence[str] | None = None) -> None:
    """Child entry points: ``ours FOLDER --data-dir DIR`` and ``langchain FOLDER --model DIR`` (print JSON)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m evaluation.footprint")
    parser.add_argument("stack", choices=["ours", "langchain"])
    parser.add_argument("folder")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--backend", default="sentence-transformers")
    parser.add_argument("--model", default="default", help="ours: the model name; langchain: its folder")
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument("--chunk-overlap", type=int, default=30)
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if args.stack == "ours":
        result = _ours_main(folder, args.data_dir, args.backend, args.model)
    else:
        result = _langchain_main(folder, args.model, args.chunk_size, args.chunk_overlap)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":  # pragma: no cover
    main()
