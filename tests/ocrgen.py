"""Inputs for the OCR tests, generated with Pillow and fpdf2: pictures of known text on small PDF pages.

Pages are 120 x 60 mm (945 x 472 pixels at the OCR's 200 dpi), so RapidOCR reads one in about a
second.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

from pdfgen import DEJAVU

#: Page size of the generated PDFs, in mm.
PAGE_MM = (120.0, 60.0)

PageKind = Literal["text", "blank", "image", "shifted"]


def text_image(lines: Sequence[str], *, size: int = 44) -> bytes:
    """A PNG of black text lines on white (DejaVu Sans), 1200 px wide."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(DEJAVU), size)
    image = Image.new("RGB", (1200, 40 + len(lines) * int(size * 1.6)), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((30, 20 + index * int(size * 1.6)), line, font=font, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def shift_letters(text: str, by: int = -1) -> str:
    """Each ASCII letter moved ``by`` places in the alphabet (``Christopher`` -> ``Bgqhrsnogdq``)."""
    out = []
    for ch in text:
        if "a" <= ch <= "z":
            out.append(chr((ord(ch) - 97 + by) % 26 + 97))
        elif "A" <= ch <= "Z":
            out.append(chr((ord(ch) - 65 + by) % 26 + 65))
        else:
            out.append(ch)
    return "".join(out)


def pages_pdf(pages: Sequence[tuple[PageKind, Sequence[str]]]) -> bytes:
    """A PDF of small pages, one per ``(kind, lines)``.

    * ``text``: the lines as a text layer (no image);
    * ``blank``: nothing;
    * ``image``: a picture of the lines, no text layer (a scan);
    * ``shifted``: a picture of the lines under an invisible text layer of the same lines
      letter-shifted (a garbled layer over a correct rendering).
    """
    from fpdf import FPDF
    from fpdf.enums import TextMode

    pdf = FPDF(format=PAGE_MM)
    pdf.set_auto_page_break(False)
    pdf.add_font("Body", fname=str(DEJAVU))
    pdf.set_font("Body", size=10)
    for kind, lines in pages:
        pdf.add_page()
        if kind == "text":
            pdf.set_xy(5, 5)
            pdf.multi_cell(110, 6, "\n".join(lines))
        elif kind in ("image", "shifted"):
            pdf.image(io.BytesIO(text_image(lines)), x=5, y=5, w=110)
            if kind == "shifted":
                pdf.text_mode = TextMode.INVISIBLE
                pdf.set_xy(5, 5)
                pdf.multi_cell(110, 6, "\n".join(shift_letters(line) for line in lines))
                pdf.text_mode = TextMode.FILL
    return bytes(pdf.output())
