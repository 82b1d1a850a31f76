"""PDF pages as images, rendered by pypdfium2 (which bundles PDFium): for OCR and for the page view.

pypdf reads the text layer; PDFium renders, because it draws everything a viewer draws (images,
vector outlines of text, form XObjects) and it opens the encrypted and slightly damaged files
pypdf opens. Both OCR (:mod:`ingest.ocr`) and the page view (:mod:`ingest.pageview`) render
through :func:`render_page`, so a page is drawn the same way for both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ingest.errors import DocumentError, PasswordError

if TYPE_CHECKING:
    import pypdfium2
    from PIL import Image

#: PDF user-space units per inch.
POINTS_PER_INCH = 72.0

# PDFium is not thread-safe: pypdfium2 asks callers to serialise every call into it.
PDFIUM_LOCK = threading.RLock()


@contextmanager
def open_document(
    data: bytes, *, file_name: str, password: str | None = None
) -> Iterator[pypdfium2.PdfDocument]:
    """Open a PDF with PDFium for the duration of the ``with`` block (holding :data:`PDFIUM_LOCK`).

    Args:
        data: the PDF's bytes.
        file_name: for messages.
        password: the user or owner password of an encrypted PDF.

    Yields:
        The open document (closed on exit).

    Raises:
        PasswordError: it is encrypted and ``password`` is missing or does not open it.
        DocumentError: PDFium cannot open it (malformed).
    """
    import pypdfium2

    with PDFIUM_LOCK:
        try:
            document = pypdfium2.PdfDocument(data, password=password or None)
        except pypdfium2.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise PasswordError(
                    f"{file_name!r} is an encrypted PDF and "
                    + ("the password given does not open it" if password else "needs a password"),
                    wrong=bool(password),
                ) from exc
            raise DocumentError(f"{file_name!r} cannot be opened for rendering ({exc})") from exc
        try:
            yield document
        finally:
            document.close()


def render_page(document: pypdfium2.PdfDocument, number: int, *, dpi: int) -> Image.Image:
    """Render one page as an RGB image (call it inside :func:`open_document`'s block).

    Args:
        document: the open document.
        number: 1-based page number.
        dpi: resolution; the image is ``page size in inches x dpi`` pixels.

    Returns:
        The page, with annotations and form fields drawn as a viewer shows them.

    Raises:
        DocumentError: no such page.
    """
    if not 1 <= number <= len(document):
        raise DocumentError(f"page {number} does not exist: the PDF has {len(document)} page(s)")
    with PDFIUM_LOCK:
        page = document[number - 1]
        try:
            bitmap = page.render(scale=dpi / POINTS_PER_INCH, may_draw_forms=True)
            image: Image.Image = bitmap.to_pil().convert("RGB")
        finally:
            page.close()
    return image
