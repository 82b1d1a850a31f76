"""Training records from a BEIR folder's qrels: one task per dataset, the product's own instructions.

Each judged ``(query, document)`` pair with a relevance above zero is a record. The query side
is embedded under the query instruction and the document (``title text``, as MTEB embeds BEIR
documents) under the document instruction that the product uses at search and ingest time for
the dataset's domain (:meth:`embedder.instructions.InstructionSet.for_retrieval`). The hard
negative is mined with BM25 (:mod:`training.builders.negatives`): the top-k of the whole corpus
minus every positive of the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from embedder.instructions import InstructionSet
from evaluation.beir import load_beir
from training.builders.common import check_limit, check_negatives, pair, sample, seeded
from training.builders.negatives import Bm25Index, near_copy, pick_negative
from training.errors import TrainingDataError
from training.medi import MediRecord

#: The domain of the instructions of the datasets the product is measured on (folder name → preset).
DATASET_DOMAINS: dict[str, str] = {"scifact": "science", "nfcorpus": "medicine"}
#: Positives per query by default (NFCorpus train judges about 43 documents per query).
POSITIVES_PER_QUERY = 8


def dataset_domain(name: str) -> str:
    """The default domain of a BEIR dataset's instructions (``""`` for a dataset not listed)."""
    return DATASET_DOMAINS.get(name.lower(), "")


def _positives(
    qrels: Mapping[str, int], texts: Mapping[str, str], cap: int | None, seed: int, qid: str
) -> list[str]:
    """The query's judged documents above zero that the corpus has: highest relevance first, ties seeded."""
    judged = [doc for doc, relevance in qrels.items() if relevance > 0 and doc in texts]
    seeded(seed, "positives", qid).shuffle(judged)
    judged.sort(key=lambda doc: -qrels[doc])
    return judged if cap is None else judged[:cap]


def beir_records(
    folder: str | Path,
    *,
    split: str = "train",
    domain: str | None = None,
    negatives: str = "bm25",
    max_records: int | None = None,
    seed: int = 42,
    positives_per_query: int | None = POSITIVES_PER_QUERY,
) -> list[MediRecord]:
    """MEDI records from a BEIR split's judgements; the task is the dataset's folder name.

    Args:
        folder: the BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).
        split: the qrels split (never ``test`` for training data you evaluate on).
        domain: the instructions' domain (preset key or free text); ``None`` takes the dataset's
            (:data:`DATASET_DOMAINS`: SciFact science, NFCorpus medicine, others none).
        negatives: ``bm25`` (one mined hard negative per record) or ``none``.
        max_records: keep a seeded random sample of this many records (``None``: all).
        seed: the seed of every random choice (positives' order, sample, negatives).
        positives_per_query: the most records per query, highest relevance first (``None``:
            every judged document).

    Returns:
        The records, in qrels order.

    Raises:
        EvaluationError: the folder or split is missing or malformed.
        TrainingDataError: an option is invalid, or the split has no usable pair.
    """
    source = check_negatives(negatives)
    check_limit("max_records", max_records)
    check_limit("positives_per_query", positives_per_query)
    dataset = load_beir(folder, split=split)
    task = Path(folder).resolve().name
    instructions = InstructionSet.for_retrieval(dataset_domain(task) if domain is None else domain)
    documents = {doc.doc_id: doc.full_text.strip() for doc in dataset.corpus()}
    texts = {doc: text for doc, text in documents.items() if text}
    queries = {qid: text.strip() for qid, text in dataset.queries.items() if text.strip()}
    judged = [
        (qid, doc)
        for qid, docs in dataset.qrels.items()
        if qid in queries
        for doc in _positives(docs, texts, positives_per_query, seed, qid)
    ]
    if not judged:
        raise TrainingDataError(
            f"{folder}: split {split!r} has no query-document pair with relevance above zero whose "
            "query and document have text; pass a split with judgements (qrels/<split>.tsv)"
        )
    chosen = sample(judged, max_records, seed, task)
    negative_of = _mine(dataset.qrels, chosen, texts, queries, seed) if source == "bm25" else {}
    records: list[MediRecord] = []
    for qid, doc in chosen:
        negative = negative_of.get((qid, doc))
        records.append(
            MediRecord(
                query=pair(instructions.query, queries[qid]),
                pos=pair(instructions.document, texts[doc]),
                neg=pair(instructions.document, texts[negative]) if negative is not None else None,
                task=task,
            )
        )
    return records


def _mine(
    qrels: Mapping[str, Mapping[str, int]],
    chosen: list[tuple[str, str]],
    texts: Mapping[str, str],
    queries: Mapping[str, str],
    seed: int,
) -> dict[tuple[str, str], str]:
    """One BM25 hard negative per chosen pair: no positive of its query, copy of one, or near copy."""
    ids = list(texts)
    index = Bm25Index([texts[doc] for doc in ids])
    by_text: dict[str, list[int]] = {}
    for position, doc in enumerate(ids):
        by_text.setdefault(texts[doc], []).append(position)
    asked = list(dict.fromkeys(qid for qid, _ in chosen))
    exclude = [
        {
            position
            for doc, relevance in qrels[qid].items()
            if relevance > 0 and doc in texts
            for position in by_text[texts[doc]]
        }
        for qid in asked
    ]
    ranked = dict(zip(asked, index.search([queries[qid] for qid in asked], exclude), strict=True))
    negatives: dict[tuple[str, str], str] = {}
    for qid, doc in chosen:
        positive = texts[doc]
        picked = pick_negative(
            ranked[qid],
            seeded(seed, "negative", qid, doc),
            reject=lambda c: near_copy(texts[ids[c]], positive),  # noqa: B023 - called right here
        )
        if picked is not None:
            negatives[(qid, doc)] = ids[picked]
    return negatives
