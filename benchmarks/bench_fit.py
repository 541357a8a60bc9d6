"""Approach 3 speed: the straightforward recipe against `fits.fit_approach3`, measured in one run.

Straightforward recipe (Besiroglu et al. 2024, analyzing-chinchilla data_analysis.ipynb cell 18,
following Hoffmann et al. 2022 App. D.2): `scipy.optimize.minimize(method="L-BFGS-B")` from each of
the 4,500 grid starts, keep the lowest objective among successful runs. Two baselines:
  1. as published, finite-difference gradients (slow: run on every K-th start with --stride K and
     extrapolated to 4,500 starts, said so in the output);
  2. the same 4,500 starts with our analytic gradient (all of them).
Ours: the grid evaluated vectorised, only the best starts polished with the analytic gradient.
Then N bootstrap refits (warm-started). All run with BLAS limited to one thread (what `fits` does;
see fits.common.single_blas_thread), on the 240 Chinchilla points, in one process.

Usage: python benchmarks/bench_fit.py [--stride K] [--bootstrap N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from fits import fit_approach3, load_csv
from fits.approach3 import HUBER_DELTA, hoffmann_grid, objective_and_gradient
from fits.common import single_blas_thread

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "chinchilla_svg_extracted_data.csv"
NAMES = ("A", "B", "E", "alpha", "beta")


def straightforward(log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray, stride: int,
                    analytic: bool) -> tuple[dict, float, int]:
    """Epoch's grid recipe: every start to convergence, numerical (as published) or analytic gradients."""

    def loss(p: np.ndarray) -> float:
        a, b, e, alpha, beta = p
        pred = logsumexp([a - alpha * log_n, b - beta * log_d, e * np.ones_like(log_n)], axis=0)
        return float(np.sum(huber(HUBER_DELTA, pred - log_l)))

    best = None
    starts = hoffmann_grid()[::stride]
    for x0 in starts:
        if analytic:
            res = minimize(objective_and_gradient, x0, args=(log_n, log_d, log_l), jac=True, method="L-BFGS-B")
        else:
            res = minimize(loss, x0, method="L-BFGS-B")
        if res.success and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise SystemExit("no start of the straightforward recipe succeeded")
    a, b, e, alpha, beta = best.x
    return {"A": np.exp(a), "B": np.exp(b), "E": np.exp(e), "alpha": alpha, "beta": beta}, float(best.fun), len(starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=1, help="run every K-th start of the straightforward grid")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap refits to time")
    args = parser.parse_args()
    table = load_csv(DATA, drop_highest_loss=5)
    logs = np.log(table.params), np.log(table.tokens), np.log(table.loss)

    with single_blas_thread():
        t0 = time.perf_counter()
        ours = fit_approach3(table.params, table.tokens, table.loss)
        t_ours = time.perf_counter() - t0
        baselines = []
        for analytic, stride in ((False, args.stride), (True, 1)):
            t0 = time.perf_counter()
            ref, ref_obj, n_starts = straightforward(*logs, stride, analytic)
            baselines.append((analytic, stride, n_starts, (time.perf_counter() - t0) * stride, ref, ref_obj))
        t0 = time.perf_counter()
        boot = fit_approach3(table.params, table.tokens, table.loss, bootstrap=args.bootstrap, seed=42)
        # the whole call (point fit + refits), never "minus the point fit": on a busy machine the
        # two point fits differ and the difference went negative
        t_boot = time.perf_counter() - t0

    print(f"points: {len(table)} (Chinchilla SVG data, 5 highest losses dropped); BLAS limited to 1 thread")
    print(f"ours: fits.fit_approach3 ({ours.polished} polished starts, analytic gradient): {t_ours:.3f} s, "
          f"objective {ours.objective:.10f}")
    for analytic, stride, n_starts, t_ref, ref, ref_obj in baselines:
        how = "analytic gradients" if analytic else "numerical gradients (as published)"
        seen = f", {n_starts} starts timed x{stride}" if stride > 1 else ""
        print(f"straightforward 4500-start L-BFGS-B, {how}: {t_ref:.1f} s{seen}; objective {ref_obj:.10f}; "
              f"speed-up {t_ref / t_ours:.0f}x")
        print("  parameter rel. diff ours vs it: " + ", ".join(
            f"{name} {abs(getattr(ours, name) / ref[name] - 1):.1e}" for name in NAMES))
    print(f"bootstrap: the point fit and {args.bootstrap} warm-started refits in {t_boot:.2f} s "
          f"({boot.bootstrap.succeeded if boot.bootstrap else 0} succeeded); SEs: " + ", ".join(f"{k} {boot.se[k]:.4g}" for k in NAMES))


if __name__ == "__main__":
    main()
