"""INSTRUCTOR-style fine-tuning with sentence-transformers' own training stack.

The recipe of INSTRUCTOR (Su et al., 2022), on :class:`~sentence_transformers.SentenceTransformerTrainer`:

* every example is ``[instruction, text]``; the instruction is the sentence-transformers
  *prompt* of its column (never glued onto the text), and the model's pooling leaves prompt
  tokens out of the mean: the very preprocessing and pooling :mod:`embedder` runs at inference;
* every batch comes from one task (one dataset of a ``DatasetDict``, drawn by
  ``MultiDatasetBatchSamplers.PROPORTIONAL``), so in-batch negatives come from the same task,
  and no text appears twice in a batch (``BatchSamplers.NO_DUPLICATES``);
* the loss is contrastive with a temperature (``CachedMultipleNegativesRankingLoss``, scale
  ``1 / temperature``), with the record's hard negative as an extra column; the cached (GradCache)
  form gives large batches in little memory;
* AdamW, learning rate 2e-5, linear warm-up over 10% of the steps.

The output folder is a sentence-transformers model that every loader of this product takes, with
the instructions it was trained with as its ``prompts`` and :data:`RECORD_FILE` naming the base
model, the training data and the run.
"""

from __future__ import annotations

import json
import logging
import resource
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config import Settings
from embedder.instructions import prompt_text
from embedder.loading import load_sentence_transformer
from training.errors import TrainingError
from training.medi import MediRecord, Pair, read_medi, summarize

if TYPE_CHECKING:
    from datasets import DatasetDict
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

#: The training record written into every trained model folder (last: it marks the run complete).
RECORD_FILE = "instructor_search_training.json"
CHECKPOINTS = "checkpoints"
RECORD_VERSION = 1

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainResult:
    """What a finished training run produced.

    Attributes:
        output: the saved model folder (``model.name`` can be set to it).
        steps: optimiser steps taken in all (resumed runs included).
        seconds: wall time of this call's training.
        train_loss: the trainer's mean training loss (``None`` when nothing ran).
        record: the training record saved in the folder.
    """

    output: Path
    steps: int
    seconds: float
    train_loss: float | None
    record: dict[str, Any]


@dataclass(frozen=True)
class TaskGroup:
    """Records of one task that share their instructions (one dataset, one prompt per column).

    Attributes:
        name: dataset name (the task, suffixed when a task has several instruction sets).
        task: the task name of the records.
        prompts: column name to prompt (``anchor``, ``positive``, ``negative``).
        records: the records.
    """

    name: str
    task: str
    prompts: dict[str, str]
    records: list[MediRecord]


def _prompt(pair: Pair | None, use_instructions: bool) -> str | None:
    return prompt_text(pair.instruction) if pair is not None and use_instructions else None


def group_tasks(records: Sequence[MediRecord], *, use_instructions: bool = True) -> list[TaskGroup]:
    """Split records into per-task datasets whose columns each have one instruction.

    A task's records normally share their instructions (MEDI writes one per task and side); a
    task whose records differ, or of which only some carry a negative, becomes several datasets,
    so that each batch still comes from one task.

    Args:
        records: the training records.
        use_instructions: ``False`` drops every instruction (the paper's ablation).

    Returns:
        The groups, in order of first appearance.
    """
    groups: dict[tuple[str, str | None, str | None, str | None, bool], list[MediRecord]] = {}
    for record in records:
        key = (
            record.task,
            _prompt(record.query, use_instructions),
            _prompt(record.pos, use_instructions),
            _prompt(record.neg, use_instructions),
            record.neg is not None,
        )
        groups.setdefault(key, []).append(record)
    per_task: dict[str, int] = {}
    out: list[TaskGroup] = []
    for (task, query, pos, neg, _), members in groups.items():
        per_task[task] = per_task.get(task, 0) + 1
        name = task if per_task[task] == 1 else f"{task}#{per_task[task]}"
        prompts = {
            column: prompt
            for column, prompt in (("anchor", query), ("positive", pos), ("negative", neg))
            if prompt is not None
        }
        out.append(TaskGroup(name=name, task=task, prompts=prompts, records=members))
    return out


def build_datasets(groups: Sequence[TaskGroup]) -> DatasetDict:
    """One Hugging Face dataset per group: columns ``anchor``, ``positive`` and, with negatives, ``negative``."""
    from datasets import Dataset, DatasetDict

    data: dict[str, Dataset] = {}
    for group in groups:
        columns: dict[str, list[str]] = {
            "anchor": [r.query.text for r in group.records],
            "positive": [r.pos.text for r in group.records],
        }
        if group.records[0].neg is not None:
            columns["negative"] = [r.neg.text for r in group.records if r.neg is not None]
        data[group.name] = Dataset.from_dict(columns)
    return DatasetDict(data)


def trained_prompts(groups: Sequence[TaskGroup]) -> dict[str, str]:
    """The instructions a model was trained with, as sentence-transformers prompts.

    Keys are ``<task>/query`` and ``<task>/document`` (the negative shares the document's
    instruction in MEDI; a different one is kept as ``<task>/negative``).
    """
    prompts: dict[str, str] = {}
    for group in groups:
        for column, role in (("anchor", "query"), ("positive", "document"), ("negative", "negative")):
            prompt = group.prompts.get(column)
            if prompt is None or (role == "negative" and prompt == group.prompts.get("positive")):
                continue
            prompts.setdefault(f"{group.task}/{role}", prompt)
    return prompts


def read_training_record(folder: str | Path) -> dict[str, Any] | None:
    """The training record of a model folder, or ``None`` for a model this product did not train."""
    path = Path(folder) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainingError(
            f"training record {str(path)!r} is unreadable ({exc}); fix: retrain into a new folder"
        ) from exc
    return data if isinstance(data, dict) else None


def _check_output(output: Path, data_sha: str, resume: bool) -> dict[str, Any] | None:
    """The finished record to return at once, or ``None`` to train; refuse a folder we would clobber."""
    record = read_training_record(output)
    if record is not None:
        if resume and record.get("data", {}).get("sha256") == data_sha:
            return record
        raise TrainingError(
            f"output folder {str(output)!r} already holds a trained model"
            + (" trained on other data" if resume else "")
            + "; fix: choose a new --output"
            + ("" if resume else ", or pass --resume to keep it when the data is the same")
        )
    if output.is_dir() and any(output.iterdir()) and not (output / CHECKPOINTS).is_dir():
        raise TrainingError(
            f"output folder {str(output)!r} is not empty and holds no training run; fix: choose a new or empty --output"
        )
    return None


def last_checkpoint(output: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder of a run, if any."""
    folder = output / CHECKPOINTS
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def _load_base(settings: Settings) -> tuple[SentenceTransformer, str, int]:
    model, resolved = load_sentence_transformer(
        settings.model.name, device=settings.model.device, max_seq_length=settings.model.max_seq_length
    )
    inference_length = int(model.max_seq_length or 512)
    if settings.train.max_seq_length is not None:
        model.max_seq_length = settings.train.max_seq_length
    return model, resolved.model_id, inference_length


def _callbacks(progress: Progress | None, cancel: threading.Event | None, losses: list[float]) -> list[Any]:
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        """Progress, loss log and cancel (a checkpoint is saved before stopping)."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if progress is not None:
                progress(int(state.global_step), int(state.max_steps))
            if cancel is not None and cancel.is_set():
                control.should_save = True
                control.should_training_stop = True
            return control

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> Any:
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
            return control

    return [_Report()]


def _arguments(settings: Settings, output: Path, prompts: dict[str, dict[str, str]]) -> Any:
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers, MultiDatasetBatchSamplers

    train = settings.train
    device = settings.model.device
    on_cpu = (device is not None and device.startswith("cpu")) or not torch.cuda.is_available()
    return SentenceTransformerTrainingArguments(
        output_dir=str(output / CHECKPOINTS),
        num_train_epochs=train.epochs,
        max_steps=train.max_steps or -1,
        per_device_train_batch_size=train.batch_size,
        learning_rate=train.learning_rate,
        warmup_steps=train.warmup_ratio,
        lr_scheduler_type="linear",
        seed=train.seed,
        data_seed=train.seed,
        save_strategy="steps",
        save_steps=train.save_steps,
        save_total_limit=train.save_total_limit,
        logging_steps=train.logging_steps,
        report_to="none",
        use_cpu=device is not None and device.startswith("cpu"),
        dataloader_num_workers=0,
        dataloader_pin_memory=not on_cpu,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.PROPORTIONAL,
        prompts=prompts,
    )


def make_trainer(
    model: SentenceTransformer,
    groups: Sequence[TaskGroup],
    settings: Settings,
    output: Path,
    *,
    callbacks: Sequence[Any] = (),
) -> Any:
    """The :class:`~sentence_transformers.SentenceTransformerTrainer` of a run.

    Its data collator is what turns ``[instruction, text]`` into model inputs during training
    (the prompt prepended, its length handed to the pooling), so a test can compare its
    embeddings with those of the inference paths.

    Args:
        model: the model to train (its pooling excludes prompt tokens).
        groups: the per-task datasets (:func:`group_tasks`).
        settings: ``train`` is read.
        output: the run's folder (checkpoints in ``output/checkpoints``).
        callbacks: ``transformers`` trainer callbacks.

    Returns:
        The trainer.
    """
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    loss = CachedMultipleNegativesRankingLoss(
        model, scale=1.0 / settings.train.temperature, mini_batch_size=settings.train.mini_batch_size
    )
    return SentenceTransformerTrainer(
        model=model,
        args=_arguments(settings, output, {g.name: g.prompts for g in groups if g.prompts}),
        train_dataset=build_datasets(groups),
        loss=loss,
        callbacks=list(callbacks),
    )


def train_model(
    records: Sequence[MediRecord],
    *,
    settings: Settings,
    output: Path,
    resume: bool = False,
    use_instructions: bool = True,
    data_files: Sequence[str | Path] = (),
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> TrainResult:
    """Fine-tune ``settings.model.name`` on MEDI records, the INSTRUCTOR way, into ``output``.

    Args:
        records: the training records (see :mod:`training.medi`).
        settings: the settings; ``model`` names the base model and its device, ``train`` the run.
        output: the model folder to write (checkpoints go to ``output/checkpoints`` meanwhile).
        resume: continue from the last checkpoint (after a kill or a cancel); a finished run on
            the same data is returned as it is.
        use_instructions: ``False`` trains without any instruction (the paper's ablation).
        data_files: the files the records came from (recorded by name).
        progress: called with (step, total steps) after every step.
        cancel: set it to stop at the end of the current step; a checkpoint is saved, so that
            ``resume=True`` continues.

    Returns:
        The result; :attr:`TrainResult.record` is also saved as ``output/`` :data:`RECORD_FILE`.

    Raises:
        TrainingError: no records, an output folder that holds something else, or a cancelled run.
        ModelNotFoundError: the base model cannot be loaded.
    """
    if not records:
        raise TrainingError("no training records; fix: pass a MEDI file with at least one record")
    output = Path(output)
    summary = summarize(records, data_files)
    finished = _check_output(output, summary.sha256, resume)
    if finished is not None:
        logger.info("%s already holds this run (data %s); nothing to train", output, summary.sha256[:12])
        return TrainResult(output, int(finished.get("steps", 0)), 0.0, None, finished)
    groups = group_tasks(records, use_instructions=use_instructions)
    model, base_id, inference_length = _load_base(settings)
    losses: list[float] = []
    trainer = make_trainer(model, groups, settings, output, callbacks=_callbacks(progress, cancel, losses))
    checkpoint = last_checkpoint(output) if resume else None
    if checkpoint is None and (output / CHECKPOINTS).is_dir():
        shutil.rmtree(output / CHECKPOINTS)  # a fresh run: stale checkpoints must not mix in
    started = time.perf_counter()
    outcome = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - started
    steps = int(trainer.state.global_step)
    if cancel is not None and cancel.is_set():
        raise TrainingError(
            f"training cancelled at step {steps}; the checkpoint is in {str(output / CHECKPOINTS)!r}; "
            "fix: run again with --resume to continue"
        )
    model.max_seq_length = inference_length
    model.prompts = dict[str, str | None](trained_prompts(groups))
    record = _record(settings, base_id, summary.as_dict(), groups, steps, seconds, losses, use_instructions)
    _save(model, output, record)
    return TrainResult(output, steps, seconds, float(outcome.training_loss), record)


def _record(
    settings: Settings,
    base_id: str,
    data: dict[str, Any],
    groups: Sequence[TaskGroup],
    steps: int,
    seconds: float,
    losses: list[float],
    use_instructions: bool,
) -> dict[str, Any]:
    return {
        "version": RECORD_VERSION,
        "base_model": base_id,
        "use_instructions": use_instructions,
        "instructions": trained_prompts(groups),
        "datasets": {
            g.name: {"task": g.task, "records": len(g.records), "prompts": g.prompts} for g in groups
        },
        "data": data,
        "train": settings.train.model_dump(),
        "loss": "CachedMultipleNegativesRankingLoss",
        "steps": steps,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "logged_losses": [round(value, 5) for value in losses],
        "device": settings.model.device or "auto",
        "versions": {name: version(name) for name in ("torch", "transformers", "sentence-transformers")},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _save(model: SentenceTransformer, output: Path, record: dict[str, Any]) -> None:
    """Save the model, drop the checkpoints, and write the record last (it marks the folder complete)."""
    output.mkdir(parents=True, exist_ok=True)
    model.save(str(output), safe_serialization=True)
    shutil.rmtree(output / CHECKPOINTS, ignore_errors=True)
    tmp = output / (RECORD_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(output / RECORD_FILE)


def train_files(
    files: Sequence[str | Path],
    *,
    settings: Settings,
    output: Path,
    resume: bool = False,
    use_instructions: bool = True,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> TrainResult:
    """Read MEDI files (see :func:`training.medi.read_medi`) and train on all of them (:func:`train_model`).

    Raises:
        TrainingDataError: a file is missing or a record is malformed (file, line and field named).
        TrainingError: see :func:`train_model`.
    """
    return train_model(
        read_medi(files),
        settings=settings,
        output=output,
        resume=resume,
        use_instructions=use_instructions,
        data_files=files,
        progress=progress,
        cancel=cancel,
    )
