"""Settings: one typed object; init arguments > environment > TOML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ENV_PREFIX, MEMORY_LOCATION, ConfigError, Settings, load_settings

TOML = """
data_dir = "from-file-data"

[model]
name = "file-model"
batch_size = 8
device = "cpu"

[instructions]
domain = "medicine"

[qdrant]
path = "/srv/file-qdrant"
collection = "file_collection"

[chunk]
size = 120
overlap = 10
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "instructor-search.toml"
    path.write_text(TOML, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert settings.model.name == "default"
    assert settings.model.backend == "sentence-transformers"
    assert settings.model.batch_size == 32
    assert settings.instructions.domain == ""
    assert settings.instructions.enabled is True
    assert settings.qdrant.collection == "documents"
    assert settings.qdrant_mode == "embedded"
    assert settings.qdrant_location == str(Path("data") / "qdrant")


def test_env_prefix_and_nested_delimiter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert ENV_PREFIX == "INSTRUCTOR_SEARCH_"
    monkeypatch.setenv("INSTRUCTOR_SEARCH_QDRANT__PATH", str(tmp_path / "q"))
    monkeypatch.setenv("INSTRUCTOR_SEARCH_MODEL__BATCH_SIZE", "7")
    monkeypatch.setenv("INSTRUCTOR_SEARCH_INSTRUCTIONS__DOMAIN", "Science")
    monkeypatch.setenv("INSTRUCTOR_SEARCH_INSTRUCTIONS__ENABLED", "false")
    monkeypatch.setenv("INSTRUCTOR_SEARCH_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.qdrant.path == str(tmp_path / "q")
    assert settings.qdrant_location == str(tmp_path / "q")
    assert settings.model.batch_size == 7
    assert settings.instructions.domain == "Science"
    assert settings.instructions.enabled is False
    assert settings.data_dir == tmp_path


def test_toml_file_is_read(config_file: Path) -> None:
    settings = load_settings(config_file)
    assert settings.data_dir == Path("from-file-data")
    assert settings.model.name == "file-model"
    assert settings.model.batch_size == 8
    assert settings.instructions.domain == "medicine"
    assert settings.qdrant.path == "/srv/file-qdrant"
    assert settings.qdrant.collection == "file_collection"
    assert (settings.chunk.size, settings.chunk.overlap) == (120, 10)


def test_config_file_from_env(monkeypatch: pytest.MonkeyPatch, config_file: Path) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_CONFIG_FILE", str(config_file))
    assert load_settings().model.name == "file-model"


def test_precedence_init_over_env_over_file(monkeypatch: pytest.MonkeyPatch, config_file: Path) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_MODEL__NAME", "env-model")
    monkeypatch.setenv("INSTRUCTOR_SEARCH_MODEL__BATCH_SIZE", "16")
    monkeypatch.setenv("INSTRUCTOR_SEARCH_QDRANT__COLLECTION", "env_collection")
    settings = load_settings(config_file, model={"batch_size": 4})
    assert settings.model.batch_size == 4  # init beats env and file
    assert settings.model.name == "env-model"  # env beats file
    assert settings.qdrant.collection == "env_collection"  # env beats file
    assert settings.model.device == "cpu"  # only in the file: kept (sections merge key by key)
    assert settings.qdrant.path == "/srv/file-qdrant"
    assert settings.instructions.domain == "medicine"


def test_none_overrides_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_DATA_DIR", "env-data")
    assert load_settings(data_dir=None).data_dir == Path("env-data")


def test_missing_config_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml.* does not exist"):
        load_settings(missing)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nname = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml.* is not valid TOML"):
        load_settings(bad)


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text("[model]\nnmae = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"model\.nmae"):
        load_settings(path)


def test_path_and_url_together_name_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_QDRANT__PATH", "/srv/qdrant")
    monkeypatch.setenv("INSTRUCTOR_SEARCH_QDRANT__URL", "http://localhost:6333")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "path='/srv/qdrant'" in message
    assert "url='http://localhost:6333'" in message
    assert "INSTRUCTOR_SEARCH_QDRANT__PATH" in message and "INSTRUCTOR_SEARCH_QDRANT__URL" in message


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"model": {"batch_size": 0}}, "model.batch_size"),
        ({"model": {"backend": "onnx"}}, "'onnx'"),
        ({"model": {"max_seq_length": 2}}, "model.max_seq_length"),
        ({"qdrant": {"collection": "a/b"}}, "'a/b'"),
        ({"qdrant": {"timeout": 0}}, "qdrant.timeout"),
        ({"chunk": {"size": 50, "overlap": 60}}, "chunk.overlap=60"),
        ({"chunk": {"strategy": "sentences"}}, "'sentences'"),
        ({"app": {"top_k": 1000}}, "app.top_k"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_values_name_the_value(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)  # type: ignore[arg-type]
    assert named in str(info.value)
    assert "INSTRUCTOR_SEARCH_SECTION__KEY" in str(info.value)


def test_bad_env_value_names_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_SEARCH_MODEL__BATCH_SIZE", "lots")
    with pytest.raises(ConfigError, match=r"model\.batch_size.*'lots'"):
        load_settings()


def test_api_key_needs_url_and_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(qdrant={"api_key": "s3cr3t-key"})
    assert "set the url too" in str(info.value)
    assert "s3cr3t-key" not in str(info.value)
    server = load_settings(qdrant={"url": "http://qdrant:6333", "api_key": "s3cr3t-key"})
    assert server.qdrant_mode == "server"
    assert server.qdrant_location == "http://qdrant:6333"


def test_memory_location() -> None:
    settings = load_settings(qdrant={"path": MEMORY_LOCATION})
    assert settings.qdrant_mode == "memory"
    assert settings.qdrant_location == ":memory:"


def test_sections_validate_assignment() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="batch_size"):
        settings.model.batch_size = -1


def test_loading_is_isolated_between_calls(config_file: Path) -> None:
    # The config file of one call must not leak into the next one.
    assert load_settings(config_file).model.name == "file-model"
    assert load_settings().model.name == "default"


# -- override ---------------------------------------------------------------------------------------


def test_override_takes_nested_dicts_and_dotted_keys() -> None:
    from config import override

    base = load_settings(model={"runtime": "torch"})
    changed = override(
        base,
        qdrant={"path": MEMORY_LOCATION, "url": None},
        **{"chunk.strategy": "whole", "model.batch_size": 4},
    )
    assert (changed.qdrant_mode, changed.chunk.strategy, changed.model.batch_size) == ("memory", "whole", 4)
    assert changed.model.runtime == "torch" and changed.chunk.size == base.chunk.size
    assert base.qdrant.path is None and base.chunk.strategy == "recursive"  # the original is unchanged
    assert changed.index is base.index  # untouched sections are shared, as with model_copy
    assert changed.model.model_fields_set == {"runtime", "batch_size"}  # what was set stays known
    assert override(base.model, runtime="onnx").runtime == "onnx"  # a section works too


def test_override_validates_and_names_the_bad_value() -> None:
    from config import override

    base = load_settings()
    with pytest.raises(ConfigError, match=r"unknown setting 'qdrant\.pth'.*qdrant\.path"):
        override(base, qdrant={"pth": "x"})
    with pytest.raises(ConfigError, match=r"chunk\.size: .*greater than or equal to 16 \(got 10\)"):
        override(base, **{"chunk.size": 10})
    with pytest.raises(ConfigError, match=r"chunk.overlap=30 must be smaller than chunk.size=20"):
        override(base, **{"chunk.size": 20})
    with pytest.raises(ConfigError, match=r"http://\*\*\*@host"):
        override(base, qdrant={"path": "x", "url": "http://user:SECRET@host"})
    with pytest.raises(ConfigError, match="given both as a value and as a section"):
        override(base, **{"chunk": base.chunk, "chunk.size": 100})


def test_override_does_not_read_the_environment_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from config import override

    base = load_settings()
    monkeypatch.setenv(f"{ENV_PREFIX}APP__TOP_K", "9")
    assert override(base, data_dir="elsewhere").app.top_k == base.app.top_k
