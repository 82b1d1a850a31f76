"""The search service (retrieval.engine.search) against a real embedded Qdrant with the fake embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pdfgen import TOPICS, pdf_bytes
from qdrant_client import models

from app.service import SearchService
from config import Settings, load_settings
from embedder import FakeEmbedder
from ingest.sources import SourceFile
from retrieval.engine import MAX_QUERY_CHARS, search
from retrieval.errors import QueryError
from retrieval.filters import build_filter
from store.errors import CollectionMismatchError, CollectionNotFoundError
from store.payload import chunk_point_id


@pytest.fixture
def service(fake_settings: Settings) -> Iterator[SearchService]:
    svc = SearchService.open(fake_settings)
    yield svc
    svc.close()


def _pdf(name: str, pages: list[str]) -> SourceFile:
    return SourceFile(source="upload:" + name, file_name=name, data=pdf_bytes(pages))


def _txt(name: str, text: str, source: str | None = None) -> SourceFile:
    return SourceFile(source=source or "upload:" + name, file_name=name, data=text.encode())


@pytest.fixture
def corpus(service: SearchService) -> SearchService:
    report = service.ingest(
        [
            _pdf("nature.pdf", [TOPICS["photosynthesis"], TOPICS["volcano"], TOPICS["glacier"]]),
            _pdf("kitchen.pdf", [TOPICS["bread"], TOPICS["chess"]]),
            _txt("health.txt", TOPICS["vaccine"]),
        ]
    )
    assert [f.status for f in report.files] == ["ingested", "ingested", "ingested"]
    return service


def test_hit_carries_file_page_chunk_score_text_and_id(corpus: SearchService) -> None:
    result = corpus.search("magma chamber eruptions ash pumice lava", top_k=3)
    top = result.hits[0]
    assert (top.file_name, top.page, top.source) == ("nature.pdf", 2, "upload:nature.pdf")
    assert "magma chamber" in top.text
    assert isinstance(top.chunk_index, int) and top.chunk_index >= 0
    # the default mode is hybrid with DBSF: each ranking's scores are normalised by their mean
    # +- 3 standard deviations and summed, so a hit found by both scores near 1 + 1
    assert result.mode == "hybrid" and 0.0 < top.score < 2.5
    stored = corpus.client.retrieve(corpus.default_collection, ids=[top.id], with_payload=True)
    assert stored[0].payload["page_content"] == top.text
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_text_files_have_no_page(corpus: SearchService) -> None:
    top = corpus.search("immune system vaccine memory B cells", top_k=1).hits[0]
    assert (top.file_name, top.page) == ("health.txt", None)


def test_query_is_embedded_under_the_collection_query_instruction(service: SearchService) -> None:
    record = service.new_record(
        domain="", query_instruction="Represent the baking question for finding recipes:"
    )
    service.create_collection("recipes", record)
    service.ingest([_txt("bread.txt", TOPICS["bread"])], collection="recipes")
    # The settings' own instructions differ: the record must win.
    assert service.settings.instructions.query is None
    result = service.search("kneading gluten yeast", collection="recipes", top_k=1, mode="dense")
    assert result.instruction == "Represent the baking question for finding recipes:"
    hit = result.hits[0]
    vector = service.client.retrieve("recipes", ids=[hit.id], with_vectors=True)[0].vector
    if isinstance(vector, dict):  # named vectors (e.g. with sparse BM25): the dense one is unnamed
        vector = vector[""]
    expected = float(np.dot(service.embedder.embed(["kneading gluten yeast"], result.instruction)[0], vector))
    assert hit.score == pytest.approx(expected, abs=1e-5)
    other = float(np.dot(service.embedder.embed(["kneading gluten yeast"], None)[0], vector))
    assert hit.score != pytest.approx(other, abs=1e-5)


def test_top_k_threshold_and_filters(corpus: SearchService) -> None:
    # Score thresholds are cosine similarities: the dense mode (fused modes refuse them).
    assert len(corpus.search("the", top_k=2, mode="dense").hits) == 2
    everything = corpus.search("glacier ice valleys", top_k=10, mode="dense")
    assert len(everything.hits) == 6  # every chunk of the three small files
    cut = everything.hits[2].score
    above = corpus.search("glacier ice valleys", top_k=10, score_threshold=cut, mode="dense")
    assert above.hits and all(h.score >= cut for h in above.hits)
    assert len(above.hits) < len(everything.hits)
    assert corpus.search("glacier ice valleys", score_threshold=0.999, mode="dense").hits == []

    only_kitchen = corpus.search("glacier ice valleys", top_k=10, documents=["kitchen.pdf"])
    assert {h.file_name for h in only_kitchen.hits} == {"kitchen.pdf"}
    by_source = corpus.search("glacier", top_k=10, documents=["upload:health.txt", "nature.pdf"])
    assert {h.file_name for h in by_source.hits} == {"health.txt", "nature.pdf"}
    assert corpus.search("glacier", documents=["missing.pdf"]).hits == []
    assert len(corpus.search("glacier", domain="", top_k=10).hits) == 6
    assert corpus.search("glacier", domain="medicine").hits == []


def test_build_filter_empty_is_none() -> None:
    assert build_filter(None, None) is None
    assert build_filter([], None) is None


@pytest.mark.parametrize("query", ["", "   ", "\n\t "])
def test_empty_query_is_refused(corpus: SearchService, query: str) -> None:
    with pytest.raises(QueryError, match="empty"):
        corpus.search(query)


def test_over_long_query_is_refused_with_length_and_limit(corpus: SearchService) -> None:
    with pytest.raises(QueryError, match=rf"{MAX_QUERY_CHARS + 1} characters.*limit is {MAX_QUERY_CHARS}"):
        corpus.search("x" * (MAX_QUERY_CHARS + 1))
    words = " ".join(["word"] * 200)  # 1,000 characters but 200 tokens > the fake model's 128
    with pytest.raises(QueryError, match=r"200 tokens.*at most \d+ tokens"):
        corpus.search(words)


@pytest.mark.parametrize("top_k", [0, -1, 1001])
def test_bad_top_k(corpus: SearchService, top_k: int) -> None:
    with pytest.raises(QueryError, match="top_k"):
        corpus.search("glacier", top_k=top_k)


def test_missing_collection_says_how_to_create_it(service: SearchService) -> None:
    with pytest.raises(CollectionNotFoundError, match=r"does not exist.*instructor-search ingest"):
        service.search("anything", collection="nowhere")


def test_other_model_is_refused(corpus: SearchService) -> None:
    other = FakeEmbedder(dimension=32)
    with pytest.raises(CollectionMismatchError, match="dimension"):
        search("glacier", store=corpus.store(), embedder=other)


def test_chunks_of_uncommitted_or_stale_files_are_left_out(corpus: SearchService) -> None:
    store = corpus.store()
    instruction = store.require_record().instruction_set.document
    text = "zebra zebra zebra stripes savanna"
    vector = corpus.embedder.embed([text], instruction)[0].tolist()

    def point(source: str, sha: str) -> models.PointStruct:
        return models.PointStruct(
            id=chunk_point_id(sha, 0),
            vector=vector,
            payload={
                "page_content": text,
                "metadata": {"source": source, "file_name": "z.txt", "file_sha256": sha, "chunk_index": 0},
            },
        )

    # A file whose ingest has not committed its manifest yet, and an old version of a stored file.
    store.upsert_chunks([point("upload:z.txt", "a" * 64), point("upload:health.txt", "b" * 64)])
    result = corpus.search("zebra stripes savanna", top_k=5)
    assert "zebra" not in " ".join(h.text for h in result.hits)
    assert len(result.hits) == 5


def test_result_json_shape(corpus: SearchService) -> None:
    data = corpus.search("bread", top_k=2).to_json()
    assert set(data) >= {"hits", "query", "instruction", "collection"}
    assert len(data["hits"]) == 2
    for hit in data["hits"]:
        assert {"file_name", "page", "chunk_index", "score", "text", "id"} <= set(hit)


def test_service_uses_settings_top_k(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path), model={"backend": "fake"}, app={"top_k": 2})
    svc = SearchService.open(settings)
    try:
        svc.ingest([_pdf("nature.pdf", [TOPICS["photosynthesis"], TOPICS["volcano"], TOPICS["glacier"]])])
        assert len(svc.search("ice").hits) == 2
    finally:
        svc.close()
