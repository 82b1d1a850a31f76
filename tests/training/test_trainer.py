"""`instructor-search train` on the tiny INSTRUCTOR fixture: loss, loaders, pooling, resume, errors.

Every run here is real training (sentence-transformers' trainer and cached contrastive loss) of
the tiny random T5 checkpoint in tests/fixtures/tiny-instructor, a few steps each, in seconds.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from testdata import FIXTURES

from app.cli import main
from config import Settings, load_settings
from embedder import INSTRUCTOR
from embedder.factory import make_embedder
from embedder.instructions import InstructionSet, prompt_text
from embedder.langchain import InstructorEmbeddings
from embedder.loading import load_sentence_transformer
from store.record import expected_record
from training.errors import TrainingDataError, TrainingError
from training.medi import MediRecord, Pair, read_medi, write_medi
from training.trainer import RECORD_FILE, build_datasets, group_tasks, make_trainer, train_model

BASE = FIXTURES / "tiny-instructor" / "model"
SCIENCE = InstructionSet.for_retrieval("science")
STS = InstructionSet.symmetric("sts")

FACTS = [
    ("what do cats eat", "Cats eat fish and mice.", "The stock market fell on Monday."),
    ("where is paris", "Paris is the capital of France.", "Photosynthesis needs light."),
    ("how hot is the sun", "The surface of the sun is about 5500 degrees.", "Bees make honey."),
    ("who wrote hamlet", "Hamlet was written by Shakespeare.", "Rain falls from clouds."),
    ("what is dna", "DNA carries genetic information.", "Trains run on rails."),
    ("why is the sky blue", "Rayleigh scattering makes the sky blue.", "Bread is baked in ovens."),
]
PARAPHRASES = [
    ("a man plays the guitar", "someone is playing a guitar"),
    ("a woman is cooking", "a lady cooks food"),
    ("the dog runs in the park", "a dog is running through a park"),
    ("children play football", "kids are playing soccer"),
]


def medi_records() -> list[MediRecord]:
    """Two tasks: retrieval with hard negatives, and a symmetric STS task without."""
    assert SCIENCE.query and SCIENCE.document and STS.query
    records = [
        MediRecord(Pair(SCIENCE.query, q), Pair(SCIENCE.document, p), Pair(SCIENCE.document, n), "facts")
        for q, p, n in FACTS
    ]
    records += [MediRecord(Pair(STS.query, a), Pair(STS.query, b), None, "sts") for a, b in PARAPHRASES]
    return records


def tiny_settings(tmp_path: Path, **train: Any) -> Settings:
    values = {
        "batch_size": 4,
        "mini_batch_size": 2,
        "save_steps": 2,
        "logging_steps": 1,
        "max_steps": 6,
        **train,
    }
    return load_settings(
        data_dir=str(tmp_path / "data"),
        model={"name": str(BASE), "device": "cpu", "runtime": "torch"},
        train=values,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("trained")
    data = tmp / "medi.jsonl"
    write_medi(medi_records(), data)
    code = main(
        [
            "train",
            str(data),
            "--output",
            str(tmp / "model"),
            "--model",
            str(BASE),
            "--max-steps",
            "8",
            "--batch-size",
            "4",
            "--mini-batch-size",
            "2",
            "--learning-rate",
            "1e-3",
            "--data-dir",
            str(tmp / "data"),
        ]
    )
    assert code == 0
    return tmp / "model"


def mean_loss(model_path: Path, tmp_path: Path) -> float:
    """The contrastive loss of a model on the training data, through the trainer's own evaluation."""
    settings = tiny_settings(tmp_path)
    groups = group_tasks(medi_records())
    model, _ = load_sentence_transformer(str(model_path), device="cpu")
    trainer = make_trainer(model, groups, settings, tmp_path / "eval")
    metrics = trainer.evaluate(eval_dataset=build_datasets(groups))
    losses = [value for key, value in metrics.items() if key.endswith("_loss")]
    assert len(losses) == len(groups)
    return float(np.mean(losses))


def test_a_few_steps_lower_the_loss(trained: Path, tmp_path: Path) -> None:
    assert mean_loss(trained, tmp_path) < mean_loss(BASE, tmp_path)


def test_the_folder_records_base_model_instructions_and_data(trained: Path) -> None:
    record = json.loads((trained / RECORD_FILE).read_text(encoding="utf-8"))
    assert record["base_model"] == str(BASE.resolve())
    assert record["steps"] == 8
    assert record["data"]["tasks"] == {"facts": 6, "sts": 4}
    assert record["data"]["with_negatives"] == 6
    assert len(record["data"]["sha256"]) == 64
    assert record["loss"] == "CachedMultipleNegativesRankingLoss"
    assert record["train"]["temperature"] == 0.1
    # The instructions, as sentence-transformers prompts of the saved model.
    config = json.loads((trained / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert config["prompts"]["facts/query"] == prompt_text(SCIENCE.query)
    assert config["prompts"]["facts/document"] == prompt_text(SCIENCE.document)
    assert config["prompts"]["sts/query"] == prompt_text(STS.query)
    assert record["instructions"] == config["prompts"]
    assert not (trained / "checkpoints").exists()


def _training_time_embedding(model_path: Path, tmp_path: Path, text: str) -> np.ndarray:
    """The anchor embedding exactly as training computes it: the trainer's collator, then the model."""
    settings = tiny_settings(tmp_path)
    groups = group_tasks(medi_records())
    model, _ = load_sentence_transformer(str(model_path), device="cpu")
    model.eval()
    trainer = make_trainer(model, groups, settings, tmp_path / "t")
    batch = trainer.data_collator(
        [{"anchor": text, "positive": "p", "negative": "n", "dataset_name": groups[0].name}]
    )
    features = {key[len("anchor_") :]: value for key, value in batch.items() if key.startswith("anchor_")}
    assert features["prompt_length"] > 0, "the collator hands the prompt length to the pooling"
    with torch.no_grad():
        vector = model(features)["sentence_embedding"][0].numpy()
    return np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)


def test_training_time_embedding_equals_every_inference_path(trained: Path, tmp_path: Path) -> None:
    text = "what do cats eat"
    want = _training_time_embedding(trained, tmp_path, text)
    prompt = prompt_text(SCIENCE.query)
    assert prompt is not None
    # INSTRUCTOR drop-in, given the pair as the model records its prompt.
    got = INSTRUCTOR(str(trained), device="cpu").encode([[prompt, text]], normalize_embeddings=True)[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The product's embedder, torch and ONNX runtimes, and the LangChain class (ONNX by default).
    for runtime in ("torch", "onnx"):
        settings = load_settings(
            data_dir=str(tmp_path / "data"), model={"name": str(trained), "device": "cpu", "runtime": runtime}
        )
        vector = make_embedder(settings, cache=False).embed([text], SCIENCE.query)[0]
        np.testing.assert_allclose(vector, want, atol=1e-4, err_msg=runtime)
    langchain = InstructorEmbeddings(model_name=str(trained), domain="science", device="cpu")
    np.testing.assert_allclose(np.asarray(langchain.embed_query(text)), want, atol=1e-4)
    # Pooling leaves the instruction out: the same text under no instruction is another vector,
    # and the instruction's tokens are not averaged in (its own tokens alone would differ more).
    plain = make_embedder(load_settings(model={"name": str(trained), "runtime": "torch"}), cache=False)
    assert not np.allclose(plain.embed([text], None)[0], want, atol=1e-3)


def test_a_collection_built_with_it_records_the_model(trained: Path, tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path), model={"name": str(trained), "runtime": "torch"})
    embedder = make_embedder(settings, cache=False)
    record = expected_record(settings, embedder)
    assert record.model == str(trained.resolve())
    assert record.dimension == embedder.dimension


def test_same_seed_same_weights(tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path, max_steps=3, seed=7)
    first = train_model(medi_records(), settings=settings, output=tmp_path / "a")
    second = train_model(medi_records(), settings=settings, output=tmp_path / "b")
    assert first.steps == second.steps == 3
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_resume_continues_from_the_checkpoint(tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path, max_steps=6, save_steps=2)
    cancel = threading.Event()
    seen: list[int] = []

    def progress(step: int, total: int) -> None:
        seen.append(step)
        if step == 4:
            cancel.set()

    with pytest.raises(TrainingError, match="--resume"):
        train_model(
            medi_records(), settings=settings, output=tmp_path / "m", progress=progress, cancel=cancel
        )
    assert (tmp_path / "m" / "checkpoints" / "checkpoint-4").is_dir()
    assert not (tmp_path / "m" / RECORD_FILE).exists()
    resumed: list[int] = []
    result = train_model(
        medi_records(),
        settings=settings,
        output=tmp_path / "m",
        resume=True,
        progress=lambda s, t: resumed.append(s),
    )
    assert resumed == [5, 6], "the resumed run starts after the checkpoint's step"
    assert result.steps == 6
    # A finished run on the same data is kept as it is; on other data it is refused.
    again = train_model(medi_records(), settings=settings, output=tmp_path / "m", resume=True)
    assert again.seconds == 0.0 and again.steps == 6
    with pytest.raises(TrainingError, match="already holds a trained model"):
        train_model(medi_records()[:5], settings=settings, output=tmp_path / "m", resume=True)


def test_output_folder_with_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match="not empty"):
        train_model(medi_records(), settings=tiny_settings(tmp_path), output=tmp_path / "m")
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"


def test_no_instructions_ablation_trains_without_prompts(tmp_path: Path) -> None:
    result = train_model(
        medi_records(),
        settings=tiny_settings(tmp_path, max_steps=2),
        output=tmp_path / "b",
        use_instructions=False,
    )
    assert result.record["use_instructions"] is False
    assert result.record["instructions"] == {}
    assert all(not spec["prompts"] for spec in result.record["datasets"].values())


def test_one_task_per_batch_and_groups_by_instruction() -> None:
    records = medi_records()
    odd = MediRecord(Pair("Represent the claim:", "x"), Pair(SCIENCE.document or "", "y"), None, "facts")
    groups = group_tasks([*records, odd])
    assert [g.name for g in groups] == ["facts", "sts", "facts#2"]
    assert groups[0].prompts == {
        "anchor": prompt_text(SCIENCE.query),
        "positive": prompt_text(SCIENCE.document),
        "negative": prompt_text(SCIENCE.document),
    }
    datasets = build_datasets(groups)
    assert datasets["facts"].column_names == ["anchor", "positive", "negative"]
    assert datasets["sts"].column_names == ["anchor", "positive"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"query": ["i", "q"]}', r"medi.jsonl:2: field 'pos' is missing"),
        ('{"query": ["i", "q"], "pos": "text"}', r"medi.jsonl:2: field 'pos' must be \[instruction, text\]"),
        ('{"query": ["i", "q"], "pos": ["i", "  "]}', r"medi.jsonl:2: field 'pos' has an empty text"),
        ('{"query": ["i", "q"], "pos": ["i", "p"], "task_name": ""}', r"medi.jsonl:2: field 'task_name'"),
        ('{"query": ["i", "q"], "pos": ["i", "p"]', r"medi.jsonl:2: not valid JSON"),
    ],
)
def test_a_bad_record_names_its_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    good = json.dumps({"query": ["i", "q"], "pos": ["i", "p"], "task_name": "t"})
    path = tmp_path / "medi.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=message):
        read_medi(path)


def test_the_cli_reports_a_bad_record_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "medi.jsonl"
    path.write_text('{"query": ["i", "q"], "pos": ["i"]}\n', encoding="utf-8")
    assert main(["train", str(path), "--output", str(tmp_path / "m"), "--backend", "fake"]) == 1
    err = capsys.readouterr().err
    assert "medi.jsonl:1: field 'pos' must be [instruction, text]" in err
    assert not (tmp_path / "m").exists()


def test_the_original_medi_data_json_list_loads(tmp_path: Path) -> None:
    """The original repository's layout: one JSON list, tasks named by ``task_id`` or ``task_name``."""
    rows = [
        {
            "query": ["Represent the question:", "q1"],
            "pos": ["Represent the doc:", "d1"],
            "neg": ["Represent the doc:", "n1"],
            "task_id": 3,
        },
        {
            "query": ["Represent the question:", "q2"],
            "pos": ["Represent the doc:", "d2"],
            "neg": ["Represent the doc:", "n2"],
            "task_name": "quora",
        },
    ]
    path = tmp_path / "medi-data.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    records = read_medi(path)
    assert [r.task for r in records] == ["3", "quora"]
    assert records[0].neg == Pair("Represent the doc:", "n1")
