"""Generate the sample corpus PDFs (ingest/sample_corpus/*.pdf) from the public-domain texts.

The texts live in scripts/sample_texts/*.txt: a few header lines (``title:``, ``author:``,
``note:``), then pages separated by ``=== page`` lines; within a page, a line on its own followed
by a blank line is a heading. Each text becomes one PDF with one or more pages per ``=== page``
block, and a title on the first page, so search hits cite real pages.

Run it with ``.venv/bin/python scripts/make_sample_corpus.py``; the PDFs are committed, so
``make run`` needs no generation step. Output is reproducible (fixed creation date).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ROOT / "scripts" / "sample_texts"
OUT = ROOT / "app" / "sample_corpus"
CREATED = datetime(2024, 1, 1, tzinfo=timezone.utc)


class _Pdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(format="A4")
        self.doc_title = title


def parse(path: Path) -> tuple[dict[str, str], list[str]]:
    header: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").split("\n")
    body_start = 0
    for index, line in enumerate(lines):
        if line.strip() == "=== page":
            body_start = index
            break
        key, _, value = line.partition(":")
        header[key.strip()] = value.strip()
    pages = "\n".join(lines[body_start:]).split("=== page")
    return header, [page.strip() for page in pages if page.strip()]


def render(path: Path, out_dir: Path) -> Path:
    header, pages = parse(path)
    pdf = _Pdf(header["title"])
    pdf.set_creation_date(CREATED)
    pdf.set_title(header["title"])
    pdf.set_author(header.get("author", ""))
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(22, 20, 22)
    for number, page in enumerate(pages):
        pdf.add_page()
        if number == 0:
            pdf.set_font("Helvetica", "B", 18)
            pdf.multi_cell(0, 9, header["title"], new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", "I", 11)
            pdf.multi_cell(0, 6, header.get("author", ""), new_x="LMARGIN", new_y="NEXT")
            if header.get("note"):
                pdf.multi_cell(0, 6, header["note"], new_x="LMARGIN", new_y="NEXT")
            pdf.ln(6)
        blocks = [block.strip() for block in page.split("\n\n") if block.strip()]
        for block in blocks:
            is_heading = (
                "\n" not in block and len(block) < 90 and not block.endswith((".", ";", "!", "?", '"'))
            )
            if is_heading:
                pdf.ln(2)
                pdf.set_font("Helvetica", "B", 13)
                pdf.multi_cell(0, 7, block, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            else:
                pdf.set_font("Times", "", 12)
                pdf.multi_cell(0, 6, " ".join(block.split()), new_x="LMARGIN", new_y="NEXT")
                pdf.ln(3)
    target = out_dir / (path.stem + ".pdf")
    pdf.output(str(target))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(TEXTS.glob("*.txt")):
        target = render(path, args.out)
        print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")


if __name__ == "__main__":
    main()
