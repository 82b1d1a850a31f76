"""Render text to PDF for end-to-end measurements (fpdf2 with a bundled Unicode font)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from evaluation.errors import EvaluationError


@lru_cache(maxsize=1)
def unicode_font() -> Path:
    """DejaVu Sans as shipped inside matplotlib (a PyPI package), so every machine has it."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not path.is_file():
        raise EvaluationError(f"DejaVuSans.ttf not found at {path}; reinstall matplotlib")
    return path


def render_document_pdf(title: str, text: str, path: Path) -> Path:
    """Write a PDF with the title as a heading and the text as wrapped paragraphs.

    Args:
        title: document title (may be empty).
        text: body text.
        path: output file.

    Returns:
        ``path``.
    """
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("DejaVu", fname=str(unicode_font()))
    pdf.add_page()
    if title.strip():
        pdf.set_font("DejaVu", size=14)
        pdf.multi_cell(0, 7, title.strip())
        pdf.ln(3)
    pdf.set_font("DejaVu", size=10.5)
    pdf.multi_cell(0, 5.5, text.strip() or " ")
    tmp = path.with_suffix(".pdf.part")
    pdf.output(str(tmp))
    tmp.replace(path)
    return path


def render_image_pdf(title: str, text: str, path: Path, *, dpi: int = 150) -> Path:
    """Write the document of :func:`render_document_pdf` as an image-only PDF: no text layer at all.

    The text PDF is rendered first, then every page is rasterised by pypdfium2 and the pages are
    written back as greyscale images (Pillow), so the only way to read the text is OCR, as with
    a scan.

    Args:
        title: document title (may be empty).
        text: body text.
        path: output file.
        dpi: resolution of the page images.

    Returns:
        ``path``.
    """
    import pypdfium2

    source = render_document_pdf(title, text, path.with_name(f"{path.stem}.text.pdf"))
    document = pypdfium2.PdfDocument(str(source))
    try:
        images = [
            document[index].render(scale=dpi / 72).to_pil().convert("L") for index in range(len(document))
        ]
    finally:
        document.close()
    source.unlink()
    tmp = path.with_suffix(".pdf.part")
    images[0].save(tmp, "PDF", save_all=True, append_images=images[1:], resolution=float(dpi))
    tmp.replace(path)
    return path
