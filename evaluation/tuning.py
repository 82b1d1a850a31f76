"""Tune the retrieval settings on a BEIR *train* split, so the test split is scored once, untuned.

A grid of search configurations (mode, fusion, RRF rank constant and weights, keyword weights)
is run against one kept collection: the corpus is ingested once (or found already stored) and
every configuration only searches it again, with the query embeddings cached across
configurations. Each configuration is scored with the same pytrec_eval metrics as ``eval beir``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from config import Settings, override
from evaluation.beir import BeirDataset
from evaluation.runner import InstructionChoice, run_beir


@dataclass(frozen=True)
class TuneConfig:
    """One point of the grid.

    Attributes:
        mode: retrieval mode.
        fusion: ``rrf`` or ``dbsf`` (fused modes).
        rrf_k: RRF rank constant (``None``: Qdrant's default, 2).
        weights: RRF weights by representation.
        keyword_weights: (chunk, keywords) weights of the keyword vectors.
    """

    mode: str
    fusion: str = "rrf"
    rrf_k: int | None = None
    weights: dict[str, float] = field(default_factory=dict)
    keyword_weights: tuple[float, float] | None = None

    @property
    def fused(self) -> bool:
        """Whether the mode fuses several rankings (so the fusion settings apply)."""
        from retrieval.modes import MODES

        return len(MODES.get(self.mode, ())) != 1

    def label(self) -> str:
        """A short, unique name, e.g. ``hybrid rrf(k=60,sparse=0.5)``."""
        parts = [self.mode]
        if self.fused and self.fusion == "dbsf":
            parts.append("dbsf")
        elif self.fused:
            inner = ([f"k={self.rrf_k}"] if self.rrf_k is not None else ["k=2"]) + [
                f"{name}={weight:g}" for name, weight in sorted(self.weights.items())
            ]
            parts.append(f"rrf({','.join(inner)})")
        if self.keyword_weights is not None:
            parts.append(f"kw={self.keyword_weights[0]:g}/{self.keyword_weights[1]:g}")
        return " ".join(parts)


def default_grid(representations: Sequence[str]) -> list[TuneConfig]:
    """The grid for a collection with these representations (``dense`` always present)."""
    have = set(representations)
    grid = [TuneConfig("dense")]
    if "sparse" in have:
        grid.append(TuneConfig("sparse"))
        for k in (None, 10, 30, 60):
            for sparse_weight in (0.5, 1.0, 1.5):
                weights = {} if sparse_weight == 1.0 else {"sparse": sparse_weight}
                grid.append(TuneConfig("hybrid", rrf_k=k, weights=weights))
        grid.append(TuneConfig("hybrid", fusion="dbsf"))
    if "sentences" in have:
        grid.append(TuneConfig("sentences"))
        if "sparse" in have:
            for k in (None, 60):
                grid.append(TuneConfig("hybrid+sentences", rrf_k=k))
            grid.append(TuneConfig("hybrid+sentences", fusion="dbsf"))
    if "keywords" in have:
        for mix in ((0.9, 0.1), (0.7, 0.3), (0.5, 0.5)):
            grid.append(TuneConfig("keywords", keyword_weights=mix))
            if "sparse" in have:
                grid.append(TuneConfig("hybrid+keywords", rrf_k=60, keyword_weights=mix))
    return grid


def sample_queries(dataset: BeirDataset, limit: int | None, seed: int = 0) -> BeirDataset:
    """At most ``limit`` judged queries of the split, drawn reproducibly (``None``: all)."""
    if limit is None or len(dataset.queries) <= limit:
        return dataset
    keep = sorted(random.Random(seed).sample(sorted(dataset.queries), limit))
    return replace(
        dataset,
        queries={qid: dataset.queries[qid] for qid in keep},
        qrels={qid: dataset.qrels[qid] for qid in keep if qid in dataset.qrels},
    )


def run_tuning(
    dataset: BeirDataset,
    *,
    settings: Settings,
    embedder: Any,
    instructions: InstructionChoice,
    store_dir: Path,
    grid: Sequence[TuneConfig] | None = None,
    on_result: Callable[[TuneConfig, dict[str, Any]], None] | None = None,
    modes: Sequence[str] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Score every configuration of the grid on the dataset's split.

    Args:
        dataset: the (train) split.
        settings: base settings.
        embedder: the embedder (pass a cached one: each query is then embedded once).
        instructions: the instructions of the collection.
        store_dir: the kept collection's folder (built on the first configuration if needed).
        grid: the configurations (``None``: :func:`default_grid` of the collection).
        on_result: called after each configuration.
        modes: only the configurations of these modes (``None``: all).
        on_progress: progress of the first run (which ingests the corpus if it is not stored yet).

    Returns:
        One row per configuration: its label and settings, nDCG@10, Recall@100, MRR@10, MAP@100.
    """
    rows: list[dict[str, Any]] = []
    first = run_beir(
        dataset,
        settings=settings,
        embedder=embedder,
        instructions=instructions,
        store_dir=store_dir,
        mode="dense",
        on_progress=on_progress,
    )
    configs = list(grid) if grid is not None else default_grid(["dense", *first.representations])
    if modes is not None:
        configs = [config for config in configs if config.mode in modes]
    for config in configs:
        if config.mode == "dense" and config.keyword_weights is None:
            result = first
        else:
            search = {"fusion": config.fusion, "rrf_k": config.rrf_k, "weights": dict(config.weights)}
            result = run_beir(
                dataset,
                settings=override(settings, search=search),
                embedder=embedder,
                instructions=instructions,
                store_dir=store_dir,
                mode=config.mode,
                keyword_weights=config.keyword_weights,
            )
        row = {
            "config": config.label(),
            "mode": config.mode,
            "fusion": config.fusion if config.fused else None,
            "rrf_k": config.rrf_k,
            "weights": dict(config.weights),
            "keyword_weights": list(config.keyword_weights) if config.keyword_weights else None,
            "queries": result.queries,
            "ndcg_at_10": result.ndcg_at_10,
            "recall_at_100": result.recall_at_100,
            "mrr_at_10": result.mrr_at_10,
            "map_at_100": result.map_at_100,
            "search_seconds": result.search_seconds,
        }
        rows.append(row)
        if on_result is not None:
            on_result(config, row)
    return rows


__all__ = ["TuneConfig", "default_grid", "run_tuning", "sample_queries"]
