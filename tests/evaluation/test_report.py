"""docs/benchmarks.md from the records: every configuration once, with its newest figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evaluation.record import render

SPARSE = {"vector": "bm25", "k1": 1.2, "b": 0.75}


def write_record(docs: Path, key: str, *, date: str, commit: str, **data: Any) -> None:
    """A ``beir`` record as ``eval beir --record`` saves it."""
    figures = {
        "dataset": "scifact",
        "split": "test",
        "corpus_format": "json",
        "instructions": "none",
        "query_instruction": None,
        "document_instruction": None,
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "mode": "hybrid",
        "fusion": "dbsf",
        "ndcg_at_10": 0.5,
        "recall_at_100": 0.9,
        "mrr_at_10": 0.5,
        "map_at_100": 0.5,
        "chunks": 10,
        "documents": 10,
        "ingest_seconds": 1.0,
        "docs_per_second": 10.0,
        "representations": {"sparse": {**SPARSE, "avg_length": 40.0}},
        **data,
    }
    environment = {
        "date": date,
        "commit": commit,
        "cpu": "CPU",
        "cores": 2,
        "python": "3.11",
        "packages": {"numpy": "2"},
    }
    entry = {
        "kind": "beir",
        "key": key,
        "command": f"eval {key}",
        "environment": environment,
        "data": figures,
    }
    folder = docs / "results" / "beir"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}.json").write_text(json.dumps(entry), encoding="utf-8")


def configuration_rows(markdown: str) -> list[str]:
    """The rows of the table with every configuration."""
    section = markdown.split("### Every configuration", 1)[1].split("\n\n", 2)[2]
    return [line for line in section.split("\n\n", 1)[0].splitlines()[2:]]


def test_the_newest_record_of_a_configuration_is_its_one_row(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    # Same configuration (a measured BM25 average length is not a setting), older and newer.
    write_record(docs, "older", date="2026-11-25 20:00 UTC", commit="aaaaaaa", ndcg_at_10=0.3471)
    write_record(
        docs,
        "newer",
        date="2026-11-26 09:30 UTC",
        commit="bbbbbbb",
        ndcg_at_10=0.3501,
        representations={"sparse": {**SPARSE, "avg_length": 31.0}},
    )
    markdown = render(docs).read_text(encoding="utf-8")
    rows = configuration_rows(markdown)
    assert len(rows) == 1
    assert "| scifact | test | json | hybrid | none | 0.3501 |" in rows[0]
    assert "| bbbbbbb | 2026-11-26 |" in rows[0]
    assert "0.3471" not in "\n".join(rows) and "aaaaaaa" not in "\n".join(rows)
    # The headline shows the current figure; the older run is only listed as superseded.
    headline = markdown.split("### At a glance", 1)[1].split("### Every configuration", 1)[0]
    assert "0.3501" in headline and "0.3471" not in headline
    assert "- `older` (2026-11-25 20:00 UTC, commit aaaaaaa, nDCG@10 0.3471) → `newer`" in markdown


def test_other_fusions_weights_and_instructions_are_other_configurations(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_record(docs, "dbsf", date="2026-11-25 20:00 UTC", commit="a", ndcg_at_10=0.35)
    write_record(docs, "rrf", date="2026-11-25 21:00 UTC", commit="b", fusion="rrf", ndcg_at_10=0.34)
    keywords = {"vector": "keywords", "chunk_weight": 0.9, "keyword_weight": 0.1}
    for key, weights in (("kw9", (0.9, 0.1)), ("kw7", (0.7, 0.3))):
        reps = {"keywords": {**keywords, "chunk_weight": weights[0], "keyword_weight": weights[1]}}
        write_record(
            docs,
            key,
            date="2026-11-25 22:00 UTC",
            commit="c",
            mode="keywords",
            fusion=None,
            representations=reps,
        )
    markdown = render(docs).read_text(encoding="utf-8")
    rows = configuration_rows(markdown)
    assert len(rows) == 4
    assert any("| dbsf |" in row for row in rows) and any("| rrf |" in row for row in rows)
    assert any("| keywords 0.9/0.1 |" in row for row in rows) and any(
        "| keywords 0.7/0.3 |" in row for row in rows
    )
    assert "Superseded runs" not in markdown


def test_each_instruction_wording_is_listed_once(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    science = {
        "query_instruction": "Represent the science question:",
        "document_instruction": "Represent the paper:",
    }
    plain = {
        "query_instruction": "Represent the question:",
        "document_instruction": "Represent the document:",
    }
    write_record(
        docs,
        "a-dense",
        date="2026-11-25 20:00 UTC",
        commit="a",
        instructions="default",
        mode="dense",
        fusion=None,
        **science,
    )
    write_record(docs, "a-hybrid", date="2026-11-25 20:01 UTC", commit="a", instructions="default", **science)
    write_record(docs, "b-hybrid", date="2026-11-25 20:02 UTC", commit="a", instructions="default", **plain)
    markdown = render(docs).read_text(encoding="utf-8")
    wordings = markdown.split("Instruction wordings", 1)[1].split("\n\n", 2)[1].splitlines()
    assert wordings == [
        "- `default (1)`: query `Represent the science question:`, document `Represent the paper:`",
        "- `default (2)`: query `Represent the question:`, document `Represent the document:`",
    ]
    rows = configuration_rows(markdown)
    assert len(rows) == 3
    assert (
        sum("| default (1) |" in row for row in rows) == 2
        and sum("| default (2) |" in row for row in rows) == 1
    )
