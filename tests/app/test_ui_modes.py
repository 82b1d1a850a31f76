"""The Streamlit page's retrieval-mode picker (AppTest, fake embedder, real embedded Qdrant)."""

from __future__ import annotations

from pathlib import Path

from pdfgen import TOPICS, pdf_bytes
from test_app_ui import _all_text, _app, _cards, _fresh_resources, _search, _texts, _upload, data_dir

__all__ = ["_fresh_resources", "data_dir"]  # fixtures used here


def test_mode_picker_offers_the_collection_modes_and_the_page_shows_the_mode_that_ran(data_dir: Path) -> None:
    at = _app()
    _upload(at, [("nature.pdf", pdf_bytes([TOPICS["volcano"], TOPICS["glacier"]]), "application/pdf")])
    picker = at.selectbox(key="mode")
    # A new collection has the dense and the sparse BM25 vectors (the default representations).
    assert list(picker.options) == ["dense", "sparse", "hybrid", "all"]
    assert picker.value == "hybrid"  # the search.mode setting (hybrid won on SciFact and NFCorpus)
    _search(at, "magma lava eruption")
    assert _cards(at)
    assert any("mode **hybrid**" in caption for caption in _texts(at, "caption")), _all_text(at)
    assert "nature.pdf" in _cards(at)[0]
    # The score threshold is for cosine modes only: disabled in a fused mode.
    assert at.slider(key="threshold").disabled

    at.selectbox(key="mode").set_value("dense")
    at.run()
    assert not at.exception, at.exception
    assert any("mode **dense**" in caption for caption in _texts(at, "caption"))
    assert not at.slider(key="threshold").disabled
