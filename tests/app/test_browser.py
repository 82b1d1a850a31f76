"""A real browser against the real app: `streamlit run streamlit_app.py`, Debian chromium, the real model.

Each test starts the app as a subprocess on a free loopback port with a temporary data folder
and the default model (all-MiniLM-L6-v2), then drives chromium through Playwright: upload PDFs
made here with fpdf2, wait for the ingest, search, and check file name and page of the hits.
Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pdfgen import TOPICS, pdf_bytes

pytestmark = [pytest.mark.browser, pytest.mark.real_model, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SLOW = 240_000  # ms: first page load includes loading the model; ingest runs on a small CPU

LIGHTHOUSE = (
    "The lighthouse keeper climbed the spiral stairs of the tower on the rocky island every evening "
    "to light the great lamp. Through storms and fog he kept the beacon burning all night, so that "
    "passing ships could steer clear of the reef, and he sounded the fog horn when the light was hidden."
)
ORCHARD = (
    "In the apple orchard the trees blossom in spring, and honey bees carry pollen from flower to "
    "flower. Growers graft young shoots onto hardy rootstock, prune the branches in winter, and pick "
    "the ripe fruit in autumn before storing it in cool barns."
)
QUERIES = {
    "Who keeps the lamp burning on the island at night to warn ships?": ("lighthouse.pdf", 2),
    "How are fruit trees pollinated and grafted?": ("orchard.pdf", 3),
}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    """The app, started with `streamlit run` on a free port, against a temporary data folder."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("INSTRUCTOR_SEARCH_")}
    env.update(
        INSTRUCTOR_SEARCH_DATA_DIR=str(tmp_path / "data"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    log = (tmp_path / "streamlit.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "streamlit_app.py"),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.maxUploadSize",
        "50",
        "--browser.gatherUsageStats",
        "false",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"streamlit exited with {process.returncode}:\n{_tail(tmp_path / 'streamlit.log')}"
                )
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not come up on {url}:\n{_tail(tmp_path / 'streamlit.log')}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        log_text = _tail(tmp_path / "streamlit.log", 200_000)
        assert "Traceback" not in log_text, log_text


def _tail(path: Path, size: int = 4000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


def _pdf(tmp_path: Path, name: str, pages: list[str]) -> Path:
    path = tmp_path / name
    path.write_bytes(pdf_bytes(pages))
    return path


def _open(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(url)
    page.get_by_role("heading", name=re.compile("instructor-search")).wait_for(timeout=SLOW)
    return page


def _upload(page: Any, paths: list[Path]) -> None:
    page.get_by_role("tab", name=re.compile("Documents")).click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(p) for p in paths])
    for path in paths:
        page.get_by_text(path.name, exact=True).first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Upload and index").click()


def _wait_uploaded(page: Any, names: list[str]) -> None:
    page.get_by_text("Last upload").wait_for(timeout=SLOW)
    alerts = page.locator('[data-testid="stAlert"]')
    for name in names:
        line = alerts.filter(has_text=re.compile(re.escape(name) + r" — (ingested|replaced|unchanged)"))
        line.first.wait_for(timeout=30_000)


def _search(page: Any, query: str, expected_file: str) -> Any:
    page.get_by_role("tab", name=re.compile("Search")).click()
    box = page.get_by_label("Search your documents")
    box.fill(query)
    box.press("Enter")
    first = page.locator(".hit-card").first
    first.locator(".hit-file", has_text=expected_file).wait_for(timeout=SLOW)
    return first


def _errors(page: Any) -> list[str]:
    """Error messages and exceptions on the page."""
    found = [el.inner_text() for el in page.locator('[data-testid="stException"]').all()]
    for alert in page.locator('[data-testid="stAlert"]').all():
        if alert.locator('[data-testid="stAlertContentError"]').count():
            found.append(alert.inner_text())
    return found


def test_upload_two_pdfs_search_and_cite_file_and_page(chromium: Any, app_url: str, tmp_path: Path) -> None:
    lighthouse = _pdf(tmp_path, "lighthouse.pdf", [TOPICS["bread"], LIGHTHOUSE, TOPICS["chess"]])
    orchard = _pdf(tmp_path, "orchard.pdf", [TOPICS["volcano"], TOPICS["glacier"], ORCHARD])
    page = _open(chromium, app_url)
    page.get_by_text("No documents yet").first.wait_for(timeout=SLOW)

    _upload(page, [lighthouse, orchard])
    _wait_uploaded(page, ["lighthouse.pdf", "orchard.pdf"])
    assert page.get_by_text("2 documents · 6 chunks").count() == 1

    for query, (file_name, page_number) in QUERIES.items():
        card = _search(page, query, file_name)
        assert card.locator(".hit-page").inner_text() == f"page {page_number}"
        assert "score" in card.locator(".hit-score").inner_text()
        assert page.locator("mark").count() > 0  # query terms are highlighted
    assert page.get_by_text("query instruction").count() >= 1
    assert _errors(page) == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_search.png"), full_page=True)


def test_sessions_search_while_another_uploads(chromium: Any, app_url: str, tmp_path: Path) -> None:
    base = [
        _pdf(tmp_path, "lighthouse.pdf", [TOPICS["bread"], LIGHTHOUSE, TOPICS["chess"]]),
        _pdf(tmp_path, "orchard.pdf", [TOPICS["volcano"], TOPICS["glacier"], ORCHARD]),
    ]
    # A long document whose ingest takes a while on the real model: every page orders the topic
    # sentences differently, so no chunk repeats another and neither the embedding cache nor the
    # batch de-duplication can shorten the work (with identical pages the ingest ended too soon).
    sentences = [
        s.strip().rstrip(".") + "." for text in TOPICS.values() for s in text.split(". ") if s.strip()
    ]
    shuffler = random.Random(7)
    big_pages = [f"Report {i}. " + " ".join(shuffler.sample(sentences, len(sentences))) for i in range(60)]
    big_pages[13] += " The observatory on the mountain tracks comets with a large refracting telescope."
    big = _pdf(tmp_path, "almanac.pdf", big_pages)

    uploader = _open(chromium, app_url)
    _upload(uploader, base)
    _wait_uploaded(uploader, ["lighthouse.pdf", "orchard.pdf"])

    readers = [_open(chromium, app_url) for _ in range(3)]
    for reader in readers:
        _search(reader, next(iter(QUERIES)), "lighthouse.pdf")

    _upload(uploader, [big])
    uploader.locator('[data-testid="stProgress"]').first.wait_for(timeout=60_000)

    overlapped = 0
    for round_number in range(3):
        for index, reader in enumerate(readers):
            query = list(QUERIES)[(round_number + index + 1) % 2]
            box = reader.get_by_label("Search your documents")
            box.fill(query)
            box.press("Enter")
        for index, reader in enumerate(readers):
            query = list(QUERIES)[(round_number + index + 1) % 2]
            file_name, page_number = QUERIES[query]
            first = reader.locator(".hit-card").first
            first.locator(".hit-file", has_text=file_name).wait_for(timeout=SLOW)
            assert first.locator(".hit-page").inner_text() == f"page {page_number}"
            if uploader.locator('[data-testid="stProgress"]').count():  # the ingest is still running
                overlapped += 1
    assert overlapped > 0, "the upload finished before any search; make the document longer"

    _wait_uploaded(uploader, ["almanac.pdf"])
    for reader in [*readers, uploader]:
        card = _search(reader, "Where are comets tracked with a telescope?", "almanac.pdf")
        assert card.locator(".hit-page").inner_text() == "page 14"
        assert _errors(reader) == []
    assert _errors(uploader) == []
    ARTIFACTS.mkdir(exist_ok=True)
    uploader.screenshot(path=str(ARTIFACTS / "browser_concurrent.png"), full_page=True)


def test_cancel_an_upload_keeps_stored_files_and_frees_the_lock(
    chromium: Any, app_url: str, tmp_path: Path
) -> None:
    """Cancel a long upload: stored files stay (and are found), the rest is rolled back; a second
    session's upload waits for the first (and says so) and goes through once it is cancelled."""
    lighthouse = _pdf(tmp_path, "lighthouse.pdf", [TOPICS["bread"], LIGHTHOUSE, TOPICS["chess"]])
    orchard = _pdf(tmp_path, "orchard.pdf", [TOPICS["volcano"], TOPICS["glacier"], ORCHARD])
    sentences = [
        s.strip().rstrip(".") + "." for text in TOPICS.values() for s in text.split(". ") if s.strip()
    ]
    shuffler = random.Random(11)
    pages = [f"Ledger {i}. " + " ".join(shuffler.sample(sentences, len(sentences))) for i in range(300)]
    pages[13] += " The observatory on the mountain tracks comets with a large refracting telescope."
    big = _pdf(tmp_path, "almanac.pdf", pages)  # ~600 chunks: long enough to cancel in the middle
    later = _pdf(tmp_path, "later.pdf", [ORCHARD + " Cider is pressed from the apples in autumn."])

    uploader, other = _open(chromium, app_url), _open(chromium, app_url)
    _upload(uploader, [lighthouse, orchard, big])
    progress = uploader.locator('[data-testid="stProgress"]')
    for name in ("lighthouse.pdf", "orchard.pdf"):
        progress.filter(has_text=f"{name}: stored").wait_for(timeout=SLOW)
    assert progress.filter(has_text="almanac.pdf: stored").count() == 0, "the upload ended too soon"

    _upload(other, [later])  # the second session's upload waits for the write lock
    other.get_by_text(re.compile("Waiting for another upload or delete to finish")).wait_for(timeout=60_000)

    uploader.get_by_role("button", name=re.compile("Cancel upload")).click()
    uploader.get_by_text("Last upload").wait_for(timeout=SLOW)
    alerts = uploader.locator('[data-testid="stAlert"]')
    for name in ("lighthouse.pdf", "orchard.pdf"):
        alerts.filter(has_text=re.compile(re.escape(name) + " — ingested")).first.wait_for(timeout=30_000)
    alerts.filter(has_text=re.compile(r"almanac\.pdf — cancelled")).first.wait_for(timeout=30_000)
    # The second session's upload starts as soon as the lock is free, so this page may already count it.
    stored = re.compile(r"^(2 documents · 6 chunks|3 documents · 7 chunks)$")
    assert uploader.get_by_text(stored).count() == 1

    _wait_uploaded(other, ["later.pdf"])  # cancelling released the lock
    for query, (file_name, page_number) in QUERIES.items():
        card = _search(uploader, query, file_name)
        assert card.locator(".hit-page").inner_text() == f"page {page_number}"
    other.get_by_role("tab", name=re.compile("Search")).click()
    box = other.get_by_label("Search your documents")
    box.fill("Where are comets tracked with a telescope?")
    box.press("Enter")
    other.locator(".hit-card").first.wait_for(timeout=SLOW)
    found = other.locator(".hit-card .hit-file").all_inner_texts()
    assert found and "almanac.pdf" not in found, found  # nothing of the cancelled file is searchable
    _search(other, "When is cider pressed from the apples?", "later.pdf")
    assert _errors(uploader) == [] and _errors(other) == []
    ARTIFACTS.mkdir(exist_ok=True)
    uploader.screenshot(path=str(ARTIFACTS / "browser_cancel.png"), full_page=True)


def test_a_hit_opens_on_its_page_with_the_passage_highlighted_and_its_file_downloads(
    chromium: Any, app_url: str, tmp_path: Path
) -> None:
    lighthouse = _pdf(tmp_path, "lighthouse.pdf", [TOPICS["bread"], LIGHTHOUSE, TOPICS["chess"]])
    page = _open(chromium, app_url)
    _upload(page, [lighthouse])
    _wait_uploaded(page, ["lighthouse.pdf"])
    query = next(q for q, (name, _) in QUERIES.items() if name == "lighthouse.pdf")
    card = _search(page, query, "lighthouse.pdf")
    assert card.locator(".hit-page").inner_text() == "page 2"
    assert page.locator('img[src*="/media/"]').count() == 0  # no page is rendered before it is asked for

    page.get_by_text("Show page", exact=True).first.click()
    image = page.locator('img[src*="/media/"]').first
    image.wait_for(state="visible", timeout=60_000)
    page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=image.element_handle(), timeout=30_000
    )
    size = image.evaluate("el => [el.naturalWidth, el.naturalHeight]")
    assert size[1] > size[0] > 300, size  # an upright A4 page at the page view's resolution
    assert page.get_by_text("page 2 of 3 · passage highlighted").count() == 1

    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name=re.compile("Download lighthouse.pdf")).click()
    assert download.value.suggested_filename == "lighthouse.pdf"
    assert Path(download.value.path()).read_bytes() == lighthouse.read_bytes()
    assert _errors(page) == []
    ARTIFACTS.mkdir(exist_ok=True)
    image.screenshot(path=str(ARTIFACTS / "browser_page_image.png"))
    page.screenshot(path=str(ARTIFACTS / "browser_page_view.png"), full_page=True)
