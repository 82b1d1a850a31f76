"""The OCR measurements: the BEIR subset, image-only PDFs, engine scores and the report section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from beirgen import make_folder

from evaluation.beir import load_beir
from evaluation.ocr_report import ocr_section
from evaluation.pdfs import render_image_pdf
from evaluation.record import render, save_result
from evaluation.subsets import write_subset


def test_subset_keeps_judged_documents_and_the_queries_that_still_have_one(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    info = write_subset(folder, tmp_path / "sub", docs=2, seed=1)
    again = write_subset(folder, tmp_path / "sub2", docs=2, seed=1)
    assert info == {**again, "source": info["source"]}
    assert (tmp_path / "sub" / "corpus.jsonl").read_text() == (tmp_path / "sub2" / "corpus.jsonl").read_text()
    sub = load_beir(tmp_path / "sub", "test")
    kept = {json.loads(line)["_id"] for line in (tmp_path / "sub" / "corpus.jsonl").read_text().splitlines()}
    assert len(kept) == 2 and kept <= {"d1", "d2", "d3"}  # only judged documents; d4 is judged by none
    assert info["queries"] == len(sub.queries) == 2
    for qid, rels in sub.qrels.items():
        assert set(rels) <= kept and qid in sub.queries


def test_subset_larger_than_the_judged_documents_is_refused(tmp_path: Path) -> None:
    from evaluation.errors import EvaluationError

    with pytest.raises(EvaluationError, match="only 3 judged documents"):
        write_subset(make_folder(tmp_path), tmp_path / "sub", docs=4)


def test_image_pdf_has_no_text_layer_but_shows_the_text(tmp_path: Path) -> None:
    import pypdf
    import pypdfium2

    path = render_image_pdf(
        "Vitamin D", "Vitamin D and breast cancer risk. " * 20, tmp_path / "d.pdf", dpi=60
    )
    reader = pypdf.PdfReader(str(path))
    assert len(reader.pages) == 1
    assert reader.pages[0].extract_text().strip() == ""
    document = pypdfium2.PdfDocument(str(path))
    try:
        image = document[0].render(scale=0.5).to_pil().convert("L")
    finally:
        document.close()
    assert image.getextrema()[0] < 100  # dark pixels: the text is drawn
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob("*.text.pdf"))


@pytest.mark.ocr
def test_engine_score_against_a_ground_truth(tmp_path: Path) -> None:
    from evaluation.ocr import measure_engine

    text = "The quick brown fox jumps over the lazy dog."
    pdf = render_image_pdf("", text, tmp_path / "scan.pdf", dpi=150)
    truth = tmp_path / "scan.groundtruth.txt"
    truth.write_text(text + "\n")
    score = measure_engine(pdf, truth, engine="rapidocr", dpi=150)
    assert score.error is None
    assert score.cer is not None and score.cer < 0.1
    assert score.wer is not None and score.wer < 0.35
    missing = measure_engine(pdf, truth, engine="no-such-engine")
    assert missing.cer is None and missing.error and "no-such-engine" in missing.error


def _e2e() -> dict[str, object]:
    run = {
        "ndcg_at_10": 0.31,
        "recall_at_100": 0.5,
        "pages": 300,
        "ocr_pages": 0,
        "failed_files": 0,
        "ingest_seconds": 40.0,
    }
    image = {**run, "ndcg_at_10": 0.3, "ocr_pages": 300, "ingest_seconds": 900.0}
    return {
        "subset": {"documents": 300, "queries": 232, "judgements": 1189, "seed": 13},
        "text": run,
        "image": image,
    }


def test_ocr_section_renders_the_saved_parts(tmp_path: Path) -> None:
    save_result("ocr", "e2e", _e2e(), command="instructor-search eval ocr e2e --record", docs=tmp_path)
    score = {
        "engine": "rapidocr",
        "file": "scan.pdf",
        "cer": 0.05,
        "wer": 0.1,
        "cer_caseless": 0.04,
        "seconds": 2.0,
        "load_seconds": 0.1,
        "chars": 100,
        "error": None,
    }
    save_result("ocr", "accuracy", {"scores": [score]}, command="eval ocr accuracy", docs=tmp_path)
    text = render(tmp_path).read_text()
    assert "## OCR" in text
    assert "| rapidocr | scan.pdf | 0.0500 | 0.1000 |" in text
    assert "Gap (text - OCR): 0.01 nDCG@10 (target: within 0.03)." in text
    assert "load average" in text
    lines = ocr_section([])
    assert lines[0] == "## OCR"


@pytest.mark.ocr
@pytest.mark.real_model
def test_awkward_files_get_an_outcome_and_their_own_sentence_finds_them(
    tmp_path: Path, real_embedder: object
) -> None:
    from pdfgen import TOPICS, blank_pdf_bytes, write_pdf

    from config import load_settings
    from evaluation.pdf_outcomes import measure_outcomes, outcome_rows

    folder = tmp_path / "pdfs"
    folder.mkdir()
    write_pdf(folder / "a_text.pdf", [TOPICS["volcano"], TOPICS["vaccine"]])
    render_image_pdf(
        "",
        "Bread dough rises because yeast ferments sugar into carbon dioxide gas.",
        folder / "b_scan.pdf",
        dpi=120,
    )
    (folder / "c_blank.pdf").write_bytes(blank_pdf_bytes(2))
    settings = load_settings(data_dir=str(tmp_path / "data"))
    data = measure_outcomes(folder, settings=settings, embedder=real_embedder)  # type: ignore[arg-type]
    rows = {row["file"]: row for row in data["files"]}
    assert rows["a_text.pdf"]["status"] == "ingested" and rows["a_text.pdf"]["ocr_pages"] == []
    assert rows["a_text.pdf"]["found"] == 1 and rows["a_text.pdf"]["query_from"] == "stored text"
    assert rows["b_scan.pdf"]["status"] == "ingested" and rows["b_scan.pdf"]["ocr_pages"] == [1]
    assert rows["b_scan.pdf"]["found"] == 1
    assert rows["c_blank.pdf"]["status"] == "failed" and rows["c_blank.pdf"]["found"] is None
    assert "page" in rows["c_blank.pdf"]["message"]
    assert [row[0] for row in outcome_rows(data)] == ["a_text.pdf", "b_scan.pdf", "c_blank.pdf"]
