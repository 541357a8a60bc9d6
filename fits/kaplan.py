"""Kaplan et al. 2020 (arXiv:2001.08361) eq. 1.5 / 4.1: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D.

Fitted in log space as log L = alpha_D LSE(p - r log N, q - log D) with r = alpha_N/alpha_D,
p = r log N_c and q = log D_c, by the same objective as Approach 3 (Huber, delta = 1e-3, on log loss,
summed; Kaplan et al. do not state theirs) so the two forms can be compared on the same runs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fits.approach3 import GRID_CHUNK_VALUES, GRID_SAMPLE, HUBER_DELTA, huber, subsample
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

# Initialisation grid (our choice, spanning Kaplan's Table 2 values alpha_N 0.076, alpha_D 0.103,
# N_c 6.4e13, D_c 1.8e13): r = alpha_N/alpha_D, s = alpha_D, log N_c, log D_c.
GRID_R = (0.5, 0.75, 1.0, 1.5, 2.0)
GRID_S = (0.05, 0.1, 0.2, 0.4)
GRID_LOG_NC = tuple(np.log([1e8, 1e11, 1e14, 1e17]))
GRID_LOG_DC = tuple(np.log([1e8, 1e11, 1e14, 1e17]))
POLISH = 8
MIN_EXPONENT = 1e-4  # r or alpha_D below this: the fit ran to its bound, the law is degenerate
_TIGHT = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 3000, "maxls": 50}


def kaplan_loss(params: Any, tokens: Any, N_c: float, D_c: float, alpha_N: float, alpha_D: float) -> Any:
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020 eq. 1.5)."""
    return (np.power(N_c / np.asarray(params, dtype=float), alpha_N / alpha_D) + D_c / np.asarray(tokens)) ** alpha_D


def _log_model(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> tuple[np.ndarray, ...]:
    """(log L, LSE, softmax weights) for theta = (p, q, r, s), vectorised over rows of theta."""
    th = np.atleast_2d(theta)
    p, q, r, s = (th[:, i:i + 1] for i in range(4))
    t_n, t_d = p - r * log_n, q - log_d
    top = np.maximum(t_n, t_d)
    x_n, x_d = np.exp(t_n - top), np.exp(t_d - top)
    lse = top + np.log(x_n + x_d)
    w_n = x_n / (x_n + x_d)
    return s * lse, lse, w_n, 1.0 - w_n


def _objective_and_gradient(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray,
                            weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    log_hat, lse, w_n, w_d = (v[0] for v in _log_model(theta, log_n, log_d))
    res = log_hat - log_l
    h, dh = huber(res), np.clip(res, -HUBER_DELTA, HUBER_DELTA)
    if weights is not None:
        h, dh = h * weights, dh * weights
    s = theta[3]
    grad = np.array([s * (dh @ w_n), s * (dh @ w_d), -s * (dh * w_n) @ log_n, dh @ lse])
    return float(h.sum()), grad


@dataclass(frozen=True)
class KaplanFit:
    """Fitted L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D."""

    N_c: float
    D_c: float
    alpha_N: float
    alpha_D: float
    objective: float
    success: bool
    message: str
    n_points: int
    residuals: ResidualStats
    target: Optimum | None = None
    ci: dict[str, Interval] = field(default_factory=dict)
    se: dict[str, float] = field(default_factory=dict)
    bootstrap: BootstrapInfo | None = None

    @property
    def a(self) -> float:
        """N_opt exponent under C = 6ND at convergence: a = alpha_D / (alpha_N + alpha_D).

        Not Kaplan's 0.73, which comes from early-stopped runs (L(N, S), eq. 6.1), not from eq. 1.5.
        """
        return self.alpha_D / (self.alpha_N + self.alpha_D)

    @property
    def b(self) -> float:
        """D_opt exponent: b = 1 - a = alpha_N / (alpha_N + alpha_D)."""
        return self.alpha_N / (self.alpha_N + self.alpha_D)

    def predict(self, params: Any, tokens: Any) -> Any:
        """Predicted loss at N params and D tokens."""
        return kaplan_loss(params, tokens, self.N_c, self.D_c, self.alpha_N, self.alpha_D)

    def optimal_allocation(self, flops: float) -> Optimum:
        """Minimise eq. 1.5 at D = C/(6N): N_opt = (r N_c^r C / (6 D_c))^(1/(1+r)), r = alpha_N/alpha_D."""
        return kaplan_frontier(flops, self.N_c, self.D_c, self.alpha_N, self.alpha_D)

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"model": "L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
                "N_c": self.N_c, "D_c": self.D_c, "alpha_N": self.alpha_N, "alpha_D": self.alpha_D,
                "a": self.a, "b": self.b,
                "ci": {k: v.to_dict() for k, v in self.ci.items()}, "se": dict(self.se),
                "target": self.target.to_dict() if self.target else None,
                "objective": self.objective, "success": self.success, "message": self.message,
                "points": self.n_points, "residuals": self.residuals.to_dict(),
                "bootstrap": self.bootstrap.to_dict() if self.bootstrap else None})


def kaplan_frontier(flops: float, N_c: float, D_c: float, alpha_N: float, alpha_D: float) -> Optimum:
    """Compute-optimal N, D, L of eq. 1.5 under C = 6 N D (set dL/dN = 0 at fixed C).

    In logs, log N_opt = (log r + r log N_c + log C - log 6 D_c) / (1 + r): a fitted N_c far out
    (a bootstrap resample on few budgets gives 1e300) would overflow N_c**r as a Python float;
    here it ends as inf (a sample the bootstrap drops), never an OverflowError.
    """
    r = alpha_N / alpha_D
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        log_n = (np.log(r) + r * np.log(np.float64(N_c)) + np.log(np.float64(flops))
                 - np.log(FLOPS_PER_PARAM_TOKEN * np.float64(D_c))) / (1.0 + r)
        n_opt = np.exp(log_n)
        d_opt = np.float64(flops) / (FLOPS_PER_PARAM_TOKEN * n_opt)
        loss = kaplan_loss(n_opt, d_opt, N_c, D_c, alpha_N, alpha_D)
    return Optimum(float(flops), float(n_opt), float(d_opt), float(loss))


@blas_single_threaded
def fit_kaplan(params: Any, tokens: Any, loss: Any, *, bootstrap: int = 0, seed: int = 0, level: float = 0.95,
               target_flops: float | None = None, progress: Progress | None = None) -> KaplanFit:
    """Fit eq. 1.5 (Huber on log loss, best of a grid of starts, L-BFGS-B); bootstrap over runs."""
    n, d, l = check_positive(params=params, tokens=tokens, loss=loss)
    require(len(l), 5, "runs", "the Kaplan fit")
    require(len(np.unique(n)), 2, "distinct model sizes", "the Kaplan fit")
    require(len(np.unique(d)), 2, "distinct token counts", "the Kaplan fit")
    bootstrap, level = check_bootstrap(bootstrap), check_level(level)
    logs = (np.log(n), np.log(d), np.log(l))
    best = _grid_fit(logs)
    values = _unpack(best.x)
    degenerate = not all(np.isfinite(v) for v in values.values()) or min(best.x[2], best.x[3]) < MIN_EXPONENT
    ok = bool(best.success) and not degenerate
    message = (str(best.message) if ok else "an exponent hit its lower bound (loss does not fall with N or D)"
               if degenerate else f"not converged: {best.message}")
    residuals = ResidualStats.of(logs[2] - _log_model(best.x, logs[0], logs[1])[0][0], "log loss")
    target = kaplan_frontier(target_flops, **values) if target_flops and ok else None
    fit = KaplanFit(values["N_c"], values["D_c"], values["alpha_N"], values["alpha_D"], objective=float(best.fun), success=ok, message=message, n_points=len(l),
                    residuals=residuals, target=target)
    if not bootstrap:
        return fit
    samples = _bootstrap(best.x, logs, bootstrap, seed, target_flops, progress)
    ci, se = summarise(samples, level)
    from dataclasses import replace

    info = BootstrapInfo(bootstrap, int(np.isfinite(samples["alpha_D"]).sum()), seed, level)
    return replace(fit, ci=ci, se=se, bootstrap=info)


def _grid_fit(logs: tuple[np.ndarray, ...]) -> Any:
    """Rank the grid (in blocks of points), polish the best starts; on large tables (as Approach 3)
    rank and polish on a seeded subsample, then polish the winner on every run."""
    starts = np.array([(r * lnc, ldc, r, s) for r, s, lnc, ldc in
                       itertools.product(GRID_R, GRID_S, GRID_LOG_NC, GRID_LOG_DC)])
    sample = subsample(logs, GRID_SAMPLE)
    step = max(1, GRID_CHUNK_VALUES // len(starts))
    score = np.zeros(len(starts))
    for i in range(0, len(sample[0]), step):
        block = slice(i, i + step)
        score += huber(_log_model(starts, sample[0][block], sample[1][block])[0] - sample[2][block]).sum(axis=1)
    runs = [_polish(starts[i], sample) for i in np.argsort(score)[:POLISH]]
    finite = [r for r in runs if np.isfinite(r.fun)]
    if not finite:
        raise FitError("the Kaplan fit failed: every start gave a non-finite objective")
    best = min(finite, key=lambda r: (not r.success, r.fun))
    return _polish(best.x, logs) if len(sample[0]) < len(logs[0]) else best


def _polish(theta0: np.ndarray, logs: tuple[np.ndarray, ...], weights: np.ndarray | None = None) -> Any:
    from scipy.optimize import minimize

    bounds = [(None, None), (None, None), (MIN_EXPONENT / 100, None), (MIN_EXPONENT / 100, None)]
    return minimize(_objective_and_gradient, theta0, args=(*logs, weights), jac=True, method="L-BFGS-B",
                    bounds=bounds, options=_TIGHT)


def _unpack(theta: np.ndarray) -> dict[str, float]:
    p, q, r, s = (float(v) for v in theta)
    with np.errstate(over="ignore"):
        return {"N_c": float(np.exp(p / r)), "D_c": float(np.exp(q)), "alpha_N": r * s, "alpha_D": s}


def _bootstrap(theta: np.ndarray, logs: tuple[np.ndarray, ...], reps: int, seed: int,
               target_flops: float | None, progress: Progress | None) -> dict[str, np.ndarray]:
    names = ["N_c", "D_c", "alpha_N", "alpha_D", "a", "b"] + (["params_opt", "tokens_opt", "loss_opt"]
                                                         if target_flops else [])
    samples = {k: np.full(reps, np.nan) for k in names}
    for i, weights in enumerate(iter_resample_weights(len(logs[0]), reps, seed)):
        res = _polish(theta, logs, weights)
        v = _unpack(res.x)
        if res.success and min(res.x[2], res.x[3]) >= MIN_EXPONENT and all(
                np.isfinite(x) for x in v.values()):
            total = v["alpha_N"] + v["alpha_D"]
            row = dict(v, a=v["alpha_D"] / total, b=v["alpha_N"] / total)
            if target_flops:  # a far-out resample's optimum is inf: NaN, dropped from the CI
                opt = kaplan_frontier(target_flops, **v)
                row.update(params_opt=opt.params, tokens_opt=opt.tokens, loss_opt=float(opt.loss or np.nan))
            for k, val in row.items():
                samples[k][i] = val if np.isfinite(val) else np.nan
        tick(progress, "Kaplan bootstrap", i + 1, reps)
    return samples
