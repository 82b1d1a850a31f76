"""Scanned pages for the front-door OCR tests: pictures of known text (Pillow) on small PDF pages (fpdf2).

Pages are 120 x 60 mm, so the OCR engine reads one in about a second.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

from pdfgen import DEJAVU

PageKind = Literal["text", "scan", "blank"]
PAGE_MM = (120.0, 60.0)


def _picture(lines: Sequence[str], size: int = 44) -> io.BytesIO:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(DEJAVU), size)
    image = Image.new("RGB", (1200, 40 + len(lines) * int(size * 1.6)), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((30, 20 + index * int(size * 1.6)), line, font=font, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def mixed_pdf(pages: Sequence[tuple[PageKind, Sequence[str]]]) -> bytes:
    """A PDF of small pages: ``text`` (a text layer), ``scan`` (a picture of the lines, no text layer) or ``blank``."""
    from fpdf import FPDF

    pdf = FPDF(format=PAGE_MM)
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=10)
    for kind, lines in pages:
        pdf.add_page()
        if kind == "text":
            pdf.set_xy(8, 8)
            pdf.multi_cell(104, 5, " ".join(lines))
        elif kind == "scan":
            pdf.image(_picture(lines), x=5, y=5, w=110)
    return bytes(pdf.output())
