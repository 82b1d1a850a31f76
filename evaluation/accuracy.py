"""Accuracy of each inference runtime against torch fp32, on the same real passages.

For 500 NFCorpus passages (document instruction) and the NFCorpus test queries (query
instruction), embedded once by torch fp32 and once by each runtime:

* ``min_cosine`` / ``mean_cosine``: cosine between a passage's two vectors;
* ``top10_overlap``: for each query, the share of the torch top-10 passages (among the 500)
  that the runtime's top-10 also holds, averaged over the queries;
* ``ndcg_at_10``: NFCorpus nDCG@10 of the full retrieval evaluation with that runtime
  (``instructor-search eval beir ... --runtime R --json``), read from its JSON output (``None``
  when that file is absent or empty), and its difference to torch. A runtime that loses more than :data:`MAX_NDCG_DROP` is not offered as
  a default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.errors import EvaluationError

if TYPE_CHECKING:
    from config import Runtime, Settings
    from evaluation.latency import Corpus

#: Largest nDCG@10 loss against torch fp32 that a default runtime may have.
MAX_NDCG_DROP = 0.005


def read_ndcg(path: Path) -> float:
    """nDCG@10 from an ``eval beir --json`` output or a ``docs/results/beir/*.json`` record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"cannot read nDCG@10 from {str(path)!r}: {exc}") from exc
    for candidate in (
        data,
        data.get("data", {}),
        *(data.get("results", []) if isinstance(data, dict) else []),
    ):
        if isinstance(candidate, dict) and "ndcg_at_10" in candidate:
            return float(candidate["ndcg_at_10"])
    raise EvaluationError(
        f"{str(path)!r} holds no ndcg_at_10; pass the JSON of `instructor-search eval beir`"
    )


def top_k_overlap(reference: np.ndarray, other: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's top-``k`` columns (by score) that both score matrices agree on."""
    ref = np.argsort(-reference, axis=1)[:, :k]
    got = np.argsort(-other, axis=1)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ref, got, strict=True)]))


def measure_accuracy(
    base: Settings,
    corpus: Corpus,
    runtimes: Sequence[Runtime],
    *,
    ndcg: Mapping[str, Path] | None = None,
) -> list[dict[str, Any]]:
    """Cosine and neighbour agreement of each runtime with torch fp32 (and nDCG@10 when given).

    Args:
        base: the settings (model, instructions; ONNX exports go under its data folder).
        corpus: the passages and queries.
        runtimes: runtimes to compare (``torch`` is the reference and is always included).
        ndcg: ``runtime -> JSON file`` of NFCorpus evaluations with that runtime.

    Returns:
        One dict per runtime, ``torch`` first.
    """
    from embedder import make_embedder
    from store.record import expected_record

    results: list[dict[str, Any]] = []
    reference: tuple[np.ndarray, np.ndarray] | None = None
    ordered: list[Runtime] = ["torch", *[r for r in runtimes if r != "torch"]]
    for runtime in ordered:
        embedder = make_embedder(base, runtime=runtime, cache=False)
        record = expected_record(base, embedder)
        docs = embedder.embed(corpus.passages, record.instruction_set.document)
        queries = embedder.embed(corpus.queries, record.instruction_set.query)
        if reference is None:
            reference = (docs, queries)
        ref_docs, ref_queries = reference
        cosines = np.sum(ref_docs * docs, axis=1) / (
            np.linalg.norm(ref_docs, axis=1) * np.linalg.norm(docs, axis=1)
        )
        entry: dict[str, Any] = {
            "runtime": runtime,
            "passages": len(corpus.passages),
            "queries": len(corpus.queries),
            "min_cosine": round(float(cosines.min()), 6),
            "mean_cosine": round(float(cosines.mean()), 6),
            "top10_overlap": round(top_k_overlap(ref_queries @ ref_docs.T, queries @ docs.T), 4),
        }
        results.append(entry)
    # Read last: the evaluations may still have been running when this started.
    files = dict(ndcg or {})
    values = {r: read_ndcg(files[r]) for r in files if files[r].is_file() and files[r].stat().st_size}
    for entry in results:
        value = values.get(entry["runtime"])
        entry["ndcg_at_10"] = round(value, 4) if value is not None else None
        if value is not None and "torch" in values:
            entry["ndcg_drop"] = round(values["torch"] - value, 4)
            entry["default_allowed"] = values["torch"] - value <= MAX_NDCG_DROP
    return results
