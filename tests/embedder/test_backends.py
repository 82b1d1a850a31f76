"""The embedder backends: the fake hashing embedder and the real sentence-transformers model."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from config import load_settings
from embedder import (
    Embedder,
    FakeEmbedder,
    InputError,
    InstructionSet,
    SentenceTransformerEmbedder,
    make_embedder,
)
from embedder.instructions import prompt_text

DOC = InstructionSet.for_retrieval().document
QUERY = InstructionSet.for_retrieval().query
TEXTS = [
    "Aspirin reduces fever and relieves mild pain.",
    "The stock market fell sharply on Monday.",
    "",
]


# -- FakeEmbedder -------------------------------------------------------------------------------


def test_fake_is_an_embedder() -> None:
    assert isinstance(FakeEmbedder(), Embedder)


def test_fake_is_deterministic_across_instances() -> None:
    first = FakeEmbedder().embed(TEXTS, DOC)
    second = FakeEmbedder().embed(TEXTS, DOC)
    assert first.dtype == np.float32
    assert first.shape == (3, 64)
    np.testing.assert_array_equal(first, second)


def test_fake_depends_on_the_instruction() -> None:
    embedder = FakeEmbedder()
    plain = embedder.embed(TEXTS[:1], None)
    as_doc = embedder.embed(TEXTS[:1], DOC)
    as_query = embedder.embed(TEXTS[:1], QUERY)
    assert not np.allclose(plain, as_doc)
    assert not np.allclose(as_doc, as_query)
    # Blank instructions are no instruction.
    np.testing.assert_array_equal(embedder.embed(TEXTS[:1], "   "), plain)


def test_fake_vectors_are_unit_length_and_lexical() -> None:
    vectors = FakeEmbedder().embed(["fever pain aspirin", "aspirin for fever", "bond yields rose"], None)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_fake_empty_text_gets_a_valid_vector() -> None:
    vector = FakeEmbedder().embed([""], None)[0]
    assert np.isfinite(vector).all() and np.linalg.norm(vector) > 0


def test_fake_unnormalized() -> None:
    vector = FakeEmbedder(normalize=False).embed(["word word word"], None)[0]
    assert np.linalg.norm(vector) == pytest.approx(3.0)


def test_fake_token_counts_and_budget() -> None:
    embedder = FakeEmbedder(max_seq_length=20)
    assert embedder.count_tokens("Hello, wide world!") == 3
    assert embedder.instruction_tokens(None) == 0
    assert embedder.instruction_tokens(DOC) == 5  # Represent the document for retrieval
    assert embedder.token_budget(DOC) == 15
    assert embedder.token_budget(None) == 20


def test_fake_truncation_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    embedder = FakeEmbedder(max_seq_length=20)
    budget = embedder.token_budget(DOC)
    fits = " ".join(f"w{i}" for i in range(budget))
    too_long = " ".join(f"w{i}" for i in range(budget + 30))
    with caplog.at_level(logging.WARNING, logger="embedder.backends"):
        vectors = embedder.embed([fits, too_long, "short"], DOC)
    assert embedder.stats.texts == 3
    assert embedder.stats.truncated == 1
    assert "1 of 3 texts exceed" in caplog.text
    # Truncation keeps the first `budget` tokens: the long text embeds like the one that fits.
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    embedder.embed([too_long, fits], None)  # 45 words exceed 20 even without the instruction
    assert (embedder.stats.texts, embedder.stats.truncated) == (5, 2)


@pytest.mark.parametrize(
    ("texts", "match"),
    [("just one string", "single string"), (["ok", 3], "text #1 is int"), ([None], "text #0")],
)
def test_bad_inputs(texts: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        FakeEmbedder().embed(texts, None)


def test_fake_empty_list() -> None:
    assert FakeEmbedder().embed([], DOC).shape == (0, 64)


# -- SentenceTransformerEmbedder (the real default model) -----------------------------------------


@pytest.mark.real_model
def test_real_embedder_reports_its_model(real_embedder: SentenceTransformerEmbedder) -> None:
    assert isinstance(real_embedder, Embedder)
    assert real_embedder.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert real_embedder.dimension == 384
    assert real_embedder.max_seq_length == 256
    assert real_embedder.normalize is True


@pytest.mark.real_model
def test_real_instruction_changes_the_vector(real_embedder: SentenceTransformerEmbedder) -> None:
    text = TEXTS[:1]
    plain = real_embedder.embed(text, None)[0]
    as_doc = real_embedder.embed(text, DOC)[0]
    as_query = real_embedder.embed(text, QUERY)[0]
    np.testing.assert_allclose(np.linalg.norm([plain, as_doc, as_query], axis=1), 1.0, atol=1e-5)
    assert plain @ as_doc < 0.999
    assert as_doc @ as_query < 0.999
    # ... but it is still the same text: far closer than an unrelated one.
    other = real_embedder.embed(TEXTS[1:2], DOC)[0]
    assert as_doc @ plain > as_doc @ other + 0.3


@pytest.fixture(scope="module")
def st_embedder() -> SentenceTransformerEmbedder:
    """The model through sentence-transformers (the torch runtime: never the torch-free ONNX path)."""
    embedder = make_embedder(load_settings().model, runtime="torch")
    assert isinstance(embedder, SentenceTransformerEmbedder)
    return embedder


@pytest.mark.real_model
def test_real_prompt_tokens_are_left_out_of_the_mean(
    real_embedder: SentenceTransformerEmbedder, st_embedder: SentenceTransformerEmbedder
) -> None:
    """The vector is the mean of the text tokens' outputs, computed by hand here (either backend)."""
    model: Any = st_embedder.model
    tokenizer = model.tokenizer
    prompt = prompt_text(DOC)
    assert prompt is not None
    text = TEXTS[0]
    tokens = model.encode(prompt + text, output_value="token_embeddings").float().numpy()
    full_ids = tokenizer(prompt + text)["input_ids"]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert tokens.shape[0] == len(full_ids)
    skip = 1 + len(prompt_ids)  # [CLS] and the instruction
    assert full_ids[1:skip] == prompt_ids  # the instruction tokenizes the same inside the input

    def unit(vector: np.ndarray) -> np.ndarray:
        return vector / np.linalg.norm(vector)

    by_hand = unit(tokens[skip:].mean(axis=0))
    with_prompt_pooled = unit(tokens.mean(axis=0))
    got = real_embedder.embed([text], DOC)[0]
    np.testing.assert_allclose(got, by_hand, atol=1e-5, rtol=0)
    assert np.abs(got - with_prompt_pooled).max() > 1e-3


@pytest.mark.real_model
def test_real_token_budget(
    real_embedder: SentenceTransformerEmbedder, st_embedder: SentenceTransformerEmbedder
) -> None:
    assert real_embedder.count_tokens("hello world") == 2
    assert real_embedder.instruction_tokens(None) == 0
    instruction_tokens = real_embedder.instruction_tokens(DOC)
    assert instruction_tokens == len(st_embedder.model.tokenizer(DOC, add_special_tokens=False)["input_ids"])
    assert real_embedder.token_budget(None) == 256 - 2
    assert real_embedder.token_budget(DOC) == 256 - 2 - instruction_tokens


@pytest.mark.real_model
def test_real_truncation_is_counted(
    real_embedder: SentenceTransformerEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    budget = real_embedder.token_budget(DOC)
    long_text = " ".join(["pharmacology"] * 10 + ["word"] * (budget + 50))
    assert real_embedder.count_tokens(long_text) > budget
    before_texts, before_truncated = real_embedder.stats.texts, real_embedder.stats.truncated
    with caplog.at_level(logging.WARNING, logger="embedder.backends"):
        vectors = real_embedder.embed([long_text, "a short text"], DOC)
    assert vectors.shape == (2, 384)
    assert real_embedder.stats.texts - before_texts == 2
    assert real_embedder.stats.truncated - before_truncated == 1
    assert "1 of 2 texts exceed" in caplog.text
    # What lies beyond the limit does not change the vector.
    longer = long_text + " completely different tail " * 20
    np.testing.assert_allclose(real_embedder.embed([longer], DOC)[0], vectors[0], atol=1e-5)


def test_wrapper_base_forwards_everything_and_subclasses_change_one_hook() -> None:
    from embedder import EmbedderWrapper
    from embedder.base import unwrap

    inner = FakeEmbedder(dimension=16)
    calls: list[str] = []

    class Recording(EmbedderWrapper):
        def _call(self, method, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(method.__name__)
            return method(*args, **kwargs)

    wrapped = Recording(EmbedderWrapper(inner))
    assert isinstance(wrapped, Embedder)
    assert (wrapped.model_id, wrapped.dimension, wrapped.max_seq_length, wrapped.normalize) == (
        inner.model_id,
        16,
        inner.max_seq_length,
        True,
    )
    assert wrapped.stats is inner.stats and wrapped.runtime == "fake"  # other attributes read through
    np.testing.assert_array_equal(wrapped.embed(["a b"], "Q:"), inner.embed(["a b"], "Q:"))
    assert wrapped.count_tokens("a b c") == 3 and wrapped.token_budget(None) == inner.max_seq_length
    assert wrapped.instruction_tokens("Q:") == 1
    assert calls == ["embed", "count_tokens", "token_budget", "instruction_tokens"]
    assert unwrap(wrapped) is inner
