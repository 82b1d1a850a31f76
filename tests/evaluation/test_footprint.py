"""evaluation.footprint: corpora, the two stacks' peak memory in fresh processes, and the cold starts.

The figures are not asserted (the machine is shared); what is: each run reports its chunks, its
peak RSS and the RSS after each step, and a missing LangChain stack is reported, not raised.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from testdata import shared_path

from config import Settings, load_settings
from evaluation import footprint

NO_STACK = {"langchain_no_such_module": "langchain-no-such-package"}


def test_corpora_are_supersets_of_one_rendering(tmp_path: Path) -> None:
    corpora = footprint.build_corpora(tmp_path, {"1x": 2, "4x": 5}, None)
    small, large = (sorted(p.name for p in corpora[label].glob("*.pdf")) for label in ("1x", "4x"))
    assert len(small) == 2 and len(large) == 5 and small == large[:2]
    first = corpora["1x"] / small[0]
    assert first.stat().st_ino == (corpora["4x"] / small[0]).stat().st_ino  # one file, linked
    again = footprint.build_corpora(tmp_path, {"1x": 2, "4x": 5}, None)  # reused, not rendered again
    assert (again["1x"] / small[0]).stat().st_mtime == first.stat().st_mtime


@pytest.mark.shared_data
def test_corpora_are_nfcorpus_documents(tmp_path: Path) -> None:
    data = shared_path("data", "beir", "nfcorpus", "corpus.jsonl").parents[2]
    assert footprint.corpus_name(data) == "NFCorpus documents"
    corpora = footprint.build_corpora(tmp_path, {"1x": 1}, data)
    from pypdf import PdfReader

    [pdf] = corpora["1x"].glob("*.pdf")
    title, _ = next(footprint.documents(data))
    assert title.split()[0] in PdfReader(pdf).pages[0].extract_text()


def test_ours_is_measured_and_a_missing_langchain_stack_says_so(
    fake_settings: Settings, tmp_path: Path
) -> None:
    corpora = footprint.build_corpora(tmp_path / "corpora", {"1x": 2, "4x": 4}, None)
    result = footprint.measure_footprint(fake_settings, corpora, langchain=NO_STACK)
    for label in ("1x", "4x"):
        ours = result["runs"][f"ours-{label}"]
        assert ours["chunks"] >= ours["pdfs"] > 0
        assert ours["peak_rss_mb"] >= max(step["rss_mb"] for step in ours["steps"]) > 0
        assert [step["step"] for step in ours["steps"]][-1] == "first search (in-process index built)"
        assert "torch" not in ours["modules"]  # the fake embedder: no model stack at all
        assert result["runs"][f"langchain-{label}"] == {
            "stack": "langchain",
            "corpus": label,
            "pdfs": ours["pdfs"],
            "status": "not installed",
            "missing": ["langchain-no-such-package"],
        }
        assert result[f"peak_rss_mb_langchain_{label}"] is None
    assert result["runs"]["ours-4x"]["pdfs"] == 4


@pytest.mark.real_model
def test_langchain_stack_on_the_same_pdfs(tmp_path: Path) -> None:
    if footprint.langchain_missing():
        pytest.skip(f"the bench extra is not installed: {footprint.langchain_missing()}")
    settings = load_settings(data_dir=str(tmp_path / "data"))
    corpora = footprint.build_corpora(tmp_path / "corpora", {"1x": 2}, None)
    result = footprint.measure_footprint(settings, corpora)
    theirs, ours = result["runs"]["langchain-1x"], result["runs"]["ours-1x"]
    assert theirs["chunks"] > 0 and theirs["peak_rss_mb"] > 0
    assert {"torch", "sentence_transformers", "pypdf", "qdrant_client"} <= set(theirs["modules"])
    assert [step["step"] for step in theirs["steps"]][-2:] == ["ingest done", "first search"]
    assert result["peak_rss_ratio_1x"] == round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 3)


def test_cold_starts_reach_the_hits_and_the_first_page(fake_settings: Settings, tmp_path: Path) -> None:
    pdfs = sorted(footprint.build_corpora(tmp_path / "corpora", {"1x": 2}, None)["1x"].glob("*.pdf"))
    settings = footprint.start_collection(fake_settings, tmp_path / "cold", pdfs)
    search = footprint.measure_search_start(settings, "torch", 1)
    assert search["hits"] > 0 and search["process_s"] > 0 and len(search["runs_s"]) == 1
    page = footprint.measure_page_start(settings, "torch", 1)
    assert 0 < page["page_s"] < page["process_s"]
