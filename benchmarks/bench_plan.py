"""Startup benchmark: wall time of `budget plan --flops 1e21 --gpu h100` against `python -c pass`.

Runs both commands alternately in fresh processes and prints the medians, the difference (our
own cost) and the ratio, plus whether any heavy module was imported. Target: median < 0.5 s.

    python benchmarks/bench_plan.py [--runs 21]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

PLAN = [sys.executable, "-m", "budget", "plan", "--flops", "1e21", "--gpu", "h100"]
BASELINE = [sys.executable, "-c", "pass"]
HEAVY_CHECK = ("import sys, runpy; sys.argv=['budget','plan','--flops','1e21','--gpu','h100'];\n"
               "from budget.cli import main\n"
               "try:\n    main()\nexcept SystemExit:\n    pass\n"
               "print([m for m in ('torch','mlflow','scipy.optimize','matplotlib','pandas','numpy') "
               "if m in sys.modules], file=sys.stderr)")


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    plan_times, base_times = [], []
    for _ in range(runs):
        base_times.append(wall(BASELINE))
        plan_times.append(wall(PLAN))
    plan, base = statistics.median(plan_times), statistics.median(base_times)
    heavy = subprocess.run([sys.executable, "-c", HEAVY_CHECK], capture_output=True, text=True,
                           check=True).stderr.strip()
    print(f"runs: {runs}")
    print(f"python -c pass        median {base * 1000:7.1f} ms")
    print(f"budget plan           median {plan * 1000:7.1f} ms  (min {min(plan_times) * 1000:.1f}, "
          f"max {max(plan_times) * 1000:.1f})")
    print(f"budget plan - python  {(plan - base) * 1000:7.1f} ms; ratio {plan / base:.2f}x")
    print(f"heavy modules imported by plan: {heavy}")
    print(f"target median < 500 ms: {'met' if plan < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
