"""Chinchilla Approach 1: the lower envelope of training curves (Hoffmann et al. 2022 §3.1, Figure 2).

Each run's loss is interpolated (linearly in log C) at `grid_points` log-spaced FLOP values
(Hoffmann used 1,500); at every value the run with the lowest loss gives N_opt(C), and its tokens
at that point give D_opt(C). Power laws N_opt = k_N C^a and D_opt = k_D C^b are fitted to the
envelope in log-log space. Bootstrap resamples whole runs with replacement.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from fits.common import (
    BootstrapInfo,
    Interval,
    Optimum,
    Progress,
    ResidualStats,
    blas_single_threaded,
    check_bootstrap,
    check_level,
    group_slices,
    power_law_fit_loglog,
    resample_weights,
    summarise,
    tick,
)
from fits.data import FLOPS_PER_PARAM_TOKEN, check_positive, require
from fits.errors import FitError

GRID_POINTS = 1500  # Hoffmann et al. 2022 §3.1: "1500 logarithmically spaced FLOP values"
MIN_RUNS = 2  # an envelope needs runs of at least two sizes
MIN_COVER = 2  # a FLOP value enters the envelope only where at least this many runs reach it


@dataclass(frozen=True, eq=False)
class Envelope:
    """The lower envelope: at each FLOP value, the lowest loss over runs and that run's N and D."""

    flops: np.ndarray
    params: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray


@dataclass(frozen=True)
class Approach1Fit:
    """N_opt = k_params C^a and D_opt = k_tokens C^b from the envelope of training curves."""

    k_params: float
    a: float
    k_tokens: float
    b: float
    success: bool
    message: str
    runs: int
    envelope: Envelope
    residuals: ResidualStats
    target: Optimum | None = None
    ci: dict[str, Interval] = field(default_factory=dict)
    se: dict[str, float] = field(default_factory=dict)
    bootstrap: BootstrapInfo | None = None

    def predict(self, flops: Any) -> Any:
        """N_opt(C) = k_params C^a."""
        return self.k_params * np.power(flops, self.a)

    def optimal_allocation(self, flops: float) -> Optimum:
        """N_opt and D_opt at C from the two power laws (no loss model in Approach 1)."""
        return Optimum(float(flops), float(self.predict(flops)), float(self.k_tokens * flops ** self.b))

    def to_dict(self) -> dict[str, Any]:
        env = self.envelope
        return {"model": "N_opt = k_params C^a, D_opt = k_tokens C^b (training-curve envelope)",
                "a": self.a, "b": self.b, "k_params": self.k_params, "k_tokens": self.k_tokens,
                "ci": {k: v.to_dict() for k, v in self.ci.items()}, "se": dict(self.se),
                "target": self.target.to_dict() if self.target else None,
                "success": self.success, "message": self.message, "runs": self.runs,
                "envelope_points": int(len(env.flops)),
                "envelope_sizes": int(len(np.unique(env.params))),
                "residuals": self.residuals.to_dict(),
                "bootstrap": self.bootstrap.to_dict() if self.bootstrap else None}


@blas_single_threaded
def fit_approach1(run_id: Any, params: Any, tokens: Any, loss: Any, flops: Any | None = None, *,
                  bootstrap: int = 0, seed: int = 0, level: float = 0.95, target_flops: float | None = None,
                  progress: Progress | None = None, grid_points: int = GRID_POINTS) -> Approach1Fit:
    """Envelope of per-step curves (long table: one row per run and step), then power laws in C."""
    runs = np.asarray(run_id)
    n, d, l = check_positive(params=params, tokens=tokens, loss=loss)
    c = check_positive(flops=flops)[0] if flops is not None else FLOPS_PER_PARAM_TOKEN * n * d
    if len(runs) != len(n) or len(c) != len(n):
        raise FitError("run_id, params, tokens, loss and flops must have equal lengths")
    bootstrap, level = check_bootstrap(bootstrap), check_level(level)
    curves = _split_runs(runs, n, d, c, l)
    require(len({cv[0] for cv in curves}), MIN_RUNS, "model sizes with training curves", "Approach 1")
    grid = _grid(curves, grid_points)
    table = _interpolate(curves, grid)
    env = _envelope(table, np.ones(len(curves)), grid)
    k_n, a, k_d, b = _laws(env)
    residuals = ResidualStats.of(np.log(env.params) - np.log(k_n * env.flops ** a), "log N_opt")
    sizes = len(np.unique(env.params))
    fit = Approach1Fit(k_params=k_n, a=a, k_tokens=k_d, b=b, success=sizes >= 2,
                       message=f"envelope over {len(grid)} FLOP values passes through {sizes} model sizes",
                       runs=len(curves), envelope=env, residuals=residuals)
    target = fit.optimal_allocation(target_flops) if target_flops else None
    if not bootstrap:
        return replace(fit, target=target)
    samples = _bootstrap(table, grid, bootstrap, seed, target_flops, progress)
    ci, se = summarise(samples, level)
    info = BootstrapInfo(bootstrap, int(np.isfinite(samples["a"]).sum()), seed, level)
    return replace(fit, target=target, ci=ci, se=se, bootstrap=info)


def _split_runs(runs: np.ndarray, n: np.ndarray, d: np.ndarray, c: np.ndarray,
                l: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """Per run: (N, log C sorted, tokens, loss); runs with fewer than two steps are left out."""
    out = []
    keys, first = np.unique(runs, return_index=True)
    groups = dict(zip(keys.tolist(), group_slices(runs)[1]))
    for r in keys[np.argsort(first)].tolist():  # runs in order of first appearance
        m = groups[r]
        order = np.argsort(c[m])
        if m.size >= 2:
            out.append((float(n[m][0]), np.log(c[m][order]), d[m][order], l[m][order]))
    if not out:
        raise FitError("Approach 1 needs per-step training curves: several rows per run_id")
    return out


def _grid(curves: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]], points: int) -> np.ndarray:
    low = min(cv[1][0] for cv in curves)
    high = max(cv[1][-1] for cv in curves)
    return np.linspace(low, high, int(points))


def _interpolate(curves: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]],
                 grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(runs, grid) matrices of loss and tokens interpolated in log C (NaN outside a run's span), and N."""
    loss = np.array([np.interp(grid, lc, ll, left=np.nan, right=np.nan) for _, lc, _, ll in curves])
    toks = np.array([np.exp(np.interp(grid, lc, np.log(dd))) for _, lc, dd, _ in curves])
    return loss, toks, np.array([cv[0] for cv in curves])


def _envelope(table: tuple[np.ndarray, np.ndarray, np.ndarray], counts: np.ndarray, grid: np.ndarray) -> Envelope:
    """Lowest loss over the runs present (counts > 0) at every grid value reached by MIN_COVER runs."""
    loss, toks, sizes = table
    present = loss.copy()
    present[counts <= 0] = np.nan
    covered = np.isfinite(present).sum(axis=0) >= MIN_COVER
    if covered.sum() < 2:
        raise FitError(f"Approach 1 needs FLOP values reached by at least {MIN_COVER} runs; the curves do not overlap")
    filled = np.where(np.isfinite(present[:, covered]), present[:, covered], np.inf)
    best = np.argmin(filled, axis=0)
    cols = np.flatnonzero(covered)
    return Envelope(np.exp(grid[covered]), sizes[best], toks[best, cols], loss[best, cols])


def _laws(env: Envelope) -> tuple[float, float, float, float]:
    if len(np.unique(env.params)) < 2:
        raise FitError("Approach 1: the envelope passes through a single model size; add runs of other sizes")
    k_n, a = power_law_fit_loglog(env.flops, env.params)
    k_d, b = power_law_fit_loglog(env.flops, env.tokens)
    return k_n, a, k_d, b


def _bootstrap(table: tuple[np.ndarray, np.ndarray, np.ndarray], grid: np.ndarray, reps: int, seed: int,
               target_flops: float | None, progress: Progress | None) -> dict[str, np.ndarray]:
    weights = resample_weights(len(table[2]), reps, seed)
    names = ["a", "b", "k_params", "k_tokens"] + (["params_opt", "tokens_opt"] if target_flops else [])
    samples = {k: np.full(reps, np.nan) for k in names}
    for i in range(reps):
        try:
            k_n, a, k_d, b = _laws(_envelope(table, weights[i], grid))
        except FitError:
            tick(progress, "Approach 1 bootstrap", i + 1, reps)
            continue
        row = {"a": a, "b": b, "k_params": k_n, "k_tokens": k_d}
        if target_flops:
            row.update(params_opt=k_n * target_flops ** a, tokens_opt=k_d * target_flops ** b)
        for k, v in row.items():
            samples[k][i] = v
        tick(progress, "Approach 1 bootstrap", i + 1, reps)
    return samples
