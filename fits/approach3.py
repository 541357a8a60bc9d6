"""Chinchilla Approach 3: the parametric loss L(N, D) = E + A/N^alpha + B/D^beta.

Fitted as in Hoffmann et al. 2022 (arXiv:2203.15556) §3.3 eq. 3 and App. D.2 eq. 11, with the
corrections of Besiroglu et al. 2024 (arXiv:2404.10102): log L is modelled as
LSE(a - alpha log N, b - beta log D, e) with A, B, E = exp(a), exp(b), exp(e); the objective is the
Huber loss (delta = 1e-3) of the log-loss residuals, SUMMED over runs; L-BFGS from the best of
Hoffmann's grid of 4,500 initialisations.

The grid is evaluated vectorised, only its best starts are polished by L-BFGS-B with the analytic
gradient, and bootstrap refits are warm-started from the full-data optimum. `fits.lbfgs_grid`
in `benchmarks/bench_fit.py` is the straightforward recipe that this module is measured against.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
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
    iter_resample_weights,
    json_safe,
    summarise,
    tick,
)
from fits.data import FLOPS_PER_PARAM_TOKEN, check_positive, require
from fits.errors import FitError

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022 App. D.2: "delta = 1e-3"
# Hoffmann et al. 2022 App. D.2 initialisation grid, as replicated by Besiroglu et al. 2024
# (analyzing-chinchilla data_analysis.ipynb cell 18): alpha, beta, e, a, b.
GRID_ALPHA = np.arange(0.0, 2.5, 0.5)
GRID_BETA = np.arange(0.0, 2.5, 0.5)
GRID_E = np.arange(-1.0, 1.5, 0.5)
GRID_A = np.arange(0.0, 30.0, 5.0)
GRID_B = np.arange(0.0, 30.0, 5.0)
PARAM_NAMES = ("a", "b", "e", "alpha", "beta")  # order of the optimisation vector theta
DRAW_ORDER = ("E", "A", "B", "alpha", "beta")  # order of each bootstrap draw in `bootstrap_draws`
DEFAULT_POLISH = 24  # grid starts polished by L-BFGS-B: those with the lowest objective on the grid
_TIGHT = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000, "maxls": 50}
GRID_CHUNK_VALUES = 1 << 21  # starts x points evaluated at once (16 MiB per temporary array)
# Above this many runs the grid is ranked and its best starts polished on a seeded subsample of this
# size; the winner is then polished on every run (a 1M-row table would otherwise take minutes).
GRID_SAMPLE = 20_000


def hoffmann_grid() -> np.ndarray:
    """The 4,500 starts (a, b, e, alpha, beta) of Hoffmann et al. 2022 App. D.2."""
    rows = itertools.product(GRID_ALPHA, GRID_BETA, GRID_E, GRID_A, GRID_B)
    return np.array([(a, b, e, al, be) for al, be, e, a, b in rows])


def chinchilla_loss(params: Any, tokens: Any, E: float, A: float, B: float, alpha: float, beta: float) -> Any:
    """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022 eq. 2)."""
    return E + A / np.power(params, alpha) + B / np.power(tokens, beta)


def log_loss_model(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> tuple[np.ndarray, ...]:
    """log L = LSE(a - alpha log N, b - beta log D, e) (Hoffmann App. D.2 eq. 11) and its softmax weights.

    `theta` is (5,) or (K, 5) for K parameter vectors at once; results are (n,) or (K, n).
    """
    th = np.atleast_2d(theta)
    a, b, e, alpha, beta = (th[:, i:i + 1] for i in range(5))
    t_n = a - alpha * log_n
    t_d = b - beta * log_d
    top = np.maximum(np.maximum(t_n, t_d), e)
    x_n, x_d, x_e = np.exp(t_n - top), np.exp(t_d - top), np.exp(e - top)
    total = x_n + x_d + x_e
    out = (top + np.log(total), x_n / total, x_d / total, x_e / total)
    return out if np.ndim(theta) == 2 else tuple(o[0] for o in out)


def huber(r: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    """Huber loss: r^2/2 for |r| <= delta, else delta (|r| - delta/2) (as scipy.special.huber)."""
    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))


def objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray,
              weights: np.ndarray | None = None) -> Any:
    """Summed Huber objective of one (5,) or many (K, 5) parameter vectors (Besiroglu et al. 2024)."""
    lse = log_loss_model(theta, log_n, log_d)[0]
    h = huber(lse - log_l)
    if weights is not None:
        h = h * weights
    return h.sum(axis=-1)


def objective_and_gradient(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray,
                           weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Summed Huber objective and its analytic gradient with respect to (a, b, e, alpha, beta)."""
    lse, w_n, w_d, w_e = log_loss_model(theta, log_n, log_d)
    r = lse - log_l
    h = huber(r)
    dh = np.clip(r, -HUBER_DELTA, HUBER_DELTA)
    if weights is not None:
        h, dh = h * weights, dh * weights
    g_n, g_d = dh * w_n, dh * w_d
    grad = np.array([g_n.sum(), g_d.sum(), dh @ w_e, -(g_n @ log_n), -(g_d @ log_d)])
    return float(h.sum()), grad


@dataclass(frozen=True)
class Approach3Fit:
    """Fitted L(N, D) = E + A/N^alpha + B/D^beta with its compute-optimal frontier and intervals."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    success: bool
    message: str
    n_points: int
    residuals: ResidualStats
    starts: int
    polished: int
    target: Optimum | None = None
    ci: dict[str, Interval] = field(default_factory=dict)
    se: dict[str, float] = field(default_factory=dict)
    bootstrap: BootstrapInfo | None = None
    draws: tuple[tuple[float, ...], ...] = ()  # each successful refit's (E, A, B, alpha, beta)

    @property
    def a(self) -> float:
        """N_opt exponent: a = beta / (alpha + beta) (Hoffmann et al. 2022 eq. 4)."""
        total = self.alpha + self.beta
        return self.beta / total if total else float("nan")

    @property
    def b(self) -> float:
        """D_opt exponent: b = alpha / (alpha + beta) (Hoffmann et al. 2022 eq. 4)."""
        total = self.alpha + self.beta
        return self.alpha / total if total else float("nan")

    @property
    def G(self) -> float:
        """G = (alpha A / (beta B))^(1 / (alpha + beta)) (Hoffmann et al. 2022 eq. 4)."""
        ratio = self.alpha * self.A / (self.beta * self.B)
        return float(ratio ** (1.0 / (self.alpha + self.beta))) if ratio > 0 else float("nan")

    def predict(self, params: Any, tokens: Any) -> Any:
        """Predicted loss at N params and D tokens."""
        return chinchilla_loss(params, tokens, self.E, self.A, self.B, self.alpha, self.beta)

    def optimal_allocation(self, flops: float) -> Optimum:
        """N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b (Hoffmann et al. 2022 eq. 4, C = 6 N D)."""
        return frontier(flops, self.E, self.A, self.B, self.alpha, self.beta)

    def to_dict(self) -> dict[str, Any]:
        return json_safe({
            "model": "L = E + A/N^alpha + B/D^beta",
            "E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta,
            "a": self.a, "b": self.b, "G": self.G,
            "ci": {k: v.to_dict() for k, v in self.ci.items()}, "se": dict(self.se),
            "target": self.target.to_dict() if self.target else None,
            "objective": self.objective, "success": self.success, "message": self.message,
            "points": self.n_points, "grid_starts": self.starts, "polished_starts": self.polished,
            "residuals": self.residuals.to_dict(),
            "bootstrap": self.bootstrap.to_dict() if self.bootstrap else None,
            "bootstrap_draws": [list(d) for d in self.draws],
        })


def frontier(flops: float, E: float, A: float, B: float, alpha: float, beta: float) -> Optimum:
    """Closed-form compute-optimal N, D and loss at C (Hoffmann et al. 2022 eq. 4, C = 6 N D)."""
    g = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    half = flops / FLOPS_PER_PARAM_TOKEN
    n_opt = g * half ** (beta / (alpha + beta))
    d_opt = half ** (alpha / (alpha + beta)) / g
    return Optimum(float(flops), float(n_opt), float(d_opt),
                   float(chinchilla_loss(n_opt, d_opt, E, A, B, alpha, beta)))


@blas_single_threaded
def fit_approach3(params: Any, tokens: Any, loss: Any, *, bootstrap: int = 0, seed: int = 0,
                  level: float = 0.95, target_flops: float | None = None,
                  progress: Progress | None = None, polish: int = DEFAULT_POLISH) -> Approach3Fit:
    """Fit L(N, D) by Huber-on-log-loss from Hoffmann's grid; bootstrap over runs if asked."""
    n, d, l = check_positive(params=params, tokens=tokens, loss=loss)
    require(len(l), 6, "runs", "Approach 3")
    require(len(np.unique(n)), 3, "distinct model sizes", "Approach 3")
    require(len(np.unique(d)), 3, "distinct token counts", "Approach 3")
    bootstrap, level = check_bootstrap(bootstrap), check_level(level)
    logs = (np.log(n), np.log(d), np.log(l))
    theta, fun, ok, message, polished = _grid_fit(*logs, polish=polish)
    best = _unpack(theta)
    residuals = ResidualStats.of(logs[2] - log_loss_model(theta, logs[0], logs[1])[0], "log loss")
    target = frontier(target_flops, **best) if target_flops and ok else None
    ci: dict[str, Interval] = {}
    se: dict[str, float] = {}
    info = None
    draws: tuple[tuple[float, ...], ...] = ()
    if bootstrap:
        samples, succeeded = _bootstrap(theta, logs, bootstrap, seed, target_flops, progress)
        ci, se = summarise(samples, level)
        info = BootstrapInfo(bootstrap, succeeded, seed, level)
        draws = _draws(samples)
    return Approach3Fit(**best, objective=fun, success=ok, message=message, n_points=len(l),
                        residuals=residuals, starts=len(hoffmann_grid()), polished=polished,
                        target=target, ci=ci, se=se, bootstrap=info, draws=draws)


def _draws(samples: dict[str, np.ndarray]) -> tuple[tuple[float, ...], ...]:
    """The successful refits' (E, A, B, alpha, beta), for callers that evaluate each refit (calibration)."""
    rows = np.column_stack([samples[k] for k in DRAW_ORDER])
    return tuple(tuple(float(v) for v in row) for row in rows[np.all(np.isfinite(rows), axis=1)])


def polish_start(theta0: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray,
                 weights: np.ndarray | None = None, options: dict[str, Any] | None = None) -> Any:
    """One L-BFGS-B run with the analytic gradient (scipy.optimize.minimize result)."""
    from scipy.optimize import minimize

    return minimize(objective_and_gradient, theta0, args=(log_n, log_d, log_l, weights), jac=True,
                    method="L-BFGS-B", options=options or _TIGHT)


def grid_objective(starts: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray) -> np.ndarray:
    """`objective` of every start, summed over blocks of points so memory stays bounded."""
    step = max(1, GRID_CHUNK_VALUES // len(starts))
    total = np.zeros(len(starts))
    for i in range(0, len(log_n), step):
        block = slice(i, i + step)
        total += objective(starts, log_n[block], log_d[block], log_l[block])
    return total


def subsample(logs: tuple[np.ndarray, ...], size: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A seeded subsample (without replacement) of at most `size` runs, the same rows of each array."""
    if len(logs[0]) <= size:
        return logs
    keep = np.sort(np.random.default_rng(seed).choice(len(logs[0]), size, replace=False))
    return tuple(a[keep] for a in logs)


def _grid_fit(log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray,
              polish: int) -> tuple[np.ndarray, float, bool, str, int]:
    """Evaluate Hoffmann's grid vectorised, polish its `polish` best starts, keep the lowest optimum."""
    starts = hoffmann_grid()
    s_n, s_d, s_l = subsample((log_n, log_d, log_l), GRID_SAMPLE)
    order = np.argsort(grid_objective(starts, s_n, s_d, s_l))[:max(1, polish)]
    runs = [polish_start(starts[i], s_n, s_d, s_l) for i in order]
    finite = [r for r in runs if np.isfinite(r.fun)]
    if not finite:
        raise FitError("Approach 3 failed: every start gave a non-finite objective; check the loss values")
    good = [r for r in finite if r.success] or finite  # Epoch: lowest objective among successful runs
    best = min(good, key=lambda r: r.fun)
    if len(s_n) < len(log_n):
        best = polish_start(best.x, log_n, log_d, log_l)
    ok = bool(best.success) and bool(best.x[3] > 0 and best.x[4] > 0)
    message = str(best.message) if ok else f"not converged or non-positive exponent: {best.message}"
    return best.x, float(best.fun), ok, message, len(order)


def _bootstrap(theta: np.ndarray, logs: tuple[np.ndarray, ...], reps: int, seed: int,
               target_flops: float | None, progress: Progress | None) -> tuple[dict[str, np.ndarray], int]:
    """Refit on `reps` resamples of the runs (count weights), each warm-started at the full-data optimum."""
    names = ["E", "A", "B", "alpha", "beta", "a", "b", "G"]
    if target_flops:
        names += ["params_opt", "tokens_opt", "loss_opt"]
    samples = {k: np.full(reps, np.nan) for k in names}
    succeeded = 0
    for i, weights in enumerate(iter_resample_weights(len(logs[0]), reps, seed)):
        res = polish_start(theta, logs[0], logs[1], logs[2], weights=weights)
        if res.success and res.x[3] > 0 and res.x[4] > 0:
            succeeded += 1
            for k, v in _derived(res.x, target_flops).items():
                samples[k][i] = v
        tick(progress, "Approach 3 bootstrap", i + 1, reps)
    return samples, succeeded


def _derived(theta: np.ndarray, target_flops: float | None) -> dict[str, float]:
    p = _unpack(theta)
    s = p["alpha"] + p["beta"]
    out = dict(p, a=p["beta"] / s, b=p["alpha"] / s,
               G=(p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1.0 / s))
    if target_flops:
        opt = frontier(target_flops, **p)
        out.update(params_opt=opt.params, tokens_opt=opt.tokens, loss_opt=float(opt.loss or np.nan))
    return out


def _unpack(theta: np.ndarray) -> dict[str, float]:
    a, b, e, alpha, beta = (float(x) for x in theta)
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": alpha, "beta": beta}
