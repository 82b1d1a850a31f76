"""Every awkward PDF of the shared folder through the real ingest path: its outcome and a search for its own text.

Each file is ingested (the default settings, OCR in ``auto`` mode, a fresh page cache) into one
embedded collection, with the password its source documents where it has one. The table gives
its status, pages, the pages OCR'd and those without text, and the message. Every stored file is
then searched (dense, top 3) with one of its own sentences: from its ground truth where
:data:`KNOWN_SENTENCES` has one (the scans and the garbled file, whose stored text came from
OCR), else a sentence of its stored text. ``found`` is the rank of the file among the hits.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config import Settings, override
from ingest import SourceFile, ingest_files
from retrieval.engine import search
from store.client import open_client
from store.core import store_for

if TYPE_CHECKING:
    from embedder import Embedder
    from store.chunks import StoredChunk
    from store.core import VectorStore

#: Passwords of the encrypted sample files, as their source repositories document them.
PASSWORDS = {"encrypted_aes256_crazyones.pdf": "password"}

#: Real sentences of files whose stored text can only come from OCR (ground truth, not OCR output).
KNOWN_SENTENCES = {
    # the printed page (Mark Twain, Adventures of Huckleberry Finn, chapter 2)
    "scanned-image-only_huckleberry-finn-p22.pdf": "When we was passing by the kitchen I fell over a root and made a noise.",
    # the title of the report (C. J. C. Burges, MSR-TR-2010-82)
    "garbled-text-layer_ranknet-lambdarank.pdf": "From RankNet to LambdaRank to LambdaMART: An Overview",
}

_SENTENCE = re.compile(r"[^.!?\n]{40,200}[.!?]")


def _middle_chunks(store: VectorStore) -> dict[str, str]:
    """The text of each stored file's middle chunk, by source (one pass over the collection)."""
    by_source: dict[str, list[StoredChunk]] = {}
    for chunk in store.iter_chunks():
        by_source.setdefault(chunk.source, []).append(chunk)
    middle = {}
    for source, chunks in by_source.items():
        chunks.sort(key=lambda chunk: chunk.chunk_index)
        middle[source] = chunks[len(chunks) // 2].text
    return middle


def _own_sentence(text: str | None) -> str | None:
    """A sentence of a file's stored text (the longest of its middle chunk), or ``None``."""
    if text is None:
        return None
    sentences = sorted(_SENTENCE.findall(text.replace("\n", " ")), key=len, reverse=True)
    return sentences[0].strip() if sentences else " ".join(text.split()[:20]) or None


def _truth_sentence(pdf: Path) -> str | None:
    truth = pdf.with_suffix(".groundtruth.txt")
    if pdf.name in KNOWN_SENTENCES:
        return KNOWN_SENTENCES[pdf.name]
    if truth.is_file():
        # the longest whole sentence of the transcription (a line may be half a sentence)
        text = " ".join(truth.read_text(encoding="utf-8").split())
        sentences = sorted(_SENTENCE.findall(text), key=len, reverse=True)
        return sentences[0].strip() if sentences else None
    return None


def _rank(store: VectorStore, embedder: Embedder, query: str, file_name: str) -> int | None:
    result = search(query, store=store, embedder=embedder, top_k=3, mode="dense")
    for rank, hit in enumerate(result.hits, start=1):
        if hit.file_name == file_name:
            return rank
    return None


def measure_outcomes(
    folder: Path,
    *,
    settings: Settings,
    embedder: Embedder,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Ingest every PDF of ``folder`` one by one and search each stored one for its own sentence.

    Args:
        folder: ``../shared/data/pdfs``.
        settings: base settings (the store, data folder and collection are replaced by a
            temporary embedded one, so no page or OCR cache helps).
        embedder: the model.
        on_progress: called with (stage, done, total).

    Returns:
        ``{"files": [...], "seconds": ...}``, one row per PDF in name order.
    """
    pdfs = sorted(folder.glob("*.pdf"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="instructor-search-pdfs-") as tmp:
        run = override(
            settings,
            data_dir=tmp,
            qdrant={"path": str(Path(tmp) / "qdrant"), "url": None, "api_key": None, "collection": "pdfs"},
        )
        client = open_client(run)
        try:
            store = store_for(run, "pdfs", client=client)
            rows = [_ingest_one(pdf, run, embedder, store) for pdf in pdfs]
            middle = _middle_chunks(store)
            for index, (pdf, row) in enumerate(zip(pdfs, rows, strict=True), start=1):
                _search_row(pdf, row, store, embedder, middle.get(row["source"]))
                if on_progress:
                    on_progress("pdfs", index, len(pdfs))
        finally:
            client.close()
    return {"files": rows, "seconds": round(time.perf_counter() - started, 1)}


def _ingest_one(pdf: Path, settings: Settings, embedder: Embedder, store: VectorStore) -> dict[str, Any]:
    started = time.perf_counter()
    report = ingest_files(
        [SourceFile(source=str(pdf.resolve()), file_name=pdf.name, path=pdf)],
        settings=settings,
        embedder=embedder,
        store=store,
        password=PASSWORDS.get(pdf.name),
    )
    result = report.files[0]
    return {
        "file": pdf.name,
        "source": result.source,
        "status": result.status,
        "pages": result.pages,
        "chunks": result.chunks,
        "ocr_pages": list(result.ocr_pages),
        "empty_pages": list(result.empty_pages),
        "skipped_pages": {str(k): v for k, v in result.skipped_pages.items()},
        "message": result.error or result.warning or result.note,
        "seconds": round(time.perf_counter() - started, 2),
        "password": pdf.name in PASSWORDS,
    }


def _search_row(
    pdf: Path, row: dict[str, Any], store: VectorStore, embedder: Embedder, middle: str | None
) -> None:
    if row["status"] not in ("ingested", "replaced", "unchanged"):
        row.update(query=None, query_from=None, found=None)
        return
    truth = _truth_sentence(pdf)
    query = truth or _own_sentence(middle)
    row["query"] = query
    row["query_from"] = "ground truth" if truth else "stored text"
    row["found"] = _rank(store, embedder, query, pdf.name) if query else None


def outcome_rows(data: Mapping[str, Any]) -> list[list[Any]]:
    """The table rows of :func:`measure_outcomes`' result (for ``docs/benchmarks.md``)."""
    rows = []
    for row in data["files"]:
        message = row.get("message") or ""
        rows.append(
            [
                row["file"],
                row["status"],
                row["pages"] if row["pages"] is not None else "",
                _pages(row["ocr_pages"]),
                _pages(row["empty_pages"]),
                row["chunks"],
                row["found"] if row.get("found") else ("-" if row.get("query") is None else "not in top 3"),
                row.get("query_from") or "",
                row["seconds"],
                message[:140] + ("…" if len(message) > 140 else ""),
            ]
        )
    return rows


def _pages(pages: list[int]) -> str:
    if not pages:
        return ""
    return f"{len(pages)}: {', '.join(map(str, pages[:8]))}{'…' if len(pages) > 8 else ''}"
