"""Query embedding and the 200k x 384 dense scan, with ONNX Runtime's intra-op spinning on and off.

    .venv/bin/python scripts/onnx_spin_scan.py [--no-spin]

Loads the default model (all-MiniLM-L6-v2, ONNX), embeds 40 queries alone (50 ms apart), then 40
times a :func:`retrieval.local_index.scan` of a random 200,000 x 384 matrix followed by one query
embedding, as a dense search does, and prints the medians. ``--no-spin`` sets
``session.intra_op.allow_spinning=0`` on the session (``session_options`` patched where both ONNX
paths bind it). Run it on an
idle machine, both ways in turn.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import embedder.onnx_native as onnx_native
import embedder.runtime as runtime
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
    if args.no_spin:
        plain = runtime.session_options

        def no_spin() -> Any:
            options = plain()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return options

        # Both ONNX paths call it: the torch-free one binds the name when it is imported.
        runtime.session_options = no_spin  # type: ignore[assignment]
        onnx_native.session_options = no_spin  # type: ignore[assignment]
    embedder = make_embedder(load_settings(), purpose="query", cache=False)
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
