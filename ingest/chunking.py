"""Split page text into chunks measured in model tokens.

The splitter is langchain-text-splitters' ``RecursiveCharacterTextSplitter`` with the
embedder's own token counter as its length function. It prefers paragraph breaks, then sentence
ends (Latin and CJK punctuation), then line breaks, then spaces. The chunk size comes from the
settings but is capped so that the document instruction, the chunk and the model's special
tokens fit the model together; a chunk that still counts more tokens (token counts of pieces
are not exactly additive) is split again.

Chunks never cross pages: each keeps its 1-based page number and its character span within the
(cleaned) page text. Chunk indices run over the whole file, in order.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ingest.errors import IngestCancelledError, IngestError, LimitExceededError

if TYPE_CHECKING:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from config import ChunkSettings
    from embedder import Embedder
    from ingest.extract import Page

logger = logging.getLogger(__name__)

#: Separators as regular expressions, most preferred first.
SEPARATORS: tuple[str, ...] = (
    r"\n\s*\n",  # paragraph
    r"(?<=[.!?…])\s+|(?<=[。！？])",  # sentence end (Latin: followed by whitespace; CJK: anywhere)
    r"\n",  # line
    r"(?<=[;:,])\s+",  # clause
    r"\s+",  # word
    "",  # character
)
#: Smallest chunk size the splitter is allowed to use (in tokens).
MIN_CHUNK_TOKENS = 8


@dataclass(frozen=True)
class Chunk:
    """One piece of a document.

    Attributes:
        index: position in the file (0-based, over all pages).
        text: the chunk's text.
        page: 1-based page number; ``None`` for text files.
        char_start: start offset in the page text.
        char_end: end offset (exclusive) in the page text.
    """

    index: int
    text: str
    page: int | None
    char_start: int
    char_end: int


class Chunker:
    """Splits pages into token-bounded chunks for one embedder and document instruction.

    Args:
        embedder: supplies ``count_tokens`` and ``token_budget``.
        size: wanted chunk size in tokens (capped at the token budget).
        overlap: tokens shared by neighbouring chunks (capped at half the size).
        instruction: the document instruction the chunks will be embedded with.
        strategy: ``recursive`` (split) or ``whole`` (one chunk per page; the model truncates).

    Raises:
        IngestError: the instruction leaves no room for text in the model.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        size: int,
        overlap: int,
        instruction: str | None,
        strategy: Literal["recursive", "whole"] = "recursive",
    ) -> None:
        self.embedder = embedder
        self.strategy = strategy
        self.budget = embedder.token_budget(instruction)
        if self.budget < MIN_CHUNK_TOKENS:
            raise IngestError(
                f"the document instruction {instruction!r} leaves only {self.budget} tokens for text in "
                f"{embedder.model_id} (max {embedder.max_seq_length}); use a shorter instruction"
            )
        self.size = min(size, self.budget)
        self.overlap = min(overlap, self.size // 2)
        if self.size < size:
            logger.info(
                "chunk size %d capped to %d tokens so that instruction + chunk fit %s",
                size,
                self.size,
                embedder.model_id,
            )
        # The splitter measures every piece more than once (when splitting and when merging).
        self._count_tokens = functools.lru_cache(maxsize=8192)(embedder.count_tokens)
        self._cancel: threading.Event | None = None  # of the split() in progress
        self._splitter = self._make_splitter(self.size, self.overlap)

    def _length(self, text: str) -> int:
        """The splitter's length function: token count, and the cheap place to notice a cancel."""
        if self._cancel is not None and self._cancel.is_set():
            raise IngestCancelledError("ingest cancelled while chunking")
        return self._count_tokens(text)

    def _make_splitter(self, size: int, overlap: int) -> RecursiveCharacterTextSplitter:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        return RecursiveCharacterTextSplitter(
            separators=list(SEPARATORS),
            is_separator_regex=True,
            keep_separator="end",
            chunk_size=size,
            chunk_overlap=overlap,
            length_function=self._length,
            strip_whitespace=True,
        )

    def split(
        self,
        pages: Iterable[Page],
        *,
        max_chunks: int | None = None,
        file_name: str = "the file",
        cancel: threading.Event | None = None,
    ) -> list[Chunk]:
        """Chunks of all pages, indexed in order.

        Args:
            pages: the document's pages (cleaned text).
            max_chunks: most chunks the file may have (``ingest.max_chunks_per_file``); splitting
                stops at the page that passes it. ``None``: no limit.
            file_name: the file, for the limit's message.
            cancel: checked while splitting; when set, splitting stops.

        Returns:
            The chunks; empty pages give none.

        Raises:
            LimitExceededError: more than ``max_chunks`` chunks.
            IngestCancelledError: ``cancel`` was set.
        """
        chunks: list[Chunk] = []
        self._cancel = cancel
        try:
            for page in pages:
                for text, start in self.split_page(page.text):
                    chunks.append(
                        Chunk(
                            index=len(chunks),
                            text=text,
                            page=page.number,
                            char_start=start,
                            char_end=start + len(text),
                        )
                    )
                if max_chunks is not None and len(chunks) > max_chunks:
                    raise _too_many_chunks(file_name, len(chunks), max_chunks, page.number)
        finally:
            self._cancel = None
        return chunks

    def split_page(self, text: str) -> list[tuple[str, int]]:
        """Chunks of one page as ``(text, start offset)`` pairs."""
        if not text.strip():
            return []
        if self.strategy == "whole":
            stripped = text.strip()
            return [(stripped, text.index(stripped))]
        return self._fit(text, 0, self._splitter, self.size, depth=0)

    def _fit(
        self,
        text: str,
        base: int,
        splitter: RecursiveCharacterTextSplitter,
        size: int,
        *,
        depth: int,
    ) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for piece, start in _locate(text, splitter.split_text(text)):
            if depth < 4 and self._count_tokens(piece) > self.budget:
                smaller = max(MIN_CHUNK_TOKENS, int(size * 0.75))
                out.extend(
                    self._fit(
                        piece,
                        base + start,
                        self._make_splitter(smaller, 0),
                        smaller,
                        depth=depth + 1,
                    )
                )
            else:
                out.append((piece, base + start))
        return out


def _too_many_chunks(file_name: str, count: int, limit: int, page: int | None) -> LimitExceededError:
    where = f" by page {page} (splitting stopped there)" if page is not None else ""
    return LimitExceededError(
        f"{file_name!r} splits into {count:,} chunks{where}, over the limit of {limit:,} per file "
        "(setting ingest.max_chunks_per_file, env INSTRUCTOR_SEARCH_INGEST__MAX_CHUNKS_PER_FILE); "
        "it was not ingested: split the file, raise the limit or use a larger chunk.size"
    )


def _locate(text: str, pieces: Sequence[str]) -> list[tuple[str, int]]:
    """Start offsets of in-order (possibly overlapping) substrings of ``text``."""
    located: list[tuple[str, int]] = []
    previous = -1
    for piece in pieces:
        start = text.find(piece, previous + 1)
        if start < 0:
            start = text.find(piece)
        if start < 0:  # cannot happen with strip_whitespace splitting; keep the chunk anyway
            logger.warning("chunk not found in its page text; its character span is approximate")
            start = max(previous, 0)
        located.append((piece, start))
        previous = start
    return located


def make_chunker(settings: ChunkSettings, embedder: Embedder, instruction: str | None) -> Chunker:
    """The chunker the settings describe, for this embedder and document instruction.

    Args:
        settings: the ``chunk`` section of the settings.
        embedder: the embedder the chunks are for.
        instruction: the document instruction.

    Returns:
        The chunker.
    """
    return Chunker(
        embedder,
        size=settings.size,
        overlap=settings.overlap,
        instruction=instruction,
        strategy=settings.strategy,
    )
