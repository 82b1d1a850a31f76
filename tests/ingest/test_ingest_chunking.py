"""Chunking in model tokens: within the budget, per page, with exact character spans."""

from __future__ import annotations

import itertools
import threading
from typing import Literal

import pytest
from pdfgen import TOPICS, long_text

from embedder import FakeEmbedder
from ingest.chunking import Chunker
from ingest.errors import IngestCancelledError, IngestError, LimitExceededError
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


class _MeteredChunker(Chunker):
    """Counts the splitter's calls to its length function and the characters they measure."""

    calls = 0
    chars = 0

    def _length(self, text: str) -> int:
        self.calls += 1
        self.chars += len(text)
        return super()._length(text)


def _single_line_inputs(size: int) -> dict[str, str]:
    words = long_text("glacier", 1).replace("\n", " ").split()
    line = " ".join(words[i % len(words)] for i in range(size // 5))
    letters = "".join(chr(97 + (i * 7919 % 26)) for i in range(size))
    return {
        "paragraphs": long_text("glacier", size // 250 + 1)[:size],
        "one long token": letters,
        "aaaa": "a" * size,
        "words without newlines": line[:size],
    }


def test_chunking_work_is_linear_in_the_size_of_single_line_text() -> None:
    small, large = 250_000, 1_000_000
    work: dict[str, list[tuple[int, int, int]]] = {}
    for size in (small, large):
        for name, text in _single_line_inputs(size).items():
            chunker = _MeteredChunker(
                FakeEmbedder(max_seq_length=128), size=100, overlap=20, instruction=INSTRUCTION
            )
            chunks = chunker.split([Page(1, text)])
            assert chunks and "".join(c.text for c in chunks[:1]) in text
            work.setdefault(name, []).append((chunker.calls, chunker.chars, len(chunks)))
    for name, ((calls, chars, count), (calls4, chars4, count4)) in work.items():
        # 4x the text: about 4x the chunks, the length calls and the characters measured
        # (re-measuring growing strings or rescanning from the start would grow faster).
        assert count4 <= 4.2 * count, name
        assert calls4 <= 4.2 * calls, (name, calls, calls4)
        assert chars4 <= 4.2 * chars, (name, chars, chars4)
        assert chars4 <= 8 * large, (name, chars4)  # each character is measured a few times, not per chunk


def test_more_chunks_than_the_limit_stops_at_the_page_that_passes_it() -> None:
    chunker = _chunker(size=40, overlap=0)
    pages = [Page(n, long_text("volcano", 4)) for n in range(1, 51)]
    per_page = len(chunker.split(pages[:1]))
    assert len(chunker.split(pages, max_chunks=50 * per_page)) == 50 * per_page  # at the limit: fine
    with pytest.raises(LimitExceededError) as info:
        chunker.split(pages, max_chunks=3 * per_page, file_name="long.pdf")
    message = str(info.value)
    assert f"'long.pdf' splits into {4 * per_page} chunks by page 4" in message
    assert f"over the limit of {3 * per_page} per file" in message
    assert (
        "ingest.max_chunks_per_file" in message and "INSTRUCTOR_SEARCH_INGEST__MAX_CHUNKS_PER_FILE" in message
    )


def test_chunking_stops_when_cancelled() -> None:
    chunker = _chunker()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(IngestCancelledError):
        chunker.split([Page(1, long_text("bread", 3))], cancel=cancel)
    assert chunker.split([Page(1, long_text("bread", 3))])  # the next split is not cancelled
