"""Startup benchmark: wall time of the fast commands against `python -c pass` and
`python -c 'import numpy'`, side by side in one run.

`budget serve`, `roofline`, `memory` and `flops` must answer in under 0.5 s, `budget plan` (layout
search included) within 1.2x of `python -c 'import numpy'`, `budget validate` (24 runs, in-sample
and leave-one-out fits) under 2 s; none may import torch, mlflow, scipy.optimize or matplotlib.
Each command and the baselines run alternately in fresh processes; the medians, our own cost over
a bare interpreter, the ratios and the heavy modules each command imported are printed.

    python benchmarks/bench_plan.py [--runs 21] [--only plan]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "plan": ["plan", "--flops", "1e21", "--gpu", "h100"],
    "plan (70B layout search)": ["plan", "--params", "70e9", "--tokens", "1.4e12", "--gpu", "h100",
                                 "--num-gpus", "256", "--seq-len", "4096"],
    "serve": ["serve", "--model", "llama-2-7b", "--gpu", "h100"],
    "roofline": ["roofline", "--model", "llama-2-7b", "--gpu", "a100"],
    "memory": ["memory", "--params", "7e9", "--gpu", "h100"],
    "flops": ["flops", "--n-layer", "32", "--d-model", "4096"],
    "validate": ["validate"],
}
BASELINE = [sys.executable, "-c", "pass"]
NUMPY = [sys.executable, "-c", "import numpy"]


def target(name: str, t: float, numpy: float) -> str:
    """The command's target and whether this run met it."""
    if name == "validate":
        return f"<2 s {'met' if t < 2.0 else 'NOT met'}"
    if name.startswith("plan"):
        return f"<=1.2x numpy {'met' if t <= 1.2 * numpy else 'NOT met'}"
    return f"<500 ms {'met' if t < 0.5 else 'NOT met'}"
HEAVY = ("torch", "mlflow", "scipy.optimize", "matplotlib", "pandas")


def heavy_check(argv: list[str]) -> str:
    code = (f"import sys; from budget.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stderr.strip().splitlines()[-1]


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--only", choices=sorted(COMMANDS), default=None)
    args = parser.parse_args()
    names = [args.only] if args.only else list(COMMANDS)
    times: dict[str, list[float]] = {name: [] for name in names}
    base_times: list[float] = []
    numpy_times: list[float] = []
    for _ in range(args.runs):
        base_times.append(wall(BASELINE))
        numpy_times.append(wall(NUMPY))
        for name in names:
            times[name].append(wall([sys.executable, "-m", "budget", *COMMANDS[name]]))
    base, numpy = statistics.median(base_times), statistics.median(numpy_times)
    print(f"runs: {args.runs}; python -c pass median {base * 1000:.1f} ms; "
          f"python -c 'import numpy' median {numpy * 1000:.1f} ms")
    print(f"{'command':26s} {'median ms':>9s} {'min':>7s} {'max':>7s} {'- python':>9s} {'/pass':>6s} "
          f"{'/numpy':>6s}  {'target':22s}  heavy imports")
    for name in names:
        t = statistics.median(times[name])
        print(f"{name:26s} {t * 1000:9.1f} {min(times[name]) * 1000:7.1f} "
              f"{max(times[name]) * 1000:7.1f} {(t - base) * 1000:9.1f} {t / base:5.2f}x "
              f"{t / numpy:5.2f}x  {target(name, t, numpy):22s}  {heavy_check(COMMANDS[name])}")


if __name__ == "__main__":
    main()
