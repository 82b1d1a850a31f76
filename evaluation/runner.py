"""Run a BEIR split through the product's own ingest and search path and score it.

The corpus goes through :func:`ingest.pipeline.ingest_files` (as text, or rendered to PDFs for
the end-to-end measurement) into an embedded collection, and every query goes through
:func:`retrieval.engine.search`, exactly as users' documents and queries do. Hits are mapped back to
document ids; a document's score is its best chunk's score.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from config import SearchSettings, Settings, override
from evaluation.beir import BeirDataset, BeirDocument, evaluate_run
from evaluation.errors import EvaluationError
from ingest.pipeline import ingest_files
from ingest.sources import SourceFile, file_sha256
from retrieval.engine import options_from, search
from retrieval.modes import MODES
from store.client import open_client
from store.core import VectorStore, store_for
from store.record import CollectionRecord, expected_record

if TYPE_CHECKING:
    from embedder import Embedder

logger = logging.getLogger(__name__)

CorpusFormat = Literal["json", "pdf", "pdf-image"]
#: Sources per ingest call: bounded memory, while batches still fill across documents.
INGEST_BATCH_FILES = 256


@dataclass
class InstructionChoice:
    """Which instructions an evaluation uses.

    Attributes:
        label: ``default``, ``none`` or ``custom``.
        domain: domain for the template (``default`` only).
        query: custom query instruction.
        document: custom document instruction.
    """

    label: str = "default"
    domain: str = ""
    query: str | None = None
    document: str | None = None

    @classmethod
    def parse(cls, value: str, domain: str = "") -> InstructionChoice:
        """Parse ``default``, ``none`` or ``"QUERY INSTRUCTION::DOCUMENT INSTRUCTION"``."""
        if value == "default":
            return cls("default", domain=domain)
        if value == "none":
            return cls("none")
        if "::" in value:
            query, document = (part.strip() for part in value.split("::", 1))
            if query and document:
                return cls("custom", query=query, document=document)
        raise EvaluationError(
            f"--instructions {value!r} is not understood; use default, none, or "
            "'QUERY INSTRUCTION::DOCUMENT INSTRUCTION'"
        )

    def apply(self, settings: Settings) -> Settings:
        """Settings with these instructions."""
        return override(
            settings,
            instructions={
                "enabled": self.label != "none",
                "domain": self.domain if self.label == "default" else "",
                "query": self.query,
                "document": self.document,
            },
        )


@dataclass
class BeirResult:
    """Metrics and costs of one evaluation run."""

    dataset: str
    split: str
    corpus_format: CorpusFormat
    instructions: str
    query_instruction: str | None
    document_instruction: str | None
    model: str
    queries: int
    documents: int
    chunks: int
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    map_at_100: float
    seconds: float
    ingest_seconds: float
    search_seconds: float
    docs_per_second: float
    failed_documents: int = 0
    mode: str = "dense"
    fusion: str | None = None
    representations: dict[str, Any] = field(default_factory=dict)
    index: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (metric keys as the CLI documents them)."""
        return asdict(self)


def _build_info(location: Path, collection: str, *, fresh: bool, info: dict[str, Any]) -> dict[str, Any]:
    """What building a collection cost: saved beside a kept store when it was built, read back on reuse."""
    path = location / f"{collection}.build.json"
    if fresh or not path.is_file():
        if location.is_dir():
            path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return {**info, "reused": False}
    saved: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return {**saved, "reused": True}


def _json_corpus_stored(store: VectorStore, dataset: BeirDataset) -> bool:
    """Whether a kept collection already holds every document of the corpus, as it is now.

    One scroll of the manifests and a hash per document, instead of an ingest pass that checks
    every file (the same outcome: every file would be ``unchanged``).
    """
    if not store.exists():
        return False
    manifests = {m.source: m for m in store.documents()}
    if len(manifests) != dataset.corpus_size:
        return False
    for doc in dataset.corpus():
        manifest = manifests.get(f"beir:{dataset.name}:{doc.doc_id}")
        if manifest is None or manifest.chunk_strategy != "whole":
            return False
        if manifest.file_sha256 != file_sha256(doc.full_text.encode("utf-8")):
            return False
    return True


def _folder_bytes(folder: Path) -> int:
    """Bytes of the files under a folder (the embedded store's size on disk)."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _identical_documents(dataset: BeirDataset) -> dict[str, tuple[str, ...]]:
    """Documents with identical text, keyed by the first one's id (in corpus order).

    Ingestion stores identical content once, under the first source that brought it, so a hit
    on that document stands for all of its twins (NFCorpus has a few dozen such duplicates).
    """
    groups: dict[str, list[str]] = {}
    for doc in dataset.corpus():
        groups.setdefault(file_sha256(doc.full_text.encode("utf-8")), []).append(doc.doc_id)
    return {ids[0]: tuple(ids) for ids in groups.values() if len(ids) > 1}


def _doc_id_from_file_name(file_name: str) -> str:
    return file_name.rsplit(".", 1)[0] if file_name.endswith((".txt", ".pdf")) else file_name


def render_pdfs(docs: Sequence[BeirDocument], folder: Path, *, images: bool = False) -> list[Path]:
    """Render documents to one PDF each (title and text, fpdf2, a Unicode TTF font).

    Existing files are kept, so a rerun renders nothing.

    Args:
        docs: the documents.
        folder: where the PDFs go.
        images: image-only PDFs (the pages rasterised, no text layer), read only through OCR.
    """
    # fpdf2, pypdfium2 and the font: only when PDFs are rendered
    from evaluation.pdfs import render_document_pdf, render_image_pdf

    folder.mkdir(parents=True, exist_ok=True)
    render = render_image_pdf if images else render_document_pdf
    paths = []
    for doc in docs:
        path = folder / f"{doc.doc_id}.pdf"
        if not path.is_file():
            render(doc.title, doc.text, path)
        paths.append(path)
    return paths


def _batches(iterable: Iterator[BeirDocument], size: int) -> Iterator[list[BeirDocument]]:
    batch: list[BeirDocument] = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _sources(
    batch: Sequence[BeirDocument], dataset: BeirDataset, corpus_format: CorpusFormat, pdf_folder: Path | None
) -> list[SourceFile]:
    if corpus_format == "json":
        return [
            SourceFile(
                source=f"beir:{dataset.name}:{doc.doc_id}",
                file_name=f"{doc.doc_id}.txt",
                data=doc.full_text.encode("utf-8"),
            )
            for doc in batch
        ]
    images = corpus_format == "pdf-image"
    ready = dataset.folder / ("pdfs-image" if images else "pdfs")
    paths = []
    for doc in batch:
        existing = ready / f"{doc.doc_id}.pdf"
        paths.append(existing if existing.is_file() else None)
    missing = [doc for doc, path in zip(batch, paths, strict=True) if path is None]
    if missing:
        if pdf_folder is None:
            raise EvaluationError("a PDF cache folder is needed to render the corpus")
        rendered_paths = render_pdfs(missing, pdf_folder, images=images)
        rendered = dict(zip((d.doc_id for d in missing), rendered_paths, strict=True))
        paths = [path or rendered[doc.doc_id] for doc, path in zip(batch, paths, strict=True)]
    return [
        SourceFile(
            source=f"beir-{corpus_format}:{dataset.name}:{doc.doc_id}",
            file_name=f"{doc.doc_id}.pdf",
            path=path,
        )
        for doc, path in zip(batch, paths, strict=True)
        if path is not None
    ]


@dataclass
class _Build:
    """What ingesting the corpus into the collection did (nothing, when it was already stored)."""

    seconds: float
    failed: int
    info: dict[str, Any]


def _run_settings(
    settings: Settings,
    instructions: InstructionChoice,
    corpus_format: CorpusFormat,
    location: str,
    collection: str,
) -> Settings:
    """The settings of one run: its instructions, chunking and embedded collection."""
    run_settings = instructions.apply(settings)
    # JSON documents are short: one chunk per document, truncated by the model, as MTEB embeds
    # them. PDFs take the product's normal chunking, since that is what is being measured.
    strategy = "whole" if corpus_format == "json" else settings.chunk.strategy
    return override(
        run_settings,
        chunk={"strategy": strategy},
        qdrant={"path": location, "url": None, "api_key": None, "collection": collection},
    )


def _ingest_corpus(
    store: VectorStore,
    dataset: BeirDataset,
    *,
    settings: Settings,
    embedder: Embedder,
    corpus_format: CorpusFormat,
    pdf_folder: Path,
    on_progress: Callable[[str, int, int], None] | None,
) -> _Build:
    """Ingest the corpus in batches through :func:`ingest.pipeline.ingest_files` (nothing when already stored)."""
    started = time.perf_counter()
    failed = done = embedded = pages = ocr_pages = 0
    costs: dict[str, dict[str, float]] = {"seconds": {}, "items": {}}
    skipped: list[str] = []
    stored = corpus_format == "json" and _json_corpus_stored(store, dataset)
    if stored:
        logger.info("collection %s already holds this corpus; nothing to ingest", store.collection)
    for batch in [] if stored else _batches(dataset.corpus(), INGEST_BATCH_FILES):
        report = ingest_files(
            _sources(batch, dataset, corpus_format, pdf_folder),
            settings=settings,
            embedder=embedder,
            store=store,
        )
        failed += sum(1 for f in report.files if f.status == "failed")
        pages += sum(f.pages or 0 for f in report.files)
        ocr_pages += sum(len(f.ocr_pages) for f in report.files)
        embedded += report.chunks_embedded
        for kind in ("seconds", "items"):
            for name, value in report.representations.get(kind, {}).items():
                costs[kind][name] = costs[kind].get(name, 0) + value
        skipped = report.skipped or skipped
        done += len(batch)
        if on_progress:
            on_progress("ingest", done, dataset.corpus_size)
    seconds = time.perf_counter() - started
    info = {
        "seconds": round(seconds, 2),
        "chunks_embedded": embedded,
        "pages": pages,
        "ocr_pages": ocr_pages,
        "failed_files": failed,
        "representation_seconds": {k: round(v, 2) for k, v in costs["seconds"].items()},
        "representation_items": {k: int(v) for k, v in costs["items"].items()},
        "skipped": skipped,
    }
    return _Build(seconds=seconds, failed=failed, info=info)


def _searched_record(
    store: VectorStore, expected: CollectionRecord, keyword_weights: tuple[float, float] | None
) -> CollectionRecord:
    """The collection's record, checked against the run's, with the keyword vectors re-weighted if asked."""
    found = store.require_record()
    store.check(found, expected)
    kw = found.representations.keywords
    if (
        keyword_weights is not None
        and kw is not None
        and keyword_weights != (kw.chunk_weight, kw.keyword_weight)
    ):
        found = store.reweight_keywords(*keyword_weights)
    return found


def _search_queries(
    store: VectorStore,
    dataset: BeirDataset,
    *,
    embedder: Embedder,
    search_settings: SearchSettings,
    mode: str,
    top_k: int,
    chunk_k: int,
    twins: Mapping[str, tuple[str, ...]],
    on_progress: Callable[[str, int, int], None] | None,
) -> dict[str, dict[str, float]]:
    """Every query through :func:`retrieval.engine.search`: the top ``top_k`` documents, each scored by its best chunk."""
    run: dict[str, dict[str, float]] = {}
    for index, (qid, text) in enumerate(dataset.queries.items(), start=1):
        result = search(
            text,
            store=store,
            embedder=embedder,
            top_k=chunk_k,
            mode=mode,
            **options_from(search_settings, min_candidates=chunk_k),
        )
        scores: dict[str, float] = {}
        for hit in result.hits:
            stored_id = _doc_id_from_file_name(hit.file_name)
            for doc_id in twins.get(stored_id, (stored_id,)):
                scores[doc_id] = max(scores.get(doc_id, float("-inf")), float(hit.score))
        run[qid] = dict(sorted(scores.items(), key=lambda kv: -kv[1])[:top_k])
        if on_progress and index % 50 == 0:
            on_progress("search", index, len(dataset.queries))
    return run


def run_beir(
    dataset: BeirDataset,
    *,
    settings: Settings,
    embedder: Embedder,
    instructions: InstructionChoice,
    corpus_format: CorpusFormat = "json",
    top_k: int = 100,
    store_dir: Path | None = None,
    pdf_folder: Path | None = None,
    ignore_identical_ids: bool = True,
    on_progress: Callable[[str, int, int], None] | None = None,
    mode: str | None = None,
    keyword_weights: tuple[float, float] | None = None,
) -> BeirResult:
    """Ingest a BEIR corpus with the real ingest path, search every query, and score the run.

    Args:
        dataset: the loaded split.
        settings: base settings; instructions and chunking are adjusted for the run.
        embedder: the embedder.
        instructions: which instructions to use.
        corpus_format: ``json`` ingests each document's title and text as a text file;
            ``pdf`` ingests one PDF per document through the PDF path; ``pdf-image`` the same
            PDFs as page images without a text layer, read through OCR.
        top_k: documents retrieved per query (100 for Recall@100 and MAP@100).
        store_dir: embedded Qdrant folder to keep (reused when built the same way); a
            temporary folder when ``None``.
        pdf_folder: where rendered PDFs are cached (``pdf`` and ``pdf-image`` formats).
        ignore_identical_ids: drop hits whose doc id equals the query id (BEIR/MTEB convention).
        on_progress: called with (stage, done, total).
        mode: retrieval mode of the searches (``None``: ``settings.search.mode``); fused modes
            use ``settings.search.fusion``.
        keyword_weights: re-weight the collection's keyword vectors to (chunk, keywords) weights
            before searching (no re-embedding; see ``VectorStore.reweight_keywords``).

    Returns:
        The metrics and timings.
    """
    collection = f"beir-{dataset.name}-{corpus_format}"
    with tempfile.TemporaryDirectory(prefix="instructor-search-eval-") as tmp:
        location = Path(store_dir) if store_dir is not None else Path(tmp) / "qdrant"
        run_settings = _run_settings(settings, instructions, corpus_format, str(location), collection)
        client = open_client(run_settings)
        try:
            store = store_for(run_settings, collection, client=client)
            expected = expected_record(run_settings, embedder)  # before the timings (it may load the model)
            ingested = _ingest_corpus(
                store,
                dataset,
                settings=run_settings,
                embedder=embedder,
                corpus_format=corpus_format,
                pdf_folder=pdf_folder or Path(tmp) / "pdfs",
                on_progress=on_progress,
            )
            searched = _search_collection(
                store,
                dataset,
                location=location,
                expected=expected,
                ingested=ingested,
                embedder=embedder,
                search_settings=settings.search,
                mode=mode or settings.search.mode,
                top_k=top_k,
                twins=_identical_documents(dataset) if corpus_format == "json" else {},
                keyword_weights=keyword_weights,
                on_progress=on_progress,
            )
        finally:
            client.close()
    metrics = evaluate_run(dataset.qrels, searched.run, ignore_identical_ids=ignore_identical_ids)
    return _result(
        dataset, instructions, corpus_format, embedder, settings.search, ingested, searched, metrics
    )


@dataclass
class _Searched:
    """The searched collection and every query's ranked documents."""

    record: CollectionRecord
    mode: str
    chunks: int
    index: dict[str, Any]
    build: dict[str, Any]
    seconds: float
    run: dict[str, dict[str, float]]


def _search_collection(
    store: VectorStore,
    dataset: BeirDataset,
    *,
    location: Path,
    expected: CollectionRecord,
    ingested: _Build,
    embedder: Embedder,
    search_settings: SearchSettings,
    mode: str,
    top_k: int,
    twins: Mapping[str, tuple[str, ...]],
    keyword_weights: tuple[float, float] | None,
    on_progress: Callable[[str, int, int], None] | None,
) -> _Searched:
    """Record the build, check the collection, and search every query in it."""
    fresh = ingested.info["chunks_embedded"] > 0
    build = _build_info(location, store.collection, fresh=fresh, info=ingested.info)
    found = _searched_record(store, expected, keyword_weights)
    chunks = store.count()
    own = location / "collection" / store.collection  # the embedded store's folder of this collection
    index_info = {"points": chunks, "bytes_on_disk": _folder_bytes(own) if own.is_dir() else None}
    started = time.perf_counter()
    run = _search_queries(
        store,
        dataset,
        embedder=embedder,
        search_settings=search_settings,
        mode=mode,
        top_k=top_k,
        # Ask for more chunks than documents when documents were split, so that top_k
        # distinct documents remain after taking each document's best chunk.
        chunk_k=top_k if chunks <= dataset.corpus_size else top_k * 3,
        twins=twins,
        on_progress=on_progress,
    )
    seconds = time.perf_counter() - started
    return _Searched(found, mode, chunks, index_info, build, seconds, run)


def _result(
    dataset: BeirDataset,
    instructions: InstructionChoice,
    corpus_format: CorpusFormat,
    embedder: Embedder,
    search_settings: SearchSettings,
    ingested: _Build,
    searched: _Searched,
    metrics: Mapping[str, float],
) -> BeirResult:
    """The run's record: what was measured, how, and what it cost."""
    ingest_seconds = ingested.seconds
    return BeirResult(
        dataset=dataset.name,
        split=dataset.split,
        corpus_format=corpus_format,
        instructions=instructions.label,
        query_instruction=searched.record.instructions.get("query"),
        document_instruction=searched.record.instructions.get("document"),
        model=embedder.model_id,
        queries=len(dataset.queries),
        documents=dataset.corpus_size,
        chunks=searched.chunks,
        seconds=round(ingest_seconds + searched.seconds, 2),
        ingest_seconds=round(ingest_seconds, 2),
        search_seconds=round(searched.seconds, 2),
        docs_per_second=round(dataset.corpus_size / ingest_seconds, 2) if ingest_seconds else 0.0,
        failed_documents=ingested.failed,
        mode=searched.mode,
        fusion=search_settings.fusion_label() if len(MODES.get(searched.mode, ())) != 1 else None,
        representations=searched.record.representations.model_dump(mode="json", exclude_none=True),
        index=searched.index,
        extra={"build": searched.build},
        ndcg_at_10=round(metrics["ndcg_at_10"], 4),
        recall_at_100=round(metrics["recall_at_100"], 4),
        mrr_at_10=round(metrics["mrr_at_10"], 4),
        map_at_100=round(metrics["map_at_100"], 4),
    )
