"""Time the in-process index's dense scan (retrieval.local_index.scan) in one thread and split.

    .venv/bin/python scripts/scan_threads.py [--rows 200000] [--dim 384]

Prints the median of 40 scans each: einsum in one thread, BLAS matvec (its own threads), and
``scan`` (split over SCAN_THREADS pool threads). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.local_index import SCAN_THREADS, scan


def _median_ms(run: Callable[[], object], times: int = 40) -> float:
    run()
    taken = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        taken.append((time.perf_counter() - started) * 1000)
    return round(float(np.median(taken)), 2)


def main() -> None:
    """Build a random unit matrix and time the three scans of one query."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((args.rows, args.dim), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    query = matrix[123] + np.float32(0.01)
    assert np.allclose(scan(matrix, query), matrix @ query, atol=1e-5)
    print(f"einsum, one thread: {_median_ms(lambda: np.einsum('ij,j->i', matrix, query))} ms")
    print(f"BLAS matvec: {_median_ms(lambda: matrix @ query)} ms")
    print(f"scan, {SCAN_THREADS} threads: {_median_ms(lambda: scan(matrix, query))} ms")


if __name__ == "__main__":
    main()
