"""langchain_qdrant.QdrantVectorStore can search a collection written by our ingest."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdfgen import TOPICS, write_pdf

from config import Settings, load_settings
from embedder import Embedder, FakeEmbedder
from embedder.langchain import InstructorEmbeddings
from ingest import discover, ingest_files
from store.client import open_client
from store.core import VectorStore


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})


@pytest.fixture
def store(settings: Settings) -> Iterator[VectorStore]:
    client = open_client(settings)
    yield VectorStore(client, settings.qdrant.collection)
    client.close()


def _ingest_topics(tmp_path: Path, settings: Settings, store: VectorStore, embedder: Embedder) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for topic, text in TOPICS.items():
        write_pdf(folder / f"{topic}.pdf", [text])
    sources, _ = discover([folder])
    report = ingest_files(sources, settings=settings, embedder=embedder, store=store, domain="science")
    assert not report.failed


def _langchain_store(store: VectorStore, embedder: Embedder):  # type: ignore[no-untyped-def]
    from langchain_qdrant import QdrantVectorStore

    record = store.require_record()
    embeddings = InstructorEmbeddings.from_instruction_set(record.instruction_set, embedder=embedder)
    return QdrantVectorStore(
        client=store.client,
        collection_name=store.collection,
        embedding=embeddings,
        content_payload_key="page_content",
        metadata_payload_key="metadata",
    )


def test_langchain_qdrant_reads_our_collection(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    embedder = FakeEmbedder()
    _ingest_topics(tmp_path, settings, store, embedder)
    vectorstore = _langchain_store(store, embedder)
    # The fake embedder is lexical: a query sharing words with one document finds it.
    hits = vectorstore.similarity_search_with_score("magma chamber eruptions ash pumice lava", k=3)
    document, score = hits[0]
    assert document.metadata["file_name"] == "volcano.pdf"
    assert document.metadata["page"] == 1 and document.metadata["domain"] == "science"
    assert document.page_content.startswith("A volcano forms")
    assert document.metadata["char_end"] - document.metadata["char_start"] == len(document.page_content)
    assert 0 < score <= 1.0
    retriever = vectorstore.as_retriever(search_kwargs={"k": 1})
    assert retriever.invoke("kneading dough yeast gluten oven")[0].metadata["file_name"] == "bread.pdf"


@pytest.mark.real_model
def test_langchain_qdrant_semantic_search_with_the_real_model(
    tmp_path: Path, settings: Settings, store: VectorStore, real_embedder: Embedder
) -> None:
    real_settings = settings.model_copy(
        update={"model": settings.model.model_copy(update={"backend": "sentence-transformers"})}
    )
    _ingest_topics(tmp_path, real_settings, store, real_embedder)
    vectorstore = _langchain_store(store, real_embedder)
    questions = {
        "How do plants make sugar from sunlight?": "photosynthesis.pdf",
        "What happens when a mountain erupts?": "volcano.pdf",
        "How does immunisation protect people from infection?": "vaccine.pdf",
        "Which opening moves are played in the board game with kings and queens?": "chess.pdf",
    }
    for question, expected in questions.items():
        [top] = vectorstore.similarity_search(question, k=1)
        assert top.metadata["file_name"] == expected, question


def test_langchain_qdrant_leaves_out_pending_chunks_with_committed_filter(
    tmp_path: Path, settings: Settings, store: VectorStore
) -> None:
    """Chunks of a file still being ingested stay out of a LangChain search given committed_filter()."""
    from qdrant_client import models

    from store.payload import committed_filter

    embedder = FakeEmbedder()
    _ingest_topics(tmp_path, settings, store, embedder)
    text = "magma chamber eruptions ash pumice lava " * 3
    [vector] = embedder.embed([text], store.require_record().instruction_set.document)
    pending = models.PointStruct(
        id=str(uuid.uuid4()),
        vector=vector.tolist(),
        payload={"page_content": text, "metadata": {"file_name": "unfinished.pdf", "page": 1}},
    )
    store.upsert_chunks([pending])  # written as an ingest writes it, never committed
    vectorstore = _langchain_store(store, embedder)
    query = "magma chamber eruptions ash pumice lava"
    unfiltered = [d.metadata["file_name"] for d in vectorstore.similarity_search(query, k=2)]
    assert unfiltered[0] == "unfinished.pdf"  # LangChain alone sees the pending chunk
    filtered = [
        d.metadata["file_name"] for d in vectorstore.similarity_search(query, k=2, filter=committed_filter())
    ]
    assert "unfinished.pdf" not in filtered and filtered[0] == "volcano.pdf"
