"""The training-data builders: BEIR qrels, STS pairs and a collection's own chunks, to MEDI JSONL.

Tiny inputs are generated here (tests/training/buildersgen.py); one test reads SciFact train in
../shared. The instructions must be exactly those of embedder/instructions.py.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from buildersgen import BEIR_DOCS, BEIR_QUERIES, DOCUMENTS, make_beir, make_sts
from testdata import shared_path

from app.cli import main
from config import load_settings
from embedder.instructions import InstructionSet, build_instruction
from store.chunks import StoredChunk
from training.builders.beir import beir_records
from training.builders.common import count_tasks
from training.builders.negatives import Bm25Index, near_copy, pick_negative
from training.builders.passages import find_headings, inverse_cloze
from training.builders.sts import sts_records
from training.builders.unlabeled import collection_records, question_generator
from training.errors import TrainingDataError
from training.medi import read_medi

# -- BEIR -----------------------------------------------------------------------------------------


def _text(doc: str) -> str:
    title, text = BEIR_DOCS[doc]
    return f"{title} {text}"


def test_beir_records_task_instructions_and_positives(tmp_path: Path) -> None:
    folder = make_beir(tmp_path, "scifact")
    records = beir_records(folder)
    assert {r.task for r in records} == {"scifact"}
    science = InstructionSet.for_retrieval("science")
    assert all(
        r.query.instruction == science.query and r.pos.instruction == science.document for r in records
    )
    assert all(r.neg is None or r.neg.instruction == science.document for r in records)
    pairs = {(r.query.text, r.pos.text) for r in records}
    # relevance 0 (q1-d2) is no positive; the test split's query is not read
    assert pairs == {
        (BEIR_QUERIES["q1"], _text("d1")),
        (BEIR_QUERIES["q1"], _text("d4")),
        (BEIR_QUERIES["q1"], _text("d11")),
        (BEIR_QUERIES["q2"], _text("d5")),
        (BEIR_QUERIES["q2"], _text("d6")),
        (BEIR_QUERIES["q3"], _text("d7")),
    }
    assert records[0].pos.text == _text("d1")  # highest relevance first


def test_beir_negatives_are_never_positives_nor_their_copies(tmp_path: Path) -> None:
    records = beir_records(make_beir(tmp_path, "scifact"))
    positives_of: dict[str, set[str]] = {}
    for r in records:
        positives_of.setdefault(r.query.text, set()).add(r.pos.text)
    with_neg = [r for r in records if r.neg is not None]
    assert with_neg, "BM25 finds lexical neighbours in the tiny corpus"
    for r in with_neg:
        assert r.neg is not None
        assert r.neg.text not in positives_of[r.query.text]
        assert not near_copy(r.neg.text, r.pos.text)
        # d12 is d1 under another id and title: never d1's negative
        assert not (r.pos.text == _text("d1") and r.neg.text == _text("d12"))
    # the judged non-relevant document d2 may be a negative, positives never
    assert all(r.neg is None or r.neg.text != r.pos.text for r in records)


def test_beir_default_domains_and_override(tmp_path: Path) -> None:
    medicine = beir_records(make_beir(tmp_path / "a", "nfcorpus"), negatives="none")
    assert {r.task for r in medicine} == {"nfcorpus"}
    assert medicine[0].query.instruction == InstructionSet.for_retrieval("medicine").query
    other = beir_records(make_beir(tmp_path / "b", "mydata"), negatives="none")
    assert other[0].query.instruction == InstructionSet.for_retrieval("").query
    assert other[0].pos.instruction == "Represent the document for retrieval:"
    forced = beir_records(make_beir(tmp_path / "c", "scifact"), domain="legal", negatives="none")
    assert forced[0].pos.instruction == InstructionSet.for_retrieval("legal").document
    assert all(r.neg is None for r in medicine + other + forced)


def test_beir_seed_determinism_caps_and_sampling(tmp_path: Path) -> None:
    folder = make_beir(tmp_path, "scifact")
    first = beir_records(folder, seed=7)
    assert beir_records(folder, seed=7) == first
    capped = beir_records(folder, positives_per_query=1)
    assert len(capped) == 3
    assert next(r.pos.text for r in capped if r.query.text == BEIR_QUERIES["q1"]) == _text("d1")
    sampled = beir_records(folder, max_records=4, seed=3)
    assert len(sampled) == 4
    full = [(r.query, r.pos) for r in beir_records(folder, seed=3)]
    assert [(r.query, r.pos) for r in sampled] == [
        p for p in full if p in {(r.query, r.pos) for r in sampled}
    ]
    assert beir_records(folder, max_records=4, seed=3) == sampled
    with pytest.raises(TrainingDataError, match="negatives='dense'"):
        beir_records(folder, negatives="dense")
    with pytest.raises(TrainingDataError, match="max_records=0"):
        beir_records(folder, max_records=0)


def test_bm25_index_ranks_like_bm25_and_excludes() -> None:
    texts = ["aspirin fever", "aspirin aspirin aspirin headache", "cats sleep", "fever fever chills"]
    index = Bm25Index(texts)
    assert index.search(["aspirin"], [set()]) == [[1, 0]]  # more term frequency first; no zero scores
    assert index.search(["aspirin fever"], [{0}]) == [[3, 1]] or index.search(["aspirin fever"], [{0}]) == [
        [1, 3]
    ]
    assert index.search(["volcano"], [set()]) == [[]]
    assert pick_negative([], random.Random(0)) is None
    assert pick_negative([5, 6, 7, 8], random.Random(0)) in {7, 8}  # the top two ranks are skipped
    assert pick_negative([5], random.Random(0)) == 5
    assert pick_negative([5, 6, 7, 8], random.Random(0), reject=lambda c: c == 7) == 8
    assert pick_negative([5, 6, 7], random.Random(0), reject=lambda c: True) is None
    assert near_copy("Aspirin reduces fever.", "Title. aspirin reduces   fever. More text follows here.")
    assert not near_copy("aspirin reduces fever in adults", "cats sleep in warm sunlight all day")


@pytest.mark.shared_data
def test_scifact_train_counts_in_seconds() -> None:
    folder = shared_path("data", "beir", "scifact")
    started = time.perf_counter()
    records = beir_records(folder)
    seconds = time.perf_counter() - started
    assert len(records) == 919
    assert len({r.query.text for r in records}) <= 809
    assert count_tasks(records)["scifact"].with_negatives > 900
    assert seconds < 30, f"SciFact train took {seconds:.1f} s"


# -- STS ------------------------------------------------------------------------------------------


def test_sts_records_positives_negatives_and_directions(tmp_path: Path) -> None:
    path = make_sts(tmp_path / "sts-train.csv")
    records = sts_records(path)
    sts = InstructionSet.symmetric("sts").query
    assert {r.task for r in records} == {"stsb"}
    assert all(r.query.instruction == r.pos.instruction == sts for r in records)
    pairs = {(r.query.text, r.pos.text): r.neg for r in records}
    # 3.0 is below min_score; identical sentences teach nothing
    assert set(pairs) == {
        ("A man plays a guitar.", "A man is playing a guitar."),
        ("A woman slices an onion.", "A woman is cutting an onion."),
        ("A dog runs in the park.", "A dog is running through a park."),
    }
    # the low-scored partner of the same anchor is its negative; one without such a partner has none
    guitar = pairs[("A man plays a guitar.", "A man is playing a guitar.")]
    assert guitar is not None and guitar.text == "A woman slices an onion." and guitar.instruction == sts
    assert pairs[("A dog runs in the park.", "A dog is running through a park.")] is None
    # scores are symmetric: the onion sentence's low partner is the guitar anchor
    onion_first = pairs[("A woman slices an onion.", "A woman is cutting an onion.")]
    assert onion_first is not None and onion_first.text == "A man plays a guitar."
    both = sts_records(path, both_directions=True)
    assert len(both) == 6
    swapped = {(r.query.text, r.pos.text): r.neg for r in both}
    onion = swapped[("A woman is cutting an onion.", "A woman slices an onion.")]
    assert onion is not None and onion.text == "A man is playing a guitar."
    assert len(sts_records(path, min_score=3.0)) == 4
    with pytest.raises(TrainingDataError, match="max_negative_score"):
        sts_records(path, min_score=2.0, max_negative_score=2.0)


# -- a collection's own chunks --------------------------------------------------------------------


def _chunks() -> list[StoredChunk]:
    chunks = [
        StoredChunk(source=f"/docs/{name}", file_name=name, page=None, chunk_index=0, text=text)
        for name, text in DOCUMENTS.items()
    ]
    # a long report whose pages carry a running header, and a generic heading shared by two files
    header = "Journal of Ice Studies"
    for page in range(4):
        body = DOCUMENTS["glaciers.md"].split("\n\n")[1]
        chunks.append(
            StoredChunk(
                source="/docs/report.pdf",
                file_name="report.pdf",
                page=page + 1,
                chunk_index=page,
                text=f"{header}\n\nIntroduction\n{body} Page {page} adds more detail on ice.",
            )
        )
    chunks.append(
        StoredChunk("/docs/other.txt", "other.txt", None, 0, "Introduction\n" + DOCUMENTS["bread.txt"])
    )
    return chunks


def test_find_headings_in_text() -> None:
    found = {h.title: h.body for h in find_headings(DOCUMENTS["glaciers.md"])}
    assert set(found) == {"Glacier dynamics and valley erosion", "Moraines left by retreating ice"}
    assert found["Moraines left by retreating ice"].startswith("When a glacier retreats")
    assert "Moraines left" not in found["Glacier dynamics and valley erosion"]
    volcano = {h.title for h in find_headings(DOCUMENTS["volcanoes.txt"])}
    assert volcano == {"2.1 Magma chambers beneath the crust", "ERUPTION WARNING SIGNS"}
    assert find_headings(DOCUMENTS["bread.txt"]) == []
    wrapped = (
        "Results of the trial were clear.\nThe patients who took the\ndrug recovered faster than those "
        "on placebo, and the effect held for six months in every group that was followed.\n"
        "Table 2 Outcomes by group\nMost of the patients were older than sixty years and had "
        "other illnesses, which the analysis adjusted for in every model that was reported."
    )
    assert find_headings(wrapped) == []  # a wrapped line ending in a stop word, a caption


def test_inverse_cloze_removes_the_sentence() -> None:
    text = DOCUMENTS["bread.txt"]
    for seed in range(5):
        cloze = inverse_cloze(text, random.Random(seed))
        assert cloze is not None
        sentence, rest = cloze
        assert sentence in text and sentence not in rest
        assert len(rest) < len(text)
    assert inverse_cloze("One sentence only, with some words in it.", random.Random(0)) is None


def test_collection_records_kinds_instructions_and_negatives() -> None:
    chunks = _chunks()
    records = collection_records(chunks, domain="science", seed=1)
    tasks = count_tasks(records)
    assert set(tasks) == {"keywords", "title", "ict"}  # no questions without a generator
    document = InstructionSet.for_retrieval("science").document
    assert all(r.pos.instruction == document for r in records)
    assert all(r.neg is None or r.neg.instruction == document for r in records)
    assert tasks["keywords"].query_instruction == InstructionSet.for_keywords("science")
    assert tasks["title"].query_instruction == build_instruction("title", "text", "science")
    assert tasks["ict"].query_instruction == build_instruction("ict", "text", "science")
    titles = {r.query.text for r in records if r.task == "title"}
    # the running header and the heading two files share say nothing
    assert titles == {
        "Glacier dynamics and valley erosion",
        "Moraines left by retreating ice",
        "2.1 Magma chambers beneath the crust",
        "ERUPTION WARNING SIGNS",
    }
    source_of = {c.text: c.source for c in chunks}
    for r in records:
        if r.task == "ict":
            assert r.query.text not in r.pos.text
            assert any(r.query.text in c.text for c in chunks)
        if r.neg is not None:  # another file's chunk, never of a file holding the positive, nor a copy
            holders = {
                c.source
                for c in chunks
                if r.pos.text in c.text or (r.task == "ict" and r.query.text in c.text)
            }
            assert holders and source_of[r.neg.text] not in holders
            assert not near_copy(r.neg.text, r.pos.text)
    assert any(r.neg is not None for r in records)
    assert collection_records(chunks, domain="science", seed=1) == records


def test_collection_records_limits_and_options() -> None:
    chunks = _chunks()
    limited = collection_records(chunks, kinds=["ict", "title"], max_per_kind=2, negatives="none")
    assert [r.task for r in limited].count("ict") == 2 and [r.task for r in limited].count("title") == 2
    assert [r.task for r in limited][:2] == ["ict", "ict"]
    assert all(r.neg is None for r in limited)
    assert collection_records(chunks, kinds=["questions"]) == []
    assert collection_records([], kinds=["keywords"]) == []
    with pytest.raises(TrainingDataError, match="unknown kind 'summaries'"):
        collection_records(chunks, kinds=["summaries"])


class _WrittenQuestions:
    """Stands in for a loaded generator model: what the model wrote is not what this test checks."""

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, texts: list[str]) -> list[list[str]]:
        self.calls += 1
        return [[f"What does passage {n} say?", f"What does passage {n} say?", ""] for n in range(len(texts))]


def test_questions_come_only_from_a_generator(tmp_path: Path) -> None:
    assert question_generator(load_settings(data_dir=str(tmp_path))) is None
    writer = _WrittenQuestions()
    records = collection_records(_chunks(), kinds=["questions"], generator=writer, max_per_kind=3)
    assert [r.task for r in records] == ["questions"] * 3
    assert {r.query.instruction for r in records} == {InstructionSet.for_retrieval("").query}
    assert writer.calls == 1  # generation stops once enough questions are written


# -- the command line -----------------------------------------------------------------------------


def test_dataset_commands_write_medi_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_beir(tmp_path, "nfcorpus")
    out = tmp_path / "out" / "nf.jsonl"
    assert (
        main(["dataset", "beir", str(folder), "--out", str(out), "--json", "--data-dir", str(tmp_path)]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert read_medi(out) == beir_records(folder)
    assert summary["records"] == 6 and summary["tasks"]["nfcorpus"]["records"] == 6
    assert summary["tasks"]["nfcorpus"]["query_instruction"] == InstructionSet.for_retrieval("medicine").query

    sts = tmp_path / "sts.jsonl"
    assert main(["dataset", "sts", str(make_sts(tmp_path / "sts.csv")), "--out", str(sts)]) == 0
    printed = capsys.readouterr().out
    assert "stsb: 3 records, 2 with a hard negative" in printed
    assert read_medi(sts) == sts_records(tmp_path / "sts.csv")


def test_dataset_collection_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCUMENTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    store = ["--qdrant-path", str(tmp_path / "q"), "--backend", "fake", "--data-dir", str(tmp_path / "data")]
    assert main(["ingest", str(docs), "--collection", "notes", "--domain", "science", *store]) == 0
    capsys.readouterr()
    out = tmp_path / "notes.jsonl"
    code = main(["dataset", "collection", "--collection", "notes", "--out", str(out), "--json", *store])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["tasks"]) == {"keywords", "title", "ict"}
    assert (
        summary["tasks"]["title"]["document_instruction"] == InstructionSet.for_retrieval("science").document
    )
    assert any("no question generator" in note for note in summary["notes"])
    records = read_medi(out)
    assert len(records) == summary["records"]
    assert {r.query.text for r in records if r.task == "title"} >= {"Moraines left by retreating ice"}
