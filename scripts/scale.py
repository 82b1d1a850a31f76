"""Run the embedded store's scale curve (evaluation.scale) and save it as JSON.

    .venv/bin/python scripts/scale.py --sizes 20000,50000 --out /tmp/scale.json [--no-fresh]

Uses the fake embedder (model.backend=fake); the store lives in a temporary folder (or --folder).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import load_settings
from evaluation.scale import measure_scale, summary


def main() -> None:
    """Parse the options, measure, print each size's figures as they come and save the result."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20000,50000,100000,200000", help="store sizes in chunks")
    parser.add_argument("--step", type=int, default=5000, help="chunks per ingest call")
    parser.add_argument("--queries", type=int, default=50, help="searches per latency figure")
    parser.add_argument("--folder", help="work folder (default: a temporary one, removed)")
    parser.add_argument("--no-fresh", action="store_true", help="skip the fresh-process open")
    parser.add_argument("--dimension", type=int, help="fake embedder dimension (default 64; 384 as MiniLM)")
    parser.add_argument("--out", default="/tmp/scale.json", help="where the JSON goes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(s) for s in args.sizes.split(",")]
    settings = load_settings(model={"backend": "fake"})

    def show(point: dict[str, object]) -> None:
        print(json.dumps(point), flush=True)

    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        folder = Path(args.folder) if args.folder else Path(tmp)
        result = measure_scale(
            settings,
            sizes,
            folder=folder,
            step_chunks=args.step,
            queries=args.queries,
            fresh=not args.no_fresh,
            dimension=args.dimension,
            on_point=show,
        )
    result["summary"] = summary(result)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result["summary"]), flush=True)


if __name__ == "__main__":
    main()
