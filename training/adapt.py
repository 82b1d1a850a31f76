"""Label-free domain adaptation of a collection in one call: data, fine-tuning, re-embedding.

:func:`adapt_collection` runs three stages, each resumable and skipped when its output is
complete already (work files under ``<data_dir>/adapt/<collection>`` by default):

1. ``data``: label-free MEDI records from the collection's own chunks
   (:func:`training.builders.unlabeled.collection_records`: key phrases, headings, inverse
   cloze sentences, generated questions when a generator is configured), written to
   ``data.jsonl`` (:func:`training.medi.write_medi`), which a user can inspect and edit;
2. ``train``: the collection's own model fine-tuned on them, INSTRUCTOR's way
   (:func:`training.trainer.train_model`), into ``model/``; a killed or cancelled run continues
   from its last checkpoint;
3. ``reembed``: the collection re-embedded with the trained model into a new collection
   (:func:`ingest.reembed.reembed_collection`), whose record names the adapted model; a killed
   run continues with the documents not yet committed.

The collection itself is never written: the user switches by searching the new collection, which
is served with the adapted model it records (:attr:`AdaptResult.switch`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from config import display, override, validate_collection_name
from embedder import FakeEmbedder, make_embedder
from ingest.reembed import ReembedReport, derived_from, reembed_collection
from store.client import open_client
from store.core import VectorStore, store_for
from training.builders.unlabeled import collection_records, question_generator
from training.errors import AdaptCancelledError, TrainingDataError, TrainingError
from training.medi import MediRecord, read_medi, summarize, write_medi
from training.trainer import TrainResult, read_training_record, train_model

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from config import Settings
    from store.record import CollectionRecord

logger = logging.getLogger(__name__)

#: The stages, in the order they run.
Stage = Literal["data", "train", "reembed"]
STAGES: tuple[Stage, ...] = get_args(Stage)
#: Files of the work folder.
DATA_FILE = "data.jsonl"
MODEL_DIR = "model"
STATE_FILE = "adapt.json"
#: Suffix of the default target collection.
TARGET_SUFFIX = "-adapted"
#: How often a wait for the write lock looks at the cancel event, seconds.
_LOCK_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class AdaptEvent:
    """Progress of one stage.

    Attributes:
        stage: the stage (one of :data:`STAGES`).
        done: units done (data: chunks of the current kind; train: steps; reembed: chunks).
        total: units in all (0 while unknown).
        detail: what is being done (data: the pseudo-query kind).
    """

    stage: Stage
    done: int
    total: int
    detail: str = ""


Progress = Callable[[AdaptEvent], None]


@dataclass(frozen=True)
class AdaptResult:
    """What an adaptation produced.

    Attributes:
        collection: the adapted collection (unchanged).
        target: the new collection, embedded with the adapted model.
        base_model: the model the collection was built with (the one fine-tuned).
        model: the adapted model's folder.
        work_dir: the work folder (data, model, state).
        data: the MEDI training file.
        records: training records per task.
        train: the training run (steps, seconds, loss, record).
        reembed: the re-embedding run.
        reused: the stages whose output was complete already (skipped).
        seconds: wall time of this call.
    """

    collection: str
    target: str
    base_model: str
    model: Path
    work_dir: Path
    data: Path
    records: dict[str, int]
    train: TrainResult
    reembed: ReembedReport
    reused: tuple[Stage, ...] = ()
    seconds: float = 0.0

    @property
    def switch(self) -> str:
        """How the user switches to the adapted collection (the old one is untouched)."""
        return (
            f"collection {display(self.collection)} is unchanged; to use the adapted one, search "
            f"{display(self.target)}: instructor-search search QUERY --collection {display(self.target)} "
            f"(its fine-tuned model {display(str(self.model))} is recorded in it and loaded for it), "
            "or pick it in the app"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "collection": self.collection,
            "target": self.target,
            "base_model": self.base_model,
            "model": str(self.model),
            "work_dir": str(self.work_dir),
            "data": str(self.data),
            "records": dict(self.records),
            "train": {
                "steps": self.train.steps,
                "seconds": round(self.train.seconds, 1),
                "train_loss": self.train.train_loss,
            },
            "reembed": self.reembed.to_json(),
            "reused": list(self.reused),
            "seconds": round(self.seconds, 1),
            "switch": self.switch,
        }


@dataclass
class _Work:
    """One run's paths, progress and cancel."""

    work_dir: Path
    progress: Progress | None
    cancel: threading.Event | None
    reused: list[Stage] = field(default_factory=list)
    #: the run started over (``resume=False``): a target an earlier run built is rebuilt
    fresh: bool = False

    @property
    def data(self) -> Path:
        return self.work_dir / DATA_FILE

    @property
    def model(self) -> Path:
        return self.work_dir / MODEL_DIR

    def emit(self, stage: Stage, done: int, total: int, detail: str = "", *, stop: bool = True) -> None:
        """Report progress, then (with ``stop``) stop here if the run is cancelled.

        The trainer and the re-embedding stop on the cancel event by themselves, cleanly (a
        checkpoint saved, uncommitted documents rolled back): their progress passes ``stop=False``.
        """
        if self.progress is not None:
            self.progress(AdaptEvent(stage, done, total, detail))
        if stop:
            self.check_cancel(stage)

    def check_cancel(self, stage: Stage) -> None:
        """Raise :class:`AdaptCancelledError` when the cancel event is set."""
        if self.cancel is not None and self.cancel.is_set():
            raise AdaptCancelledError(
                f"adapt cancelled during the {stage} stage; what is done is kept in "
                f"{str(self.work_dir)!r}: run it again to resume"
            )


def default_target(collection: str) -> str:
    """The default name of the adapted collection: ``<collection>-adapted``."""
    return validate_collection_name(f"{collection}{TARGET_SUFFIX}")


def default_work_dir(settings: Settings, collection: str) -> Path:
    """The default work folder of a collection's adaptation: ``<data_dir>/adapt/<collection>``."""
    return settings.data_dir / "adapt" / collection


def adapt_collection(
    settings: Settings,
    *,
    collection: str,
    target: str | None = None,
    work_dir: Path | None = None,
    resume: bool = True,
    max_per_kind: int | None = None,
    client: QdrantClient | None = None,
    write_lock: threading.Lock | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> AdaptResult:
    """Adapt the model of a collection to its documents, without labels, into a new collection.

    Args:
        settings: the settings (``train`` for the run; ``model`` for the device, batch size and
            runtime of the re-embedding; the base model is the collection's own).
        collection: the collection to adapt (only read).
        target: the new collection (default ``<collection>-adapted``).
        work_dir: where the data and model go (default ``<data_dir>/adapt/<collection>``).
        resume: keep what an earlier run finished (each stage is skipped when complete, training
            continues from its checkpoint); ``False`` starts over (new data, a new model, the
            target rebuilt).
        max_per_kind: the most training records per pseudo-query kind (``None``: every chunk).
        client: an open Qdrant client of ``settings``' store (opened and closed here if ``None``).
        write_lock: held while the target is written (the app's write lock).
        progress: called with an :class:`AdaptEvent` as each stage advances.
        cancel: set it to stop at the next step or batch; running it again resumes.

    Returns:
        The result; :attr:`AdaptResult.switch` says how to use the new collection.

    Raises:
        AdaptCancelledError: ``cancel`` was set.
        TrainingError: the collection cannot be adapted (fake embedder, no usable chunks, a
            work folder of another collection).
        CollectionNotFoundError: the collection does not exist.
        IngestError: the target exists and is not a re-embedding of the collection.
    """
    started = time.perf_counter()
    name = validate_collection_name(collection)
    target_name = default_target(name) if target is None else validate_collection_name(target)
    if target_name == name:
        raise TrainingError(
            f"the target collection {target_name!r} is the collection itself; choose a new name"
        )
    work = _Work(
        Path(work_dir) if work_dir is not None else default_work_dir(settings, name), progress, cancel
    )
    with _client(settings, client) as opened:
        source = store_for(settings, name, client=opened)
        record = source.require_record()
        base = _base_model(name, record)
        _prepare(work, name, base, resume)
        records = _data_stage(work, settings, source, record, max_per_kind)
        trained = _train_stage(work, settings, base, records, use_instructions=_has_instructions(record))
        reembedded = _reembed_stage(
            work, settings, source, store_for(settings, target_name, client=opened), trained, write_lock
        )
    return AdaptResult(
        collection=name,
        target=target_name,
        base_model=base,
        model=trained.output,
        work_dir=work.work_dir,
        data=work.data,
        records=summarize(records).tasks,
        train=trained,
        reembed=reembedded,
        reused=tuple(work.reused),
        seconds=time.perf_counter() - started,
    )


@contextlib.contextmanager
def _client(settings: Settings, client: QdrantClient | None) -> Iterator[QdrantClient]:
    if client is not None:
        yield client
        return
    opened = open_client(settings)
    try:
        yield opened
    finally:
        opened.close()


def _base_model(collection: str, record: CollectionRecord) -> str:
    """The model to fine-tune: the one the collection was built with."""
    if record.model == FakeEmbedder.model_id:
        raise TrainingError(
            f"collection {collection!r} was built with the fake embedder, which cannot be fine-tuned; "
            "fix: ingest the documents with a real model (--backend sentence-transformers) and adapt that collection"
        )
    return record.model


def _has_instructions(record: CollectionRecord) -> bool:
    return any(value is not None for value in record.instructions.values())


def _prepare(work: _Work, collection: str, base: str, resume: bool) -> None:
    """Claim the work folder for this collection; without ``resume``, clear what an earlier run left."""
    state = work.work_dir / STATE_FILE
    if state.is_file():
        try:
            owner = json.loads(state.read_text(encoding="utf-8")).get("collection")
        except (OSError, json.JSONDecodeError, AttributeError) as exc:
            raise TrainingError(
                f"{str(state)!r} is unreadable ({exc}); fix: remove it or pass another work folder"
            ) from exc
        if owner != collection:
            raise TrainingError(
                f"work folder {str(work.work_dir)!r} belongs to the adaptation of collection {owner!r}; "
                "fix: pass another work folder"
            )
    elif work.work_dir.is_dir() and any(work.work_dir.iterdir()):
        raise TrainingError(
            f"work folder {str(work.work_dir)!r} is not empty and holds no adaptation; fix: pass a new or empty folder"
        )
    if not resume:
        work.data.unlink(missing_ok=True)
        shutil.rmtree(work.model, ignore_errors=True)
        work.fresh = True
    work.work_dir.mkdir(parents=True, exist_ok=True)
    state.write_text(
        json.dumps({"collection": collection, "base_model": base}, indent=2) + "\n", encoding="utf-8"
    )


def _data_stage(
    work: _Work, settings: Settings, source: VectorStore, record: CollectionRecord, max_per_kind: int | None
) -> list[MediRecord]:
    """Stage 1: the label-free records, from ``data.jsonl`` when it is there (written atomically)."""
    if work.data.is_file():
        records = read_medi(work.data)
        work.reused.append("data")
        work.emit("data", 1, 1, f"{len(records)} records in {work.data.name}")
        return records
    work.emit("data", 0, 0, "reading chunks")
    chunks = list(source.iter_chunks())
    records = collection_records(
        chunks,
        domain=record.domain,
        seed=settings.train.seed,
        max_per_kind=max_per_kind,
        generator=question_generator(settings),
        progress=lambda kind, done, total: work.emit("data", done, total, kind),
    )
    if not records:
        raise TrainingDataError(
            f"collection {source.collection!r} yields no training record ({len(chunks)} chunks); fix: "
            "ingest more text (pseudo-queries need chunks of 20 words or more)"
        )
    write_medi(records, work.data)
    logger.info("wrote %d training records to %s", len(records), work.data)
    return records


def _train_stage(
    work: _Work, settings: Settings, base: str, records: list[MediRecord], *, use_instructions: bool
) -> TrainResult:
    """Stage 2: fine-tune the base model (a finished model on the same data is kept)."""
    finished = read_training_record(work.model)
    if (
        finished is not None
        and finished.get("data", {}).get("sha256") != summarize(records, [work.data]).sha256
    ):
        logger.warning("%s was trained on other data; training again", work.model)
        shutil.rmtree(work.model)
        finished = None
    try:
        result = train_model(
            records,
            settings=override(settings, model={"name": base, "backend": "sentence-transformers"}),
            output=work.model,
            resume=True,
            use_instructions=use_instructions,
            data_files=[work.data],
            progress=lambda step, total: work.emit("train", step, total, stop=False),
            cancel=work.cancel,
        )
    except TrainingError:
        work.check_cancel("train")  # a cancelled run: say so, and how to resume
        raise
    if finished is not None:
        work.reused.append("train")
    work.emit("train", result.steps, result.steps)
    return result


def _reembed_stage(
    work: _Work,
    settings: Settings,
    source: VectorStore,
    target: VectorStore,
    trained: TrainResult,
    write_lock: threading.Lock | None,
) -> ReembedReport:
    """Stage 3: the collection re-embedded with the trained model (documents already there are skipped)."""
    note = {
        "adapted_model": {
            "data_sha256": trained.record.get("data", {}).get("sha256"),
            "steps": trained.record.get("steps"),
            "trained_at": trained.record.get("created_at"),
        }
    }
    work.emit("reembed", 0, 0, "loading the adapted model")
    embedder = make_embedder(
        override(settings, model={"name": str(trained.output), "backend": "sentence-transformers"})
    )
    with _holding(write_lock, work):
        _drop_stale_target(source, target, note, rebuild=work.fresh)
        report = reembed_collection(
            source,
            target,
            settings=settings,
            embedder=embedder,
            note=note,
            progress=lambda done, total: work.emit("reembed", done, total, stop=False),
            cancel=work.cancel,
        )
    if report.cancelled:
        work.check_cancel("reembed")
    if report.copied == 0 and report.removed == 0 and report.skipped == report.documents:
        work.reused.append("reembed")
    return report


def _drop_stale_target(
    source: VectorStore, target: VectorStore, note: dict[str, Any], *, rebuild: bool = False
) -> None:
    """Drop a target re-embedded from ``source`` with an earlier training of the model (any, with ``rebuild``).

    The training is told apart by its data, steps and creation time (to the second); a run that
    starts over (``rebuild``) drops the target whatever it records, since a retraining within
    the same second records the same note.
    """
    found = target.read_record()
    origin = derived_from(found) if found is not None else None
    if origin is None or origin.get("collection") != source.collection:
        return  # new, or not ours: reembed_collection creates it or refuses it
    if rebuild or origin.get("adapted_model") != note["adapted_model"]:
        logger.warning(
            "%s holds vectors of an earlier training of the model; re-embedding it", target.collection
        )
        target.drop()


@contextlib.contextmanager
def _holding(lock: threading.Lock | None, work: _Work) -> Iterator[None]:
    """Hold ``lock`` (if any), waiting for it as long as the run is not cancelled."""
    if lock is None:
        yield
        return
    while not lock.acquire(timeout=_LOCK_POLL_SECONDS):
        work.check_cancel("reembed")
    try:
        yield
    finally:
        lock.release()
