"""Label-free training records from a collection's own chunks: pseudo-queries, one task per kind.

What a real user has is their documents. Each kind turns a chunk into a pseudo-query and a
positive, under an instruction of its own from :mod:`embedder.instructions`; the positive is
always embedded under the product's document instruction for the collection's domain:

* ``keywords``: the chunk's key phrases (YAKE, :class:`representations.augmented.KeywordExtractor`)
  → the chunk (the keyword-summary task of arXiv 2409.16497), under the keyword instruction;
* ``title``: a heading found in the chunk (:func:`training.builders.passages.find_headings`) →
  the body under it, under the title instruction; a heading that repeats in several chunks of a
  file (a running header) or in several files (``Introduction``) says nothing and is skipped;
* ``ict``: one sentence → the rest of its passage without it (the inverse cloze task), under
  the ICT instruction;
* ``questions``: questions written by the configured generator model
  (``index.questions.generator``) → the chunk, under the query instruction. Without a generator
  this kind is skipped: questions are never made up.

Hard negatives are mined with BM25 over the same chunks (:mod:`training.builders.negatives`),
among the chunks of *other* files (never a copy or near copy of the positive, as
:func:`training.builders.negatives.near_copy` tells).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, get_args

from embedder.instructions import InstructionSet, build_instruction
from representations.augmented import KeywordExtractor, QuestionGenerator
from training.builders.common import check_limit, check_negatives, pair, seeded
from training.builders.negatives import Bm25Index, near_copy, pick_negative
from training.builders.passages import find_headings, inverse_cloze
from training.errors import TrainingDataError
from training.medi import MediRecord

if TYPE_CHECKING:
    from config import Settings
    from store.chunks import StoredChunk

#: The kinds of pseudo-queries.
Kind = Literal["keywords", "title", "ict", "questions"]
KINDS: tuple[Kind, ...] = get_args(Kind)
#: Shortest chunk a pseudo-query is made from, in words.
MIN_CHUNK_WORDS = 20
#: Key phrases extracted per chunk, and the most kept in a query once redundant ones are dropped.
KEYPHRASES_EXTRACTED = 10
KEYPHRASES_KEPT = 6
#: Chunks handed to the question generator at once.
QUESTION_BATCH = 8

#: ``progress(kind, chunks_done, chunks_total)`` while a kind is built.
Progress = Callable[[str, int, int], None]


class Generator(Protocol):
    """What writes questions: :class:`representations.augmented.QuestionGenerator`."""

    def generate(self, texts: Sequence[str]) -> list[list[str]]:
        """Questions per text."""
        ...


def question_generator(settings: Settings) -> QuestionGenerator | None:
    """The question generator ``index.questions`` configures (loaded now), or ``None`` without one.

    Raises:
        RepresentationError: the configured model cannot be loaded.
    """
    questions = settings.index.questions
    if not questions.generator:
        return None
    return QuestionGenerator(questions.generator, questions.count, questions.max_new_tokens)


def parse_kinds(kinds: Iterable[str]) -> tuple[Kind, ...]:
    """The kinds asked for, checked, without repeats.

    Raises:
        TrainingDataError: an unknown kind, or none; the message lists the valid ones.
    """
    chosen: list[Kind] = []
    for kind in kinds:
        name = kind.strip().lower()
        if name not in KINDS:
            raise TrainingDataError(f"unknown kind {kind!r}; use some of {', '.join(KINDS)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise TrainingDataError(f"no kind given; use some of {', '.join(KINDS)}")
    return tuple(chosen)


@dataclass(frozen=True)
class _Query:
    """A pseudo-query made from chunk ``chunk``, and its positive text."""

    chunk: int
    query: str
    positive: str


def _key_phrases(extractor: KeywordExtractor, text: str) -> str | None:
    """The chunk's key phrases as one query, phrases contained in a better one dropped."""
    kept: list[str] = []
    for phrase in extractor.extract(text):
        words = f" {' '.join(phrase.lower().split())} "
        if not any(words in f" {' '.join(other.lower().split())} " for other in kept):
            kept.append(phrase)
    return ", ".join(kept[:KEYPHRASES_KEPT]) if len(kept) >= 2 else None


def _informative_headings(chunks: Sequence[StoredChunk]) -> list[tuple[int, str, str]]:
    """``(chunk, heading, body)`` of the headings that name one part of one file.

    A heading text found in more than two chunks of a file (chunks overlap, so a real heading
    can be in two) is a running header; one found in several files is generic. Of a heading's
    copies in overlapping chunks, the longest body is kept.
    """
    found = [(i, h.title, h.body) for i, chunk in enumerate(chunks) for h in find_headings(chunk.text)]
    key = [" ".join(title.lower().split()) for _, title, _ in found]
    per_file = Counter((chunks[i].source, k) for (i, _, _), k in zip(found, key, strict=True))
    files = Counter(k for _, k in {(chunks[i].source, k) for (i, _, _), k in zip(found, key, strict=True)})
    best: dict[tuple[str, str], tuple[int, str, str]] = {}
    for (i, title, body), k in zip(found, key, strict=True):
        source = chunks[i].source
        if per_file[(source, k)] > 2 or files[k] > 1:
            continue
        current = best.get((source, k))
        if current is None or len(body) > len(current[2]):
            best[(source, k)] = (i, title, body)
    return sorted(best.values())


def _walk(
    kind: Kind, per_chunk: Iterator[list[_Query]], total: int, limit: int | None, progress: Progress | None
) -> list[_Query]:
    """Pseudo-queries chunk after chunk until ``limit`` are made, repeated pairs left out."""
    made: list[_Query] = []
    seen: set[tuple[str, str]] = set()
    for done, queries in enumerate(per_chunk, start=1):
        for query in queries:
            if (query.query, query.positive) not in seen and (limit is None or len(made) < limit):
                seen.add((query.query, query.positive))
                made.append(query)
        if progress is not None:
            progress(kind, done, total)
        if limit is not None and len(made) >= limit:
            break
    return made


def _generated(
    generator: Generator, chunks: Sequence[StoredChunk], order: Sequence[int]
) -> Iterator[list[_Query]]:
    """The generator's questions per chunk, written a batch at a time, only as far as they are read."""
    for start in range(0, len(order), QUESTION_BATCH):
        batch = list(order[start : start + QUESTION_BATCH])
        written = generator.generate([chunks[i].text for i in batch])
        for index, questions in zip(batch, written, strict=True):
            texts = dict.fromkeys(" ".join(q.split()) for q in questions)
            yield [_Query(index, text, chunks[index].text) for text in texts if text]


def _pseudo_queries(
    kind: Kind,
    chunks: Sequence[StoredChunk],
    order: Sequence[int],
    seed: int,
    generator: Generator | None,
) -> Iterator[list[_Query]]:
    """Per chunk of ``order``, the pseudo-queries of one kind (lazily: only what is read is made)."""
    if kind == "questions":
        if generator is not None:
            yield from _generated(generator, chunks, order)
        return
    if kind == "title":
        headings: dict[int, list[_Query]] = {}
        for index, title, body in _informative_headings(chunks):
            headings.setdefault(index, []).append(_Query(index, title, body))
        yield from (headings.get(index, []) for index in order)
        return
    extractor = KeywordExtractor(top_n=KEYPHRASES_EXTRACTED) if kind == "keywords" else None
    for index in order:
        text = chunks[index].text
        if extractor is not None:
            phrases = _key_phrases(extractor, text)
            yield [_Query(index, phrases, text)] if phrases else []
        else:
            cloze = inverse_cloze(text, seeded(seed, "ict", chunks[index].source, chunks[index].chunk_index))
            yield [_Query(index, cloze[0], cloze[1])] if cloze else []


def _instruction(kind: Kind, domain: str) -> str | None:
    """The query-side instruction of a kind."""
    if kind == "keywords":
        return InstructionSet.for_keywords(domain)
    if kind == "questions":
        return InstructionSet.for_retrieval(domain).query
    return build_instruction(kind, "text", domain)


def collection_records(
    chunks: Iterable[StoredChunk],
    *,
    domain: str = "",
    kinds: Iterable[str] = KINDS,
    seed: int = 42,
    max_per_kind: int | None = None,
    generator: Generator | None = None,
    negatives: str = "bm25",
    progress: Progress | None = None,
) -> list[MediRecord]:
    """Label-free MEDI records from a collection's chunks; each kind is a task of its own.

    Args:
        chunks: the collection's committed chunks (:meth:`store.core.VectorStore.iter_chunks`).
        domain: the collection's domain (the instructions' ``{domain}``).
        kinds: which of :data:`KINDS` to build (``questions`` only with a ``generator``).
        seed: the seed of the chunks' order per kind, of the drawn sentences and negatives.
        max_per_kind: the most records per kind (from a seeded random order of the chunks;
            ``None``: every chunk).
        generator: the question generator (see :func:`question_generator`); ``None`` skips
            the ``questions`` kind.
        negatives: ``bm25`` (one mined hard negative, from another file) or ``none``.
        progress: called as ``progress(kind, chunks_done, chunks_total)``.

    Returns:
        The records, kind after kind (the kinds' order as given).

    Raises:
        TrainingDataError: an unknown kind or negatives option, or a limit below 1.
    """
    chosen = parse_kinds(kinds)
    source = check_negatives(negatives)
    check_limit("max_per_kind", max_per_kind)
    usable = sorted(
        (c for c in chunks if len(c.text.split()) >= MIN_CHUNK_WORDS), key=lambda c: (c.source, c.chunk_index)
    )
    document = InstructionSet.for_retrieval(domain).document
    made: list[tuple[Kind, _Query]] = []
    for kind in chosen:
        order = list(range(len(usable)))
        seeded(seed, "order", kind).shuffle(order)
        queries = _pseudo_queries(kind, usable, order, seed, generator)
        made.extend((kind, query) for query in _walk(kind, queries, len(order), max_per_kind, progress))
    negative_of = _mine(usable, made, seed) if source == "bm25" and made else {}
    return [
        MediRecord(
            query=pair(_instruction(kind, domain), query.query),
            pos=pair(document, query.positive),
            neg=pair(document, usable[negative_of[n]].text) if n in negative_of else None,
            task=kind,
        )
        for n, (kind, query) in enumerate(made)
    ]


def _mine(chunks: Sequence[StoredChunk], made: Sequence[tuple[Kind, _Query]], seed: int) -> dict[int, int]:
    """Record number → the chunk of its BM25 hard negative, from another file and never a (near) copy."""
    index = Bm25Index([chunk.text for chunk in chunks])
    of_file: dict[str, set[int]] = {}
    of_text: dict[str, set[int]] = {}
    for position, chunk in enumerate(chunks):
        of_file.setdefault(chunk.source, set()).add(position)
        of_text.setdefault(_normal(chunk.text), set()).add(position)
    exclude = [
        of_file[chunks[q.chunk].source]
        | of_text[_normal(chunks[q.chunk].text)]
        | of_text.get(_normal(q.positive), set())
        for _, q in made
    ]
    ranked = index.search([q.query for _, q in made], exclude)
    negatives: dict[int, int] = {}
    for n, ((kind, q), candidates) in enumerate(zip(made, ranked, strict=True)):
        picked = pick_negative(
            candidates,
            seeded(seed, "negative", kind, chunks[q.chunk].source, q.query),
            reject=lambda c: near_copy(chunks[c].text, q.positive),  # noqa: B023 - called right here
        )
        if picked is not None:
            negatives[n] = picked
    return negatives


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()
