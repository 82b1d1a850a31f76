"""The Streamlit page through streamlit.testing.v1.AppTest: real embedded Qdrant, fake embedder.

The page runs exactly as `streamlit run streamlit_app.py` runs it (settings from INSTRUCTOR_SEARCH_*
environment variables). Uploads go through AppTest's file_uploader support, i.e. the same form
and handler a browser uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from pdfgen import TOPICS, encrypted_pdf_bytes, pdf_bytes
from streamlit.testing.v1 import AppTest

from app.ui import highlight, hit_card_html, md_escape, outcome_line, query_terms
from ingest.sources import FileResult
from retrieval.engine import Hit

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _fresh_resources() -> Iterator[None]:
    """Each test gets its own cached client (its own temp store); the cache is cleared after."""
    yield
    st.cache_resource.clear()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("INSTRUCTOR_SEARCH_DATA_DIR", str(data))
    monkeypatch.setenv("INSTRUCTOR_SEARCH_MODEL__BACKEND", "fake")
    return data


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _plain(markdown: str) -> str:
    """Markdown as the reader sees it (the page escapes user text with backslashes)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _texts(at: AppTest, kind: str) -> list[str]:
    return [_plain(str(el.value)) for el in at.get(kind)]


def _all_text(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "html"):
        parts.extend(_texts(at, kind))
    html_bodies = [el.proto.body for el in at.get("html")]
    return "\n".join(parts + html_bodies)


def _upload(at: AppTest, files: list[tuple[str, bytes, str]]) -> AppTest:
    at.file_uploader(key="uploads").set_value(files)
    at.button(key="FormSubmitter:upload-Upload and index").click()
    at.run()
    assert not at.exception, at.exception
    return at


def _search(at: AppTest, query: str) -> AppTest:
    at.text_input(key="query").input(query)
    at.run()
    assert not at.exception, at.exception
    return at


def _cards(at: AppTest) -> list[str]:
    return [el.proto.body for el in at.get("html") if "hit-card" in el.proto.body]


def test_empty_state(data_dir: Path) -> None:
    at = _app()
    assert at.title[0].value.endswith("instructor-search")
    assert any("No documents yet" in text for text in _texts(at, "info"))
    assert "Represent the question for retrieving supporting documents:" in [c.value for c in at.code]
    assert at.selectbox(key="collection").value == "documents"
    assert not at.error


def test_upload_search_and_delete(data_dir: Path) -> None:
    at = _app()
    nature = pdf_bytes([TOPICS["photosynthesis"], TOPICS["volcano"], TOPICS["glacier"]])
    kitchen = pdf_bytes([TOPICS["bread"], TOPICS["chess"]])
    _upload(
        at, [("nature.pdf", nature, "application/pdf"), ("../../etc/kitchen.pdf", kitchen, "application/pdf")]
    )

    successes = _texts(at, "success")
    assert any("nature.pdf" in s and "ingested" in s and "3 chunks from 3 pages" in s for s in successes)
    # The uploaded name is sanitised to a bare file name; no folder part survives.
    assert any("kitchen.pdf" in s and "ingested" in s for s in successes)
    assert not any("etc" in s for s in successes)
    assert not list((data_dir).rglob("kitchen.pdf")) and not list(data_dir.rglob("nature.pdf"))
    text = _all_text(at)
    assert "2 documents · 5 chunks" in text

    _search(at, "magma chamber volcano eruptions lava")
    cards = _cards(at)
    assert cards, _all_text(at)
    assert "nature.pdf" in cards[0] and "page 2" in cards[0]
    assert "<mark>magma</mark>" in cards[0]
    assert any("query instruction" in c for c in _texts(at, "caption"))

    # Same files again: unchanged.
    _upload(at, [("nature.pdf", nature, "application/pdf")])
    assert any("nature.pdf" in s and "unchanged" in s for s in _texts(at, "info"))

    at.button(key="delete:upload:nature.pdf").click()
    at.run()
    assert not at.exception
    assert any("Deleted nature.pdf (3 chunks)" in s for s in _texts(at, "success"))
    assert "1 document · 2 chunks" in _all_text(at)
    assert all("nature.pdf" not in card for card in _cards(at))


def test_failed_file_shows_reason_and_others_go_on(data_dir: Path) -> None:
    at = _app()
    _upload(
        at,
        [
            ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "application/pdf"),
            ("notes.txt", TOPICS["vaccine"].encode(), "text/plain"),
        ],
    )
    errors = _texts(at, "error")
    assert any("broken.pdf" in e and "failed" in e for e in errors), errors
    assert any("notes.txt" in s and "ingested" in s for s in _texts(at, "success"))


def test_no_hits_above_threshold(data_dir: Path) -> None:
    at = _app()
    _upload(at, [("notes.txt", TOPICS["vaccine"].encode(), "text/plain")])
    at.selectbox(key="mode").set_value("dense")  # the threshold is a cosine: dense mode
    at.run()
    at.slider(key="threshold").set_value(0.95)
    _search(at, "chess openings")
    assert any("No hits above the minimum score 0.95" in w for w in _texts(at, "warning"))
    assert not _cards(at)


def test_query_errors_are_messages(data_dir: Path) -> None:
    at = _app()
    _upload(at, [("notes.txt", TOPICS["vaccine"].encode(), "text/plain")])
    _search(at, "   ")
    assert any("the query is empty" in e for e in _texts(at, "error"))
    _search(at, " ".join(["immune"] * 200))
    assert any("200 tokens" in e for e in _texts(at, "error"))
    assert not at.exception


def test_passages_are_rendered_as_text(data_dir: Path) -> None:
    at = _app()
    hostile = (
        "Hostile document. <script>alert('x')</script> <img src=x onerror=alert(1)> "
        "[click](javascript:alert(2)) **bold** immune system"
    )
    _upload(at, [("<b>evil</b>.txt", hostile.encode(), "text/plain")])
    _search(at, "hostile immune system")
    cards = _cards(at)
    assert cards
    assert "<script>" not in cards[0] and "<img" not in cards[0] and "<b>" not in cards[0]
    assert "&lt;script&gt;" in cards[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in cards[0]


def test_store_locked_by_another_process_is_a_message(data_dir: Path) -> None:
    from qdrant_client import QdrantClient

    (data_dir / "qdrant").mkdir(parents=True)
    holder = QdrantClient(path=str(data_dir / "qdrant"))
    try:
        at = _app()
        assert any("already open in another process" in e for e in _texts(at, "error"))
        assert not at.exception
    finally:
        holder.close()


def test_collection_built_with_other_model_is_refused_with_a_message(data_dir: Path) -> None:
    from app.service import SearchService
    from config import load_settings
    from embedder import FakeEmbedder

    settings = load_settings(data_dir=str(data_dir), model={"backend": "fake"})
    other = FakeEmbedder(dimension=32)
    other.model_id = "another-model"  # type: ignore[misc]
    svc = SearchService.open(settings, embedder=other)
    svc.ingest([__import__("ingest").upload_source("a.txt", TOPICS["glacier"].encode())])
    svc.close()

    at = _app()
    assert any("another-model" in w for w in _texts(at, "warning"))
    _search(at, "glacier")
    assert any("built differently" in e for e in _texts(at, "error"))
    _upload(at, [("b.txt", TOPICS["bread"].encode(), "text/plain")])
    assert any("built differently" in e for e in _texts(at, "error"))
    assert not at.exception


def test_create_collection_with_custom_instructions(data_dir: Path) -> None:
    at = _app()
    at.selectbox(key="collection").set_value("+ New collection…").run()
    at.text_input(key="new_name").input("papers")
    at.selectbox(key="new_domain_preset").set_value("medicine").run()
    query_box = at.text_area(key="new_query:medicine")
    assert query_box.value == "Represent the Medicine question for retrieving supporting documents:"
    query_box.input("Represent the clinical question for retrieving trial reports:")
    at.button(key="create_collection").click().run()
    assert not at.exception
    assert at.selectbox(key="collection").value == "papers"
    codes = [c.value for c in at.code]
    assert "Represent the clinical question for retrieving trial reports:" in codes
    assert "Represent the Medicine document for retrieval:" in codes
    assert any("Created collection papers" in s for s in _texts(at, "success"))

    _upload(at, [("vaccines.txt", TOPICS["vaccine"].encode(), "text/plain")])
    _search(at, "immune memory cells")
    assert _cards(at) and "vaccines.txt" in _cards(at)[0]
    assert any(
        "Represent the clinical question for retrieving trial reports:" in c for c in _texts(at, "caption")
    )


def test_invalid_new_collection_name_is_a_message(data_dir: Path) -> None:
    at = _app()
    at.selectbox(key="collection").set_value("+ New collection…").run()
    at.text_input(key="new_name").input("bad/name")
    at.button(key="create_collection").click().run()
    assert any("collection name 'bad/name' holds '/'" in e for e in _texts(at, "error"))


def test_upload_over_the_size_limit_is_refused(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_APP__MAX_UPLOAD_MB", "1")
    at = _app()
    big = ("word " * 300_000).encode()  # 1.5 MB
    _upload(at, [("big.txt", big, "text/plain"), ("small.txt", TOPICS["chess"].encode(), "text/plain")])
    errors = _texts(at, "error")
    assert any("big.txt" in e and "over the upload limit of 1 MB" in e for e in errors), errors
    assert any("small.txt" in s and "ingested" in s for s in _texts(at, "success"))


def test_invalid_settings_are_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_APP__TOP_K", "0")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("app.top_k" in e for e in _texts(at, "error"))


@pytest.mark.real_model
def test_real_model_upload_and_search(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSTRUCTOR_SEARCH_MODEL__BACKEND")
    at = _app()
    assert any("all-MiniLM-L6-v2" in text for text in _texts(at, "caption"))
    pdf = pdf_bytes([TOPICS["bread"], TOPICS["volcano"], TOPICS["chess"]])
    _upload(
        at, [("mixed.pdf", pdf, "application/pdf"), ("health.txt", TOPICS["vaccine"].encode(), "text/plain")]
    )
    assert any("mixed.pdf" in s and "ingested" in s for s in _texts(at, "success"))
    _search(at, "How do eruptions happen?")
    cards = _cards(at)
    assert "mixed.pdf" in cards[0] and "page 2" in cards[0]
    _search(at, "How does immunisation protect against infection?")
    assert "health.txt" in _cards(at)[0]


# -- a hit's page, its file, encrypted uploads ----------------------------------------------------------


def _images(at: AppTest) -> list[tuple[list[str], list[str]]]:
    """(urls, captions) of every st.image on the page."""
    return [(el.value, el.captions) for el in at.get("image")]


def test_a_hit_shows_its_page_with_the_passage_highlighted_and_offers_the_file(data_dir: Path) -> None:
    at = _app()
    nature = pdf_bytes([TOPICS["photosynthesis"], TOPICS["volcano"], TOPICS["glacier"]])
    _upload(at, [("nature.pdf", nature, "application/pdf")])
    _search(at, "magma chamber volcano eruptions lava")
    toggles = [t for t in at.toggle if str(t.key).startswith("show_page:")]
    assert len(toggles) == len(_cards(at)) >= 1
    assert not _images(at)  # nothing is rendered until asked for
    toggles[0].set_value(True)
    at.run()
    assert not at.exception, at.exception
    images = _images(at)
    assert len(images) == 1, _all_text(at)
    urls, captions = images[0]
    assert urls[0] and captions == ["page 2 of 3 · passage highlighted"]
    downloads = at.get("download_button")
    assert len(downloads) == 1 and _plain(downloads[0].proto.label) == "Download nature.pdf"
    assert not at.error

    # A rerun (another search) does not add pages of the other hits.
    _search(at, "glaciers carve valleys moraines ice")
    assert len(_images(at)) <= 1


def test_an_encrypted_upload_with_its_password_and_the_page_that_asks_for_it(data_dir: Path) -> None:
    secret = encrypted_pdf_bytes(TOPICS["volcano"], user_password="sesame", owner_password="owner-pw")
    at = _app()
    at.text_input(key="upload_password").input("wrong")
    _upload(at, [("secret.pdf", secret, "application/pdf")])
    assert any(
        "secret.pdf" in e and "the password does not open secret.pdf; check it and upload again" in e
        for e in _texts(at, "error")
    ), _texts(at, "error")
    assert "--password" not in _all_text(at)
    assert at.text_input(key="upload_password").value == ""  # cleared from the session

    at.text_input(key="upload_password").input("sesame")
    _upload(at, [("secret.pdf", secret, "application/pdf")])
    assert any("secret.pdf" in s and "ingested" in s for s in _texts(at, "success")), _all_text(at)
    assert at.text_input(key="upload_password").value == ""
    assert "sesame" not in _all_text(at)

    _search(at, "magma chamber volcano eruptions lava")
    toggle = next(t for t in at.toggle if str(t.key).startswith("show_page:"))
    toggle.set_value(True)
    at.run()
    assert not _images(at)
    assert any("secret.pdf is an encrypted PDF" in i for i in _texts(at, "info"))
    field = next(t for t in at.text_input if str(t.key).startswith("page_password:"))
    field.input("nope")
    at.run()
    assert any("the password does not open secret.pdf" in e for e in _texts(at, "error"))
    field = next(t for t in at.text_input if str(t.key).startswith("page_password:"))
    field.input("sesame")
    at.run()
    assert not at.exception, at.exception
    assert [captions for _, captions in _images(at)] == [["page 1 of 1 · passage highlighted"]]
    # The page shows: its password field is gone, and the password with it.
    assert not [t for t in at.text_input if str(t.key).startswith("page_password:")]
    at.run()
    assert len(_images(at)) == 1
    state = at.session_state.to_dict()
    assert not any(str(key).startswith("page_password:") for key in state)
    assert "sesame" not in [value for value in state.values() if isinstance(value, str)]


def test_deleting_a_document_in_the_page_removes_its_kept_copy(data_dir: Path) -> None:
    at = _app()
    data = pdf_bytes([TOPICS["bread"]])
    _upload(at, [("bread.pdf", data, "application/pdf")])
    assert len(list((data_dir / "files").rglob("*.pdf"))) == 1
    at.button(key="delete:upload:bread.pdf").click()
    at.run()
    assert not list((data_dir / "files").rglob("*.pdf"))


@pytest.mark.ocr
def test_a_scanned_page_is_reported_ocr_d_and_its_hit_has_the_badge_and_its_page(data_dir: Path) -> None:
    from ocrgen import pages_pdf

    at = _app()
    mixed = pages_pdf(
        [("text", [TOPICS["bread"]]), ("image", ["The harbour pilot boards", "every tanker at dawn"])]
    )
    blank = pages_pdf([("text", [TOPICS["chess"]]), ("blank", [])])
    _upload(at, [("mixed.pdf", mixed, "application/pdf"), ("gap.pdf", blank, "application/pdf")])
    assert any(
        "mixed.pdf" in s and "2 chunks from 2 pages · 1 page OCR'd" in s for s in _texts(at, "success")
    ), _all_text(at)
    assert any(
        "gap.pdf" in w and "ingested" in w and "warning: page 2 of 2 yielded no text" in w
        for w in _texts(at, "warning")
    ), _all_text(at)

    _search(at, "harbour pilot boards every tanker")
    card = next(c for c in _cards(at) if "mixed.pdf" in c and "page 2" in c)
    assert '<span class="hit-ocr"' in card
    assert all('class="hit-ocr"' not in c for c in _cards(at) if "page 1" in c)
    toggle = at.toggle[[c == card for c in _cards(at)].index(True)]
    toggle.set_value(True)
    at.run()
    assert not at.exception, at.exception
    assert [captions for _, captions in _images(at)] == [["page 2 of 2 · passage highlighted · OCR"]]


# -- pure helpers --------------------------------------------------------------------------------------


def test_highlight_escapes_every_piece() -> None:
    out = highlight("a <b>magma</b> & magmatic <script>", ["magma"])
    assert out == "a &lt;b&gt;<mark>magma</mark>&lt;/b&gt; &amp; <mark>magmatic</mark> &lt;script&gt;"
    # The raw text "&amp;" is shown literally; its word "amp" is highlighted like any other.
    assert highlight("amp &amp;", ["amp"]) == "<mark>amp</mark> &amp;<mark>amp</mark>;"


def test_query_terms_drop_stop_words() -> None:
    assert query_terms("What is the role of Chlorophyll in plants?") == ["chlorophyll", "plants", "role"]


def test_card_escapes_file_name_and_shows_page() -> None:
    hit = Hit(id="1", score=0.5, text="x", file_name="<img src=x>.pdf", page=3, chunk_index=0)
    card = hit_card_html(1, hit, [])
    assert "&lt;img src=x&gt;.pdf" in card and "<img" not in card and "page 3" in card
    assert "hit-ocr" not in card


def test_card_of_an_ocr_page_has_the_ocr_badge() -> None:
    hit = Hit(id="1", score=0.5, text="x", file_name="scan.pdf", page=2, chunk_index=0, ocr=True)
    assert '<span class="hit-ocr"' in hit_card_html(1, hit, []) and ">OCR</span>" in hit_card_html(1, hit, [])


def test_outcome_line_reports_ocr_pages_and_the_warning() -> None:
    result = FileResult(
        path="upload:scan.pdf",
        status="ingested",
        chunks=1,
        file_name="scan.pdf",
        pages=6,
        ocr_pages=(2, 3),
        empty_pages=(5,),
        warning="page 5 yielded no text",
    )
    line = _plain(outcome_line(result))
    assert (
        line
        == "**scan.pdf** — ingested: 1 chunk from 6 pages · 2 pages OCR'd · warning: page 5 yielded no text"
    )
    one = FileResult(path="a.pdf", status="ingested", chunks=2, file_name="a.pdf", pages=1, ocr_pages=(1,))
    assert _plain(outcome_line(one)) == "**a.pdf** — ingested: 2 chunks from 1 page · 1 page OCR'd"


def test_md_escape() -> None:
    assert md_escape("[a](javascript:x) **b** <i>") == r"\[a\]\(javascript\:x\) \*\*b\*\* \<i\>"
