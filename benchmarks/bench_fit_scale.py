"""Fits at scale: `budget fit --csv` on 100k and 1M rows in bounded memory (issue 17 item 8).

Two tables of synthetic runs on Chinchilla's law (Hoffmann et al. 2022 eq. 10: E 1.69, A 406.4,
B 410.7, alpha 0.34, beta 0.28) with 1% log-normal noise, both written as CSV and read back:
  flat:   one row per run (final losses), five IsoFLOP budgets 1e17 to 1e19, every run its own size;
  curves: a run_id column, one row per logged step (1,000 runs x steps), as a sweep's curves are.
Each case runs in a fresh process (`budget fit --csv ... --json`) and reports wall time and peak
resident memory (ru_maxrss of the child). Before issue 17 the flat 100k table tried to allocate
37 GiB (Approach 3's 4,500-start grid held as 4,500 x n arrays; scipy's linkage n^2/2 distances).

Usage: python benchmarks/bench_fit_scale.py [--rows 100000,1000000] [--bootstrap 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28  # Hoffmann et al. 2022 eq. 10
BUDGETS = (1e17, 3e17, 1e18, 3e18, 1e19)


def flat_table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    flops = np.asarray(BUDGETS)[rng.integers(0, len(BUDGETS), rows)]
    params = np.exp(rng.uniform(np.log(1e6), np.log(1e9), rows))
    tokens = flops / (6 * params)
    loss = (E + A / params**ALPHA + B / tokens**BETA) * np.exp(rng.normal(0, 0.01, rows))
    return pd.DataFrame({"params": params, "tokens": tokens, "loss": loss})


def curve_table(rows: int, runs: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    steps = rows // runs
    params = np.repeat(np.exp(rng.uniform(np.log(1e6), np.log(1e9), runs)), steps)
    final = np.repeat(np.asarray(BUDGETS)[rng.integers(0, len(BUDGETS), runs)], steps)
    frac = np.tile(np.linspace(1.0 / steps, 1.0, steps), runs)
    tokens = frac * final / (6 * params)
    loss = (E + A / params**ALPHA + B / tokens**BETA) * np.exp(rng.normal(0, 0.003, runs * steps))
    return pd.DataFrame({"run_id": np.repeat(np.arange(runs), steps), "params": params,
                         "tokens": tokens, "loss": loss})


def run_case(csv: Path, approaches: list[str], bootstrap: int) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit code) of one `budget fit` in a child process."""
    cmd = [sys.executable, "-m", "budget", "fit", "--csv", str(csv), "--bootstrap", str(bootstrap), "--json"]
    for a in approaches:
        cmd += ["--approach", a]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS (Linux: KiB)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code:
            err.seek(0)
            print(err.read().decode(errors="replace").strip()[-300:])
    return seconds, usage.ru_maxrss / 1024, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--bootstrap", type=int, default=10)
    args = parser.parse_args()
    print(f"{'table':>8} {'rows':>9} {'approaches':>14} {'seconds':>8} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in (int(float(r)) for r in args.rows.split(",")):
            cases = [("flat", flat_table(rows), ["2", "3", "kaplan"]), ("curves", curve_table(rows), ["1", "2", "3"])]
            for name, frame, approaches in cases:
                csv = Path(tmp) / f"{name}_{rows}.csv"
                frame.to_csv(csv, index=False)
                seconds, peak, code = run_case(csv, approaches, args.bootstrap)
                status = "" if code == 0 else f"  exit {code}"
                print(f"{name:>8} {rows:>9,} {','.join(approaches):>14} {seconds:>8.1f} {peak:>9.0f}{status}")


if __name__ == "__main__":
    main()
