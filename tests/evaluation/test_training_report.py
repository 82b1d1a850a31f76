"""The fine-tuning comparison table of docs/benchmarks.md, rendered from saved results."""

from __future__ import annotations

from pathlib import Path

from evaluation.record import load_results, render, save_result


def test_one_row_per_model_with_quality_time_and_memory(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    for label, ndcg in (("A", 0.71), ("base", 0.64)):
        for mode in ("dense", "hybrid"):
            data = {
                "label": label,
                "dataset": "scifact",
                "mode": mode,
                "instructions": "default",
                "ndcg_at_10": ndcg,
            }
            save_result("training", f"{label}-scifact-{mode}", data, command="eval beir", docs=docs)
    save_result(
        "training",
        "A-train",
        {"label": "A", "steps": 120, "seconds": 900.5, "peak_rss_mb": 1500.0, "data": {"records": 3800}},
        command="train",
        docs=docs,
    )
    save_result(
        "training",
        "A-sts",
        {"label": "A", "spearman_sts_instruction": 0.83, "spearman_no_instruction": 0.82},
        command="eval sts",
        docs=docs,
    )
    assert len(load_results(docs)["training"]) == 6
    text = render(docs).read_text(encoding="utf-8")
    section = text[text.index("## Instruction fine-tuning") :]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| model | steps | records | train s | peak RSS MB | scifact dense instr |")
    assert rows[1].startswith("| base |"), "the model before fine-tuning comes first"
    cells = [cell.strip() for cell in rows[2].strip("|").split("|")]
    assert cells[:2] == ["A", "120"] and cells[2] == "3800"
    assert [float(cells[i]) for i in (3, 4, 5, 7)] == [900.5, 1500.0, 0.71, 0.71]
    assert cells[6] == "" and cells[8] == "", "runs without instructions were not recorded"
    assert [float(c) for c in cells[-2:]] == [0.83, 0.82]
