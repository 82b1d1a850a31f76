"""Hostile and runaway inputs: image-heavy PDFs, decompression bombs, text and chunk limits."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest

from ingest.errors import DocumentError, IngestCancelledError, LimitExceededError
from ingest.extract import PageTextCache, extract_pdf, extract_text

ROOT = Path(__file__).resolve().parents[2]


class RawPdf:
    """A PDF written object by object in raw syntax (shared content streams, bombs, big images)."""

    def __init__(self) -> None:
        self.objects: list[bytes] = [b"", b""]  # 1: catalog, 2: page tree (written by build)
        self.font = self.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        self.pages: list[int] = []

    def add(self, body: bytes) -> int:
        self.objects.append(body)
        return len(self.objects)

    def stream(self, data: bytes, *, flate: bool = False, extra: bytes = b"") -> int:
        if flate:
            data = zlib.compress(data, 9)
            extra += b" /Filter /FlateDecode"
        return self.add(b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(data), extra, data))

    def page(self, content: int, images: dict[str, int] | None = None) -> None:
        xobjects = b" ".join(b"/%s %d 0 R" % (name.encode(), ref) for name, ref in (images or {}).items())
        self.pages.append(
            self.add(
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> /XObject << %s >> >> >>"
                % (content, self.font, xobjects)
            )
        )

    def build(self) -> bytes:
        self.objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
        kids = b" ".join(b"%d 0 R" % kid for kid in self.pages)
        self.objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(self.pages))
        out = bytearray(b"%PDF-1.7\n")
        offsets: list[int] = []
        for number, body in enumerate(self.objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
        xref = len(out)
        size = len(self.objects) + 1
        out += b"xref\n0 %d\n0000000000 65535 f \n" % size
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
        return bytes(out)


def grey_image(pdf: RawPdf, side: int) -> int:
    """A grey ``side`` x ``side`` FlateDecode image: tiny in the file, side² bytes decoded."""
    extra = (
        b" /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8"
    )
    return pdf.stream(bytes(side * side), flate=True, extra=extra % (side, side))


def text_ops(text: str, image: str | None = None) -> bytes:
    draw = f"q 200 0 0 200 72 400 cm /{image} Do Q\n" if image else ""
    return f"{draw}BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")


_PEAK_SCRIPT = """
import json, resource, sys
from pathlib import Path
from ingest.extract import PageTextCache, extract_pdf
data = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
extracted = extract_pdf(data, file_name="images.pdf", page_cache=PageTextCache())
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "after_kb": after, "pages": len(extracted.pages),
                  "first": extracted.pages[0].text}))
"""


def test_page_fingerprints_do_not_decode_images(tmp_path: Path) -> None:
    # 40 pages, each with its own 4000x4000 grey image: 16 MB decoded, ~16 KB encoded.
    side, count = 4000, 40
    pdf = RawPdf()
    for n in range(1, count + 1):
        image = grey_image(pdf, side)
        pdf.page(pdf.stream(text_ops(f"Page {n} shows a picture of a glacier.", "Im0")), {"Im0": image})
    path = tmp_path / "images.pdf"
    path.write_bytes(pdf.build())
    assert path.stat().st_size < 2_000_000  # decoded, the images are 640 MB
    run = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["pages"] == count and result["first"] == "Page 1 shows a picture of a glacier."
    grown_mb = (result["after_kb"] - result["before_kb"]) / 1024
    # Decoding every image for the fingerprint (and pypdf keeping the decoded copies) grew
    # the process by ~640 MB; the fingerprint now reads only the encoded bytes.
    assert grown_mb < 100, f"extraction grew the peak RSS by {grown_mb:.0f} MB"


def test_a_decompression_bomb_is_named_as_such() -> None:
    # One page whose content stream is ~80 KB in the file and 80 MB decompressed (pypdf stops at 75 MB).
    pdf = RawPdf()
    pdf.page(pdf.stream(text_ops("The visible text.") + b" " * 80_000_000, flate=True))
    pdf.page(pdf.stream(text_ops("A harmless second page.")))
    data = pdf.build()
    assert len(data) < 200_000
    for cache in (PageTextCache(), None):
        with pytest.raises(DocumentError) as info:
            extract_pdf(data, file_name="bomb.pdf", page_cache=cache)
        message = str(info.value)
        assert "'bomb.pdf': page 1 decompresses past pypdf's limit of 75,000,000 bytes" in message
        assert "decompression bomb" in message and "not ingested" in message
        assert "malformed" not in message


def test_text_over_the_char_limit_stops_extraction_early() -> None:
    # 200 pages share one content stream of ~1 MB of text: 200 M characters if all were extracted.
    pdf = RawPdf()
    line = b"(" + b"glacier moraine " * 40 + b") Tj T* "
    shared = pdf.stream(b"BT /F1 1 Tf 12 TL 72 720 Td " + line * 1_600 + b"ET", flate=True)
    for _ in range(200):
        pdf.page(shared)
    data = pdf.build()
    assert len(data) < 100_000
    cache = PageTextCache()
    with pytest.raises(LimitExceededError) as info:
        extract_pdf(data, file_name="runaway.pdf", page_cache=cache, max_chars=3_000_000)
    message = str(info.value)
    # ~1 M characters a page: extraction stopped at the page that passed the limit.
    assert "'runaway.pdf' has 3,071,997 characters of text by page 3 of 200" in message
    assert "over the limit of 3,000,000" in message and "not ingested" in message
    assert (
        "ingest.max_chars_per_file" in message and "INSTRUCTOR_SEARCH_INGEST__MAX_CHARS_PER_FILE" in message
    )
    assert cache.misses + cache.hits == 3


def test_text_file_over_the_char_limit_names_its_size() -> None:
    with pytest.raises(
        LimitExceededError, match=r"'big.txt' has 1,000,001 characters of text, over the limit of 1,000,000"
    ):
        extract_text(b"a" * 1_000_001, file_name="big.txt", max_chars=1_000_000)
    assert (
        extract_text(b"a" * 1_000_000, file_name="ok.txt", max_chars=1_000_000).pages[0].text
        == "a" * 1_000_000
    )


def test_extraction_stops_when_cancelled() -> None:
    pdf = RawPdf()
    for n in range(3):
        pdf.page(pdf.stream(text_ops(f"Page {n}.")))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(IngestCancelledError):
        extract_pdf(pdf.build(), file_name="c.pdf", cancel=cancel)
    with pytest.raises(IngestCancelledError):
        extract_text(b"some text", file_name="c.txt", cancel=cancel)
