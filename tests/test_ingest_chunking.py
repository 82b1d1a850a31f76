"""Chunking in model tokens: within the budget, per page, with exact character spans."""

from __future__ import annotations

import itertools
from typing import Literal

import pytest
from pdfgen import TOPICS, long_text

from embedder import FakeEmbedder
from ingest.chunking import Chunker
from ingest.errors import IngestError
from ingest.extract import Page

INSTRUCTION = "Represent the document for retrieval:"


def _chunker(
    size: int = 60,
    overlap: int = 10,
    *,
    max_seq_length: int = 128,
    instruction: str = INSTRUCTION,
    strategy: Literal["recursive", "whole"] = "recursive",
) -> Chunker:
    return Chunker(
        FakeEmbedder(max_seq_length=max_seq_length),
        size=size,
        overlap=overlap,
        instruction=instruction,
        strategy=strategy,
    )


def test_chunks_fit_the_budget_and_spans_are_exact() -> None:
    chunker = _chunker()
    pages = [Page(1, long_text("volcano", 6)), Page(2, long_text("bread", 4))]
    chunks = chunker.split(pages)
    assert len(chunks) > 4
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert {chunk.page for chunk in chunks} == {1, 2}
    texts = {page.number: page.text for page in pages}
    for chunk in chunks:
        assert chunker.embedder.count_tokens(chunk.text) <= 60
        assert texts[chunk.page][chunk.char_start : chunk.char_end] == chunk.text
    # Pages are in order and chunks never cross a page.
    assert [chunk.page for chunk in chunks] == sorted(chunk.page or 0 for chunk in chunks)


def test_splits_prefer_paragraphs_then_sentences() -> None:
    chunker = _chunker(size=60, overlap=0)
    paragraphs = [TOPICS["chess"], TOPICS["glacier"], TOPICS["vaccine"]]  # each under 60 words
    chunks = chunker.split([Page(None, "\n\n".join(paragraphs))])
    assert [chunk.text for chunk in chunks] == paragraphs
    sentences = chunker.split([Page(None, " ".join(paragraphs))])
    for chunk in sentences:
        assert chunk.text.endswith("."), chunk.text  # cut at sentence ends, not mid-sentence


def test_overlap_repeats_text_between_neighbours() -> None:
    chunker = _chunker(size=40, overlap=15)
    chunks = chunker.split([Page(1, long_text("photosynthesis", 3))])
    assert len(chunks) >= 3
    overlapping = sum(1 for a, b in itertools.pairwise(chunks) if b.char_start < a.char_end)
    assert overlapping >= 1


def test_size_is_capped_by_instruction_and_model_limit() -> None:
    long_instruction = "Represent the " + "very " * 40 + "long document for retrieval:"
    chunker = _chunker(size=500, max_seq_length=64, instruction=long_instruction)
    assert chunker.budget == 64 - chunker.embedder.instruction_tokens(long_instruction)
    assert chunker.size == chunker.budget
    chunks = chunker.split([Page(1, long_text("glacier", 5))])
    assert max(chunker.embedder.count_tokens(chunk.text) for chunk in chunks) <= chunker.budget


def test_instruction_leaving_no_room_is_refused() -> None:
    with pytest.raises(IngestError, match="shorter instruction"):
        _chunker(max_seq_length=16, instruction="Represent " + "many words " * 10)


def test_text_without_separators_is_still_split() -> None:
    chunker = _chunker(size=20, overlap=0)
    cjk = "气候变化影响农业生产和水资源分配" * 30  # no spaces, no punctuation
    chunks = chunker.split([Page(1, cjk)])
    assert len(chunks) >= 1
    assert "".join(chunk.text for chunk in chunks) == cjk


def test_cjk_sentence_ends_are_split_points() -> None:
    chunker = _chunker(size=16, overlap=0)
    text = "。".join(f"第{i}句 中文 句子 内容 关于 天气 和 农业" for i in range(10)) + "。"
    chunks = chunker.split([Page(1, text)])
    assert len(chunks) > 1
    assert all(chunk.text.endswith("。") for chunk in chunks)


def test_whole_strategy_keeps_each_page_as_one_chunk() -> None:
    chunker = _chunker(strategy="whole")
    pages = [Page(1, long_text("vaccine", 5)), Page(2, "short page")]
    chunks = chunker.split(pages)
    assert [(c.page, c.text) for c in chunks] == [(1, pages[0].text), (2, "short page")]
