"""Reading BEIR folders and scoring runs with pytrec_eval.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (the
queries of *every* split) and ``qrels/<split>.tsv`` (header ``query-id corpus-id score``; the
official files use CRLF line endings). A split is evaluated on the query ids of its qrels only.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from evaluation.errors import EvaluationError

#: Metric keys of the reports, in order.
METRIC_KEYS = ("ndcg_at_10", "recall_at_100", "mrr_at_10", "map_at_100")


@dataclass(frozen=True)
class BeirDocument:
    """One corpus document."""

    doc_id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """Title and text joined by a space, as MTEB embeds BEIR documents."""
        return f"{self.title} {self.text}".strip()


@dataclass(frozen=True)
class BeirDataset:
    """The queries and judgements of one split, and where the corpus is.

    Attributes:
        name: folder name (e.g. ``scifact``).
        folder: the BEIR folder.
        split: the qrels split.
        queries: query id → text, only the split's queries.
        qrels: query id → {doc id → relevance}.
        corpus_size: documents in ``corpus.jsonl``.
    """

    name: str
    folder: Path
    split: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    corpus_size: int

    def corpus(self) -> Iterator[BeirDocument]:
        """Stream the corpus (it is not held in memory)."""
        yield from iter_corpus(self.folder / "corpus.jsonl")


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise EvaluationError(
            f"{what} not found: {str(path)!r}. A BEIR folder needs corpus.jsonl, queries.jsonl and "
            "qrels/<split>.tsv; pass the folder that contains them."
        )
    return path


def iter_corpus(path: Path) -> Iterator[BeirDocument]:
    """Documents of a ``corpus.jsonl``, one at a time."""
    with _require(path, "corpus").open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                yield BeirDocument(str(row["_id"]), str(row.get("title") or ""), str(row.get("text") or ""))
            except (json.JSONDecodeError, KeyError) as exc:
                raise EvaluationError(f"{path}:{line_number}: not a BEIR corpus line ({exc})") from exc


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read a qrels TSV (CRLF or LF, with or without the header line)."""
    qrels: dict[str, dict[str, int]] = {}
    with _require(path, "qrels").open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            cells = [cell.strip() for cell in row]
            if len(cells) < 3 or not cells[0] or cells[0] == "query-id":
                continue
            try:
                score = int(float(cells[2]))
            except ValueError as exc:
                raise EvaluationError(f"{path}: bad relevance score {cells[2]!r} in row {row!r}") from exc
            qrels.setdefault(cells[0], {})[cells[1]] = score
    if not qrels:
        raise EvaluationError(f"{path}: no judgements found")
    return qrels


def load_beir(folder: str | Path, split: str = "test") -> BeirDataset:
    """Load a BEIR folder's split.

    Args:
        folder: the BEIR folder.
        split: qrels split (``test``, ``train``, ``dev``).

    Returns:
        The dataset (the corpus itself is streamed by :meth:`BeirDataset.corpus`).

    Raises:
        EvaluationError: a file is missing or malformed.
    """
    root = Path(folder)
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = (
            sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        )
        raise EvaluationError(
            f"split {split!r} has no qrels at {str(qrels_path)!r}; available splits: {available or 'none'}"
        )
    qrels = read_qrels(qrels_path)
    queries: dict[str, str] = {}
    with _require(root / "queries.jsonl", "queries").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                if str(row["_id"]) in qrels:
                    queries[str(row["_id"])] = str(row["text"])
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise EvaluationError(
            f"{len(missing)} qrels queries have no text in queries.jsonl, e.g. {missing[:3]}"
        )
    corpus_size = sum(1 for _ in iter_corpus(root / "corpus.jsonl"))
    return BeirDataset(root.name, root, split, queries, qrels, corpus_size)


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    *,
    ignore_identical_ids: bool = True,
) -> dict[str, float]:
    """Score a run with pytrec_eval: nDCG@10, Recall@100, MRR@10 and MAP@100 (means over queries).

    Args:
        qrels: query id → {doc id → relevance}.
        run: query id → {doc id → score}; queries without results count as zero.
        ignore_identical_ids: drop hits whose doc id equals the query id (as BEIR and MTEB do).

    Returns:
        The four metrics under :data:`METRIC_KEYS`.
    """
    import pytrec_eval

    cleaned: dict[str, dict[str, float]] = {}
    for qid in qrels:
        hits = dict(run.get(qid, {}))
        if ignore_identical_ids:
            hits.pop(qid, None)
        cleaned[qid] = {doc: float(score) for doc, score in hits.items()}
    judged = {qid: dict(docs) for qid, docs in qrels.items()}
    evaluator = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.100", "map_cut.100"})
    scores = evaluator.evaluate(cleaned)
    top10 = {
        qid: dict(sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))[:10]) for qid, hits in cleaned.items()
    }
    rr = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(top10)
    count = len(judged)

    def mean(values: Mapping[str, Mapping[str, float]], key: str) -> float:
        return sum(values.get(qid, {}).get(key, 0.0) for qid in judged) / count

    return {
        "ndcg_at_10": mean(scores, "ndcg_cut_10"),
        "recall_at_100": mean(scores, "recall_100"),
        "mrr_at_10": mean(rr, "recip_rank"),
        "map_at_100": mean(scores, "map_cut_100"),
    }
