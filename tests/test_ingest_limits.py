"""Hostile and runaway inputs: image-heavy PDFs, decompression bombs, text and chunk limits."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from ingest.errors import DocumentError
from ingest.extract import extract_text

ROOT = Path(__file__).resolve().parent.parent


def raw_pdf(pages: list[tuple[bytes, dict[str, bytes]]]) -> bytes:
    """A PDF written in raw syntax: each page is (content stream, {XObject name: image object}).

    Image objects are given as complete ``<<...>> stream ... endstream`` bodies.
    """
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: page tree (filled in below)
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")  # 3
    kids: list[int] = []
    for content, images in pages:
        names: list[bytes] = []
        for name, body in images.items():
            objects.append(body)
            names.append(b"/%s %d 0 R" % (name.encode(), len(objects)))
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        content_id = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> /XObject << %s >> >> >>" % (content_id, b" ".join(names))
        )
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        len(kids),
    )
    out = bytearray(b"%PDF-1.7\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def flate_image(side: int) -> bytes:
    """A grey ``side`` x ``side`` FlateDecode image object: tiny on disk, side² bytes decoded."""
    data = zlib.compress(bytes(side * side), 9)
    return (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream"
        % (side, side, len(data), data)
    )


def text_content(text: str, image: str | None = None) -> bytes:
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
    pages = [
        (text_content(f"Page {n} shows a picture of a glacier.", "Im0"), {"Im0": flate_image(side)})
        for n in range(1, count + 1)
    ]
    path = tmp_path / "images.pdf"
    path.write_bytes(raw_pdf(pages))
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
