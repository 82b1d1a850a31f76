"""Query embedding and the 200k x 384 dense scan, with ONNX Runtime's intra-op spinning on and off.

    .venv/bin/python scripts/onnx_spin_scan.py [--no-spin]

Loads the default model (all-MiniLM-L6-v2, ONNX), embeds 40 queries alone (50 ms apart), then 40
times a :func:`retrieval.local_index.scan` of a random 200,000 x 384 matrix followed by one query
embedding, as a dense search does, and prints the medians. Without ``--no-spin`` it builds the
document (``ingest``) embedder, whose ONNX Runtime session spins; with it, the ``query`` embedder,
whose session has ``session.intra_op.allow_spinning=0`` (:func:`embedder.runtime.session_options`;
before that became the query default, the flag patched ``session_options`` instead: commit
751e957). Run it on an idle machine, both ways in turn.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import load_settings
from embedder import make_embedder
from retrieval.local_index import scan

INSTRUCTION = "Represent the question for retrieving documents:"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-spin", action="store_true", help="turn ONNX Runtime's intra-op spinning off")
    args = parser.parse_args()
    embedder = make_embedder(load_settings(), purpose="query" if args.no_spin else "ingest", cache=False)
    matrix = np.random.default_rng(0).standard_normal((200_000, 384), dtype=np.float32)
    query = matrix[0].copy()
    texts = [f"what is the effect of vitamin {i} on sleep" for i in range(40)]

    def embed_ms(text: str) -> float:
        started = time.perf_counter()
        embedder.embed([text], INSTRUCTION)
        return (time.perf_counter() - started) * 1000

    for text in texts[:5]:
        embed_ms(text)
    alone = []
    for text in texts:
        alone.append(embed_ms(text))
        time.sleep(0.05)
    after, scans = [], []
    for text in texts:
        started = time.perf_counter()
        scan(matrix, query)
        scans.append((time.perf_counter() - started) * 1000)
        after.append(embed_ms(text))
    print(
        json.dumps(
            {
                "spinning": not args.no_spin,
                "embed_alone_p50_ms": round(statistics.median(alone), 2),
                "scan_p50_ms": round(statistics.median(scans), 2),
                "embed_after_scan_p50_ms": round(statistics.median(after), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
