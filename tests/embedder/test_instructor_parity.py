"""`embedder.INSTRUCTOR` reproduces InstructorEmbedding 1.0.1 on the tiny-instructor fixture.

The fixture (tests/fixtures/tiny-instructor, a copy of ../shared/fixtures/tiny-instructor) holds a
randomly initialised INSTRUCTOR-layout checkpoint and the outputs the original package computed
for 24 [instruction, text] pairs. See its README for what the expected values encode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from config import load_settings
from embedder import INSTRUCTOR, InputError, make_embedder
from embedder.loading import DEFAULT_MODEL_ID, load_sentence_transformer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny-instructor"
MODEL_DIR = FIXTURE / "model"
SENTENCE_ATOL = 1e-5
TOKEN_ATOL = 1e-4

_INPUTS = json.loads((FIXTURE / "inputs.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = _INPUTS["cases"]
CASE_IDS = [case["id"] for case in CASES]
PAIRS = [case["pair"] for case in CASES]
TOKEN_CASES: list[str] = _INPUTS["token_embedding_cases"]


def expected(name: str) -> np.ndarray:
    return np.load(FIXTURE / "expected" / name)


@pytest.fixture(scope="module")
def model() -> INSTRUCTOR:
    return INSTRUCTOR(str(MODEL_DIR), device="cpu")


def _pooling_include_prompt(model: Any) -> list[bool]:
    from sentence_transformers.models import Pooling

    return [module.include_prompt for module in model if isinstance(module, Pooling)]


def test_fixture_is_complete() -> None:
    assert len(CASES) == 24
    assert expected("embeddings.npy").shape == (24, 32)
    assert TOKEN_CASES == ["sci_title", "long_text_over_max"]


def test_all_cases_batched(model: INSTRUCTOR) -> None:
    got = model.encode(PAIRS, batch_size=32)
    assert isinstance(got, np.ndarray)
    assert got.shape == (24, 32)
    np.testing.assert_allclose(got, expected("embeddings.npy"), atol=SENTENCE_ATOL, rtol=0)


def test_all_cases_one_at_a_time(model: INSTRUCTOR) -> None:
    got = np.stack([model.encode([pair], batch_size=1)[0] for pair in PAIRS])
    np.testing.assert_allclose(got, expected("embeddings_batch1.npy"), atol=SENTENCE_ATOL, rtol=0)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_each_case_alone(model: INSTRUCTOR, case: dict[str, Any]) -> None:
    row = CASE_IDS.index(case["id"])
    np.testing.assert_allclose(
        model.encode([case["pair"]])[0], expected("embeddings_batch1.npy")[row], atol=SENTENCE_ATOL, rtol=0
    )


def test_small_batches_keep_input_order(model: INSTRUCTOR) -> None:
    # Pairs are grouped by instruction internally; the output must still follow the input.
    got = model.encode(PAIRS[::-1], batch_size=3)
    np.testing.assert_allclose(got, expected("embeddings.npy")[::-1], atol=SENTENCE_ATOL, rtol=0)


def test_normalized(model: INSTRUCTOR) -> None:
    got = model.encode(PAIRS, normalize_embeddings=True)
    np.testing.assert_allclose(got, expected("embeddings_normalized.npy"), atol=SENTENCE_ATOL, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("case_id", TOKEN_CASES)
def test_token_embeddings(model: INSTRUCTOR, case_id: str) -> None:
    pair = PAIRS[CASE_IDS.index(case_id)]
    got = model.encode([pair], output_value="token_embeddings")
    assert isinstance(got, list) and len(got) == 1
    want = expected(f"token_embeddings_{case_id}.npy")
    assert tuple(got[0].shape) == want.shape
    np.testing.assert_allclose(got[0].numpy(), want, atol=TOKEN_ATOL, rtol=0)


def test_long_text_is_truncated_at_512_tokens(model: INSTRUCTOR) -> None:
    assert model.max_seq_length == 512
    pair = PAIRS[CASE_IDS.index("long_text_over_max")]
    assert model.encode([pair], output_value="token_embeddings")[0].shape[0] == 512


def test_three_element_pair_ignores_the_third(model: INSTRUCTOR) -> None:
    case = CASES[CASE_IDS.index("three_element_pair")]
    assert len(case["pair"]) == 3
    with_third = model.encode([case["pair"]])
    without = model.encode([case["pair"][:2]])
    np.testing.assert_array_equal(with_third, without)
    np.testing.assert_allclose(
        with_third[0],
        expected("embeddings.npy")[CASE_IDS.index("three_element_pair")],
        atol=SENTENCE_ATOL,
        rtol=0,
    )


def test_convert_to_tensor(model: INSTRUCTOR) -> None:
    got = model.encode(PAIRS, convert_to_tensor=True)
    assert isinstance(got, torch.Tensor)
    assert tuple(got.shape) == (24, 32)
    np.testing.assert_allclose(got.numpy(), expected("embeddings.npy"), atol=SENTENCE_ATOL, rtol=0)


def test_plain_strings_have_no_instruction(model: INSTRUCTOR) -> None:
    # As in 1.0.1, a bare pair is a list of two texts, not one pair: wrap pairs in a list.
    instruction, text = PAIRS[0][:2]
    two = model.encode([instruction, text])
    assert two.shape == (2, 32)
    one = model.encode(text)
    assert one.shape == (32,)
    np.testing.assert_allclose(one, two[1], atol=SENTENCE_ATOL, rtol=0)
    # The same text with its instruction pools only the text tokens: a different vector.
    assert np.abs(one - expected("embeddings.npy")[0]).max() > 1e-3


def test_empty_input(model: INSTRUCTOR) -> None:
    assert model.encode([]).shape == (0, 32)


@pytest.mark.parametrize("bad", [[["only one"]], [["instruction", 3]], [[None, "text"]]])
def test_malformed_pairs_are_rejected(model: INSTRUCTOR, bad: list[Any]) -> None:
    with pytest.raises(InputError, match="instruction"):
        model.encode(bad)


def test_plain_prompt_encoding_differs_where_the_readme_says(model: INSTRUCTOR) -> None:
    """`encode(text, prompt=instruction)` alone misses 1.0.1's rules in exactly two cases."""
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(str(MODEL_DIR), device="cpu", local_files_only=True)
    plain.set_pooling_include_prompt(include_prompt=False)
    want = expected("embeddings_batch1.npy")
    diffs = {
        case_id: float(np.abs(plain.encode(text, prompt=instruction) - want[row]).max())
        for row, (case_id, (instruction, text, *_)) in enumerate(zip(CASE_IDS, PAIRS, strict=True))
    }
    differing = {case_id: diff for case_id, diff in diffs.items() if diff > SENTENCE_ATOL}
    assert set(differing) == {"one_token_instruction", "text_leading_whitespace"}
    # The README reports about 0.050 and 0.054: far beyond float noise.
    assert all(0.01 < diff < 0.2 for diff in differing.values()), differing


def test_fixture_pooling_lacks_include_prompt() -> None:
    # Laid out like hkunlp/instructor-base: the stored pooling config says nothing about prompts,
    # so a plain load would pool the instruction tokens.
    config = json.loads((MODEL_DIR / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    assert "include_prompt" not in config


def test_instruction_tokens_excluded_when_loaded_by_folder() -> None:
    model, resolved = load_sentence_transformer(str(MODEL_DIR), device="cpu")
    assert resolved.local
    assert _pooling_include_prompt(model) == [False]


def test_instruction_tokens_excluded_through_make_embedder() -> None:
    settings = load_settings(model={"name": str(MODEL_DIR), "device": "cpu", "normalize": False})
    embedder = make_embedder(settings.model)
    assert _pooling_include_prompt(embedder.model) == [False]  # type: ignore[attr-defined]
    # And the pooling really skips them: for an instruction that ends in one space and a text that
    # needs no stripping, prompt + text is the original's input, so the vectors agree.
    row = CASE_IDS.index("wiki_doc_trailing_space")
    instruction, text = PAIRS[row][:2]
    np.testing.assert_allclose(
        embedder.embed([text], instruction)[0], expected("embeddings.npy")[row], atol=SENTENCE_ATOL, rtol=0
    )


def test_drop_in_pooling_excludes_prompt(model: INSTRUCTOR) -> None:
    assert _pooling_include_prompt(model) == [False]


@pytest.mark.real_model
def test_no_argument_loads_the_bundled_default() -> None:
    model = INSTRUCTOR()
    assert model.model_id == DEFAULT_MODEL_ID
    vectors = model.encode([["Represent the sentence:", "A cat sits on the mat."]])
    assert vectors.shape == (1, 384)
