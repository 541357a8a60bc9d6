"""Wall time of the smoke sweep under each executor (the process pool vs a local Ray cluster).

Each run trains the whole smoke preset into its own fresh store with one thread per point; the
Ray run includes starting its local cluster (`address="local"`), the pool run spawning its
workers. Prints seconds per executor and Ray's ratio to the pool.

    python benchmarks/bench_executors.py [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    from experiments.sweeps.sweep import SweepSpec, run_sweep

    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    seconds = {}
    for executor in ("pool", "ray"):
        with tempfile.TemporaryDirectory() as tmp:
            spec = SweepSpec(preset="smoke", threads=1, executor=executor,
                             tracking_uri=f"sqlite:///{Path(tmp) / 'mlflow.db'}",
                             workers=args.workers if executor == "pool" else None)
            start = time.perf_counter()
            result = run_sweep(spec, progress=False)
            seconds[executor] = time.perf_counter() - start
            assert all(r.status == "FINISHED" for r in result.runs)
        print(f"{executor:5s} {seconds[executor]:6.1f} s")
    print(f"ray / pool: {seconds['ray'] / seconds['pool']:.2f}x")


if __name__ == "__main__":
    main()
