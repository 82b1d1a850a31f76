"""Start-up: what the CLI and the page import before their first hit or page, and refusals that load no model.

Each check runs in a fresh interpreter (``sys.modules`` of this test process holds everything the
other tests imported) and reports which of the heavy packages it imported.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pdfgen import TOPICS, write_pdf

from app.cli import main
from app.service import SearchService, guard_client
from config import Settings, load_settings
from embedder import Embedder, FakeEmbedder, make_embedder
from ingest.sources import upload_source
from retrieval.errors import QueryError
from store.client import open_client
from store.errors import CollectionMismatchError, CollectionNotFoundError

ROOT = Path(__file__).resolve().parents[2]

#: Never needed to register the commands, nor to search or show the first page.
NOT_FOR_SEARCH = (
    "streamlit",
    "matplotlib",
    "pypdf",
    "pypdfium2",
    "fpdf",
    "rapidocr_onnxruntime",
    "jiwer",
    "langchain_text_splitters",
)
#: What the model stack of sentence-transformers brings (absent on the torch-free path). SciPy's
#: sparse matrices are not in it: the in-process index scores BM25 with them (retrieval.local_index).
MODEL_STACK = (
    "torch",
    "sentence_transformers",
    "transformers",
    "sklearn",
    "scipy.stats",
    "pandas",
    "datasets",
    "PIL",
)
WATCHED = (*NOT_FOR_SEARCH, *MODEL_STACK, "onnxruntime", "qdrant_client", "evaluation", "training")

CHILD = textwrap.dedent(
    """
    import json, sys
    {body}
    watched = {watched!r}
    print(json.dumps({{"code": code, "modules": sorted(m for m in watched if m in sys.modules)}}))
    """
)


def run_child(body: str) -> tuple[int, list[str], str]:
    """Run ``body`` (which sets ``code``) in a fresh interpreter; its exit code, watched modules and stderr."""
    script = CHILD.format(body=textwrap.dedent(body).strip(), watched=WATCHED)
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return report["code"], report["modules"], out.stderr


def cli_child(*argv: str) -> tuple[int, list[str], str]:
    """``app.cli.main(argv)`` in a fresh interpreter."""
    return run_child(f"from app.cli import main\ncode = main({list(argv)!r})")


def torch_free_path() -> bool:
    """Whether the embedder has its torch-free ONNX path (``embedder.onnx_native``)."""
    return importlib.util.find_spec("embedder.onnx_native") is not None


@pytest.fixture
def fake_collection(tmp_path: Path) -> Path:
    """A data folder whose default collection holds a PDF and a text file, built with the fake embedder."""
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "earth.pdf", [TOPICS["photosynthesis"], TOPICS["volcano"]])
    (docs / "games.md").write_text("# Games\n\n" + TOPICS["chess"], encoding="utf-8")
    data = tmp_path / "data"
    assert main(["ingest", str(docs), "--data-dir", str(data), "--backend", "fake", "--no-progress"]) == 0
    return data


# -- what is imported --------------------------------------------------------------------------


def test_registering_every_command_imports_no_heavy_package() -> None:
    _, modules, _ = run_child("from app.cli import build_parser\nbuild_parser()\ncode = 0")
    assert modules == []


def test_search_imports_only_what_a_search_needs(fake_collection: Path) -> None:
    """A hybrid search (BM25 and dense, the default mode) with the fake embedder: Qdrant and nothing heavy."""
    code, modules, stderr = cli_child(
        "search", "magma eruption lava", "--data-dir", str(fake_collection), "--backend", "fake"
    )
    assert code == 0, stderr
    assert modules == ["qdrant_client"]


@pytest.mark.real_model
def test_search_with_the_real_model_imports_no_package_it_does_not_use(tmp_path: Path) -> None:
    """The default model and runtime: the first run exports the model; the search after it is what is measured."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "volcano.txt").write_text(TOPICS["volcano"], encoding="utf-8")
    data = str(tmp_path / "data")
    code, _, stderr = cli_child("ingest", str(docs), "--data-dir", data, "--no-progress")
    assert code == 0, stderr
    code, modules, stderr = cli_child("search", "magma eruption lava", "--data-dir", data, "--json")
    assert code == 0, stderr
    assert "qdrant_client" in modules and "onnxruntime" in modules
    assert not set(modules) & set(NOT_FOR_SEARCH), modules
    if torch_free_path():
        assert not set(modules) & set(MODEL_STACK), modules


def test_the_first_page_imports_no_heavy_package_and_loads_no_model(fake_collection: Path) -> None:
    """``streamlit_app.py``'s first run, settings of the real model: the page shows before any model loads."""
    body = f"""
    import os
    os.environ["INSTRUCTOR_SEARCH_DATA_DIR"] = {str(fake_collection)!r}
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file({str(ROOT / "streamlit_app.py")!r}, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("sentence-transformers/all-MiniLM-L6-v2" in c.value for c in at.caption), "model name shown"
    assert any("fake-hashing-embedder" in w.value for w in at.warning), "the collection's other model is named"
    code = 0
    """
    code, modules, stderr = run_child(body)
    assert code == 0, stderr
    assert not set(modules) & {*MODEL_STACK, *NOT_FOR_SEARCH, "onnxruntime"} - {"streamlit"}, modules


# -- a collection of another model is refused before a model loads -------------------------------------


def _built_by_another_model(settings: Settings) -> None:
    other = FakeEmbedder(dimension=32)
    other.model_id = "another-model"
    with SearchService.open(settings, embedder=other) as service:
        service.ingest([upload_source("a.txt", TOPICS["glacier"].encode())])


def test_search_and_ingest_refuse_another_models_collection_without_loading_a_model(
    fake_settings: Settings,
) -> None:
    _built_by_another_model(fake_settings)
    loads: list[str] = []

    def loader(settings: Settings) -> Embedder:
        loads.append(settings.model.name)
        return make_embedder(settings)

    real = load_settings(data_dir=str(fake_settings.data_dir))  # the default model, sentence-transformers
    for settings in (fake_settings, real):
        with SearchService(
            settings, client=guard_client(open_client(settings), settings), loader=loader
        ) as service:
            with pytest.raises(
                CollectionMismatchError, match=r"built differently: model: found 'another-model'"
            ):
                service.search("glaciers")
            with pytest.raises(CollectionMismatchError, match="another-model"):
                service.ingest([upload_source("b.txt", TOPICS["bread"].encode())])
            assert not service.model_loaded
            assert service.model_id != "another-model"
    assert loads == []


def test_errors_keep_their_order_and_none_loads_a_model(fake_settings: Settings) -> None:
    """The query, then the options, then the collection, then the model: each refused without a model."""
    _built_by_another_model(fake_settings)
    with SearchService.open(fake_settings) as service:
        with pytest.raises(QueryError, match="empty"):
            service.search("   ", top_k=0)
        with pytest.raises(QueryError, match="top_k"):
            service.search("glaciers", top_k=0, collection="nowhere")
        with pytest.raises(CollectionNotFoundError, match="nowhere"):
            service.search("glaciers", collection="nowhere")
        with pytest.raises(CollectionMismatchError):
            service.search("glaciers")
        assert not service.model_loaded


def test_cli_search_refuses_another_models_collection_before_importing_the_model_stack(
    fake_collection: Path,
) -> None:
    """Built with the fake embedder, searched with the default model: refused, torch and ONNX Runtime never imported."""
    code, modules, stderr = cli_child("search", "magma", "--data-dir", str(fake_collection))
    assert code == 1
    assert (
        "built differently: model: found 'fake-hashing-embedder', expected 'sentence-transformers/all-MiniLM-L6-v2'"
        in stderr
    )
    assert "Fix:" in stderr
    assert not {"torch", "onnxruntime", "sentence_transformers", "transformers"} & set(modules), modules
