"""Peak RSS and speed of embedding 600 NFCorpus documents with ONNX Runtime's memory pattern on or off.

Usage, from the project root: ``.venv/bin/python scripts/onnx_mem_pattern.py on|off`` (run the two
interleaved, one process each: the peak RSS is the process's own).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import embedder.onnx_native as native
import embedder.runtime as runtime
from config import load_settings
from embedder import make_embedder
from evaluation.beir import iter_corpus

CORPUS = Path("../shared/data/beir/nfcorpus/corpus.jsonl")
INSTRUCTION = "Represent the document for retrieval:"


def main(mode: str) -> None:
    original = runtime.session_options

    def options(*, spinning: bool = True) -> Any:
        chosen = original(spinning=spinning)
        chosen.enable_mem_pattern = mode == "on"
        return chosen

    runtime.session_options = options
    native.session_options = options  # type: ignore[attr-defined]
    texts = [doc.full_text for doc in itertools.islice(iter_corpus(CORPUS), 600)]
    embedder = make_embedder(load_settings(data_dir="data", cache={"ingest": False}))
    embedder.embed(texts[:32], INSTRUCTION)
    started = time.perf_counter()
    embedder.embed(texts, INSTRUCTION)
    seconds = time.perf_counter() - started
    with open("/proc/self/status", encoding="ascii") as status:
        peak_kb = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
    result = {
        "mode": mode,
        "seconds": round(seconds, 2),
        "texts_per_s": round(len(texts) / seconds, 1),
        "peak_mb": peak_kb // 1024,
        "torch_loaded": "torch" in sys.modules,
        "embedder": type(embedder).__name__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
