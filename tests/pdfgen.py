"""Small real input files for the ingest tests: PDFs written with fpdf2 and pypdf, generated in the test."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

#: Distinct, real-language paragraphs (one topic each) to build documents from.
TOPICS: dict[str, str] = {
    "photosynthesis": (
        "Photosynthesis is the process by which green plants use sunlight to turn water and carbon "
        "dioxide into glucose and oxygen. Chlorophyll in the chloroplasts absorbs red and blue light. "
        "The light reactions split water; the Calvin cycle then fixes carbon into sugars."
    ),
    "volcano": (
        "A volcano forms where molten rock from a magma chamber reaches the surface of the crust. "
        "Explosive eruptions throw ash and pumice high into the atmosphere, while basaltic lava flows "
        "spread slowly across the ground. Many volcanoes sit along tectonic plate boundaries."
    ),
    "bread": (
        "Baking bread starts with flour, water, salt and yeast. Kneading develops gluten, which traps "
        "the carbon dioxide released by fermenting yeast so that the dough rises. A hot oven sets the "
        "crumb and browns the crust through the Maillard reaction."
    ),
    "chess": (
        "In chess, each player starts with sixteen pieces: a king, a queen, two rooks, two bishops, two "
        "knights and eight pawns. The aim is to checkmate the opposing king. Openings such as the "
        "Sicilian Defence and the Queen's Gambit have been studied for centuries."
    ),
    "glacier": (
        "Glaciers are rivers of ice that move slowly downhill under their own weight. As they flow they "
        "carve U-shaped valleys, deposit moraines and leave polished bedrock behind. Melting glaciers "
        "feed rivers in summer and raise the sea level."
    ),
    "vaccine": (
        "A vaccine trains the immune system to recognise a pathogen without causing the disease. It "
        "contains weakened or inactivated microbes, or pieces of them such as proteins or messenger RNA. "
        "Memory B cells and T cells then respond quickly to a later infection."
    ),
}


def pdf_bytes(pages: Sequence[str], *, unicode_font: Path | None = None) -> bytes:
    """A PDF with one page per text (core Helvetica: Latin-1 only, unless a TTF is given)."""
    from fpdf import FPDF

    pdf = FPDF()
    if unicode_font is not None:
        pdf.add_font("Body", fname=str(unicode_font))
        pdf.set_font("Body", size=11)
    else:
        pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def write_pdf(path: Path, pages: Sequence[str], *, unicode_font: Path | None = None) -> Path:
    path.write_bytes(pdf_bytes(pages, unicode_font=unicode_font))
    return path


def encrypted_pdf_bytes(text: str, *, user_password: str, owner_password: str) -> bytes:
    """A PDF encrypted with pypdf (AES-256); ``user_password=""`` makes an owner-password-only PDF."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([text]))))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_only_pdf_bytes() -> bytes:
    """A one-page 'scan': a picture of text, no text layer."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (600, 200), "white")
    ImageDraw.Draw(image).text((20, 80), "This text is only pixels, like a scanned page.", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(buffer, x=10, y=10, w=180)
    return bytes(pdf.output())


def blank_pdf_bytes(pages: int = 1) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
    return bytes(pdf.output())


def long_text(topic: str, repeats: int) -> str:
    """A long document about one topic: its paragraph, repeated with numbered variations."""
    base = TOPICS[topic]
    return "\n\n".join(f"Section {index + 1}. {base}" for index in range(repeats))
