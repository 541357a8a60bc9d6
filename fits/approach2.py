"""Chinchilla Approach 2: IsoFLOP profiles (Hoffmann et al. 2022 §3.2, Figure 3).

Runs are grouped by compute budget; for each budget a parabola in log N is fitted to the final
losses and its minimum gives N_opt(C) (and D_opt(C) from the budget's own tokens); power laws
N_opt = k_N C^a and D_opt = k_D C^b are then fitted in log-log space. Budgets are the distinct
`flops` values: near-equal values (digitised or rounded) are merged by complete-linkage clustering
in log10 C, so every budget spans at most `budget_tol` decades; or, given the nominal `budgets`
(e.g. Hoffmann's nine, 6e18 to 3e21), each run is assigned to the nearest one in log C.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

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
    json_float,
    power_law_fit_loglog,
    resample_blocks,
    summarise,
    tick,
)
from fits.data import check_positive
from fits.errors import FitError
from fits.powerlaw import PowerLawFit, fit_power_law

BUDGET_TOL_DECADES = 0.15  # widest spread of log10 C merged into one budget (digitised Chinchilla data)
MIN_SIZES_PER_BUDGET = 3  # a parabola needs three distinct model sizes
MIN_BUDGETS = 2  # two minima define N_opt = k C^a (more give residuals and intervals)


@dataclass(frozen=True, eq=False)
class IsoflopCurve:
    """One budget: its runs, the parabola loss = c2 x^2 + c1 x + c0 in x = ln N, and its minimum."""

    flops: float
    params: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray
    coef: tuple[float, float, float]
    valid: bool
    reason: str
    params_opt: float = float("nan")
    tokens_opt: float = float("nan")
    loss_opt: float = float("nan")

    def parabola(self, params: Any) -> Any:
        """The fitted loss at N params (the budget's parabola in ln N)."""
        return np.polyval(self.coef, np.log(params))

    def to_dict(self) -> dict[str, Any]:
        opt = {"params_opt": self.params_opt, "tokens_opt": self.tokens_opt, "loss_opt": self.loss_opt}
        return {"flops": self.flops, "runs": int(len(self.loss)), "valid": self.valid, "reason": self.reason,
                "curvature": json_float(self.coef[0]), **({k: float(v) for k, v in opt.items()} if self.valid else {})}


@dataclass(frozen=True)
class Approach2Fit:
    """N_opt = k_params C^a and D_opt = k_tokens C^b from IsoFLOP minima."""

    k_params: float
    a: float
    k_tokens: float
    b: float
    success: bool
    message: str
    curves: tuple[IsoflopCurve, ...]
    residuals: ResidualStats
    loss_law: PowerLawFit | None = None
    target: Optimum | None = None
    ci: dict[str, Interval] = field(default_factory=dict)
    se: dict[str, float] = field(default_factory=dict)
    bootstrap: BootstrapInfo | None = None

    @property
    def minima(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(C, N_opt, D_opt) of the valid budgets."""
        good = [c for c in self.curves if c.valid]
        return (np.array([c.flops for c in good]), np.array([c.params_opt for c in good]),
                np.array([c.tokens_opt for c in good]))

    def predict(self, flops: Any) -> Any:
        """N_opt(C) = k_params C^a."""
        return self.k_params * np.power(flops, self.a)

    def optimal_allocation(self, flops: float) -> Optimum:
        """N_opt and D_opt at C from the two power laws; the loss from L_opt(C) when it was fitted."""
        loss = float(self.loss_law.predict(flops)) if self.loss_law is not None else None
        return Optimum(float(flops), float(self.predict(flops)), float(self.k_tokens * flops ** self.b), loss)

    def to_dict(self) -> dict[str, Any]:
        return {"model": "N_opt = k_params C^a, D_opt = k_tokens C^b",
                "a": self.a, "b": self.b, "k_params": self.k_params, "k_tokens": self.k_tokens,
                "ci": {k: v.to_dict() for k, v in self.ci.items()}, "se": dict(self.se),
                "target": self.target.to_dict() if self.target else None,
                "success": self.success, "message": self.message,
                "budgets": [c.to_dict() for c in self.curves], "residuals": self.residuals.to_dict(),
                "loss_law": self.loss_law.to_dict() if self.loss_law else None,
                "bootstrap": self.bootstrap.to_dict() if self.bootstrap else None}


def cluster_budgets(flops: Any, tol_decades: float = BUDGET_TOL_DECADES) -> np.ndarray:
    """Budget label per run: complete-linkage clusters of log10 C at most `tol_decades` wide, by size order.

    In one dimension complete linkage only ever merges neighbouring intervals (the union's span is
    the linkage distance), so the distinct values are merged with a heap in O(n log n) time and
    O(n) memory; scipy's `linkage` gives the same clusters but needs n^2/2 distances.
    """
    log_c = np.log10(np.asarray(flops, dtype=float))
    if len(log_c) < 2:
        return np.zeros(len(log_c), dtype=int)
    values, inverse = np.unique(log_c, return_inverse=True)
    return _interval_linkage(values, tol_decades)[inverse]


def _interval_linkage(values: np.ndarray, tol: float) -> np.ndarray:
    """Cluster label (0, 1, ... left to right) of each sorted distinct value: merge the neighbouring
    intervals whose union is narrowest while that union spans at most `tol`."""
    import heapq

    m = len(values)
    low, high = list(range(m)), list(range(m))  # interval i covers values[low[i]..high[i]]
    right = list(range(1, m + 1))  # next live interval to the right (m = none)
    left = list(range(-1, m - 1))
    alive = [True] * m
    heap = [(values[i + 1] - values[i], i, i + 1) for i in range(m - 1)]
    heapq.heapify(heap)
    while heap:
        span, i, j = heapq.heappop(heap)
        if span > tol:
            break
        if not (alive[i] and alive[j] and right[i] == j and values[high[j]] - values[low[i]] == span):
            continue  # stale entry
        high[i], alive[j] = high[j], False
        right[i] = right[j]
        if right[i] < m:
            left[right[i]] = i
            heapq.heappush(heap, (values[high[right[i]]] - values[low[i]], i, right[i]))
        if left[i] >= 0:
            heapq.heappush(heap, (values[high[i]] - values[low[left[i]]], left[i], i))
    labels = np.empty(m, dtype=int)
    for rank, i in enumerate(k for k in range(m) if alive[k]):
        labels[low[i]:high[i] + 1] = rank
    return labels


def snap_budgets(flops: np.ndarray, budgets: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Assign each run to the nearest nominal budget in log C; returns (labels, nominal C per run)."""
    nominal = np.sort(check_positive(budgets=budgets)[0])
    if nominal.size == 0:
        raise FitError("budgets must list at least one compute budget in FLOPs, e.g. 1e19,1e20")
    labels = np.argmin(np.abs(np.log(flops)[:, None] - np.log(nominal)[None, :]), axis=1)
    return labels, nominal[labels]


@blas_single_threaded
def fit_approach2(params: Any, tokens: Any, flops: Any, loss: Any, *, bootstrap: int = 0, seed: int = 0,
                  level: float = 0.95, target_flops: float | None = None, progress: Progress | None = None,
                  budget_tol: float = BUDGET_TOL_DECADES, budgets: Sequence[float] | None = None) -> Approach2Fit:
    """IsoFLOP parabolas per budget, then N_opt = k C^a and D_opt = k' C^b; bootstrap runs within budgets."""
    n, d, c, l = check_positive(params=params, tokens=tokens, flops=flops, loss=loss)
    bootstrap, level = check_bootstrap(bootstrap), check_level(level)
    if budgets is not None:
        labels, c = snap_budgets(c, budgets)
    else:
        labels = cluster_budgets(c, budget_tol)
    curves = tuple(_curve(n[idx], d[idx], c[idx], l[idx], None) for idx in group_slices(labels)[1])
    valid = [cv for cv in curves if cv.valid]
    if len(valid) < MIN_BUDGETS:
        reasons = "; ".join(f"C={cv.flops:.3g}: {cv.reason}" for cv in curves if not cv.valid)[:300]
        raise FitError(f"Approach 2 needs at least {MIN_BUDGETS} compute budgets with >= {MIN_SIZES_PER_BUDGET} "
                       f"model sizes and an interior loss minimum, got {len(valid)}"
                       + (f" ({reasons})" if reasons else f" of {len(curves)} budget(s)"))
    cs, ns, ds = (np.array([getattr(cv, k) for cv in valid]) for k in ("flops", "params_opt", "tokens_opt"))
    k_n, a = power_law_fit_loglog(cs, ns)
    k_d, b = power_law_fit_loglog(cs, ds)
    residuals = ResidualStats.of(np.log(ns) - np.log(k_n * cs ** a), "log N_opt")
    loss_law = _loss_law(cs, np.array([cv.loss_opt for cv in valid]))
    fit = Approach2Fit(k_params=k_n, a=a, k_tokens=k_d, b=b, success=True,
                       message=f"{len(valid)} of {len(curves)} budgets have an interior minimum",
                       curves=curves, residuals=residuals, loss_law=loss_law)
    target = fit.optimal_allocation(target_flops) if target_flops else None
    if not bootstrap:
        return _replace(fit, target=target)
    samples, succeeded = _bootstrap((n, d, c, l), labels, bootstrap, seed, target_flops, progress)
    ci, se = summarise(samples, level)
    return _replace(fit, target=target, ci=ci, se=se,
                    bootstrap=BootstrapInfo(bootstrap, succeeded, seed, level, "runs within each budget"))


def _curve(n: np.ndarray, d: np.ndarray, c: np.ndarray, l: np.ndarray, w: np.ndarray | None) -> IsoflopCurve:
    """Fit one budget's parabola in ln N (weighted by bootstrap counts) and locate its minimum."""
    w = np.ones_like(n) if w is None else w
    budget = float(np.exp(np.average(np.log(c), weights=w))) if w.sum() > 0 else float(np.exp(np.log(c).mean()))
    keep = w > 0
    x = np.log(n)
    if len(np.unique(x[keep])) < MIN_SIZES_PER_BUDGET:
        return IsoflopCurve(budget, n, d, l, (np.nan, np.nan, np.nan), False,
                            f"fewer than {MIN_SIZES_PER_BUDGET} distinct model sizes")
    c2, c1, c0 = (float(v) for v in np.polyfit(x[keep], l[keep], 2, w=np.sqrt(w[keep])))
    coef = (c2, c1, c0)
    if coef[0] <= 0:
        return IsoflopCurve(budget, n, d, l, coef, False, "loss is not convex in log N (no minimum)")
    x_opt = -coef[1] / (2.0 * coef[0])
    if not (x[keep].min() <= x_opt <= x[keep].max()):
        return IsoflopCurve(budget, n, d, l, coef, False, "minimum lies outside the sampled model sizes")
    slope, intercept = np.polyfit(x[keep], np.log(d[keep]), 1, w=np.sqrt(w[keep]))
    return IsoflopCurve(budget, n, d, l, coef, True, "interior minimum", float(np.exp(x_opt)),
                        float(np.exp(intercept + slope * x_opt)), float(np.polyval(coef, x_opt)))


def _loss_law(cs: np.ndarray, losses: np.ndarray) -> PowerLawFit | None:
    """L_opt(C) = E + A C^-alpha through the minima, when there are enough budgets for it."""
    if len(cs) < 4 or len(np.unique(cs)) < 3 or np.any(losses <= 0):
        return None
    try:
        return fit_power_law(cs, losses, saturating=True, x_name="flops")
    except FitError:
        return None


def _bootstrap(data: tuple[np.ndarray, ...], labels: np.ndarray, reps: int, seed: int,
               target_flops: float | None, progress: Progress | None) -> tuple[dict[str, np.ndarray], int]:
    """Per budget a batched weighted parabola over blocks of resamples, then batched log-log lines.

    The draws are those of `resample_weights(len(n), reps, seed, groups=labels)`, made a block of
    rows at a time so memory stays bounded on tables of a million runs.
    """
    n, d, c, l = data
    rng = np.random.default_rng(seed)
    groups = group_slices(labels)[1]
    cols = []
    for j, idx in enumerate(groups):
        blocks = [_batch_minimum(n[idx], d[idx], c[idx], l[idx], w) for w in resample_blocks(rng, idx.size, reps)]
        cols.append(tuple(np.concatenate([b[i] for b in blocks]) for i in range(4)))
        tick(progress, "Approach 2 bootstrap", reps * (j + 1) // len(groups), reps)
    log_c, log_n, log_d, valid = (np.column_stack([col[i] for col in cols]) for i in range(4))
    ok = valid.sum(axis=1) >= MIN_BUDGETS
    log_kn, a = _batch_line(log_c, log_n, valid)
    log_kd, b = _batch_line(log_c, log_d, valid)
    samples = {"a": a, "b": b, "k_params": np.exp(log_kn), "k_tokens": np.exp(log_kd)}
    if target_flops:
        samples.update(params_opt=np.exp(log_kn + a * np.log(target_flops)),
                       tokens_opt=np.exp(log_kd + b * np.log(target_flops)))
    for values in samples.values():
        values[~ok] = np.nan
    return samples, int(ok.sum())


def _batch_minimum(n: np.ndarray, d: np.ndarray, c: np.ndarray, l: np.ndarray,
                   w: np.ndarray) -> tuple[np.ndarray, ...]:
    """`_curve` for many weight rows w (reps, runs): (log C, log N_opt, log D_opt, valid) per row."""
    x = np.log(n)
    centre = x.mean()
    xc = x - centre  # centred for well-conditioned normal equations
    quad = np.stack([xc**2, xc, np.ones_like(xc)], axis=1)
    present = w > 0
    enough = _distinct_present(x, present) >= MIN_SIZES_PER_BUDGET
    lhs = (w @ (quad[:, :, None] * quad[:, None, :]).reshape(len(x), 9)).reshape(-1, 3, 3)
    lhs[~enough] = np.eye(3)
    c2, c1, _ = np.linalg.solve(lhs, (w @ (quad * l[:, None]))[..., None])[..., 0].T
    with np.errstate(divide="ignore", invalid="ignore"):
        x_opt = -c1 / (2.0 * c2)
    inside = (x_opt >= np.where(present, xc, np.inf).min(axis=1)) & (x_opt <= np.where(present, xc, -np.inf).max(axis=1))
    valid = enough & (c2 > 0) & inside
    line = np.stack([xc, np.ones_like(xc)], axis=1)
    lhs2 = (w @ (line[:, :, None] * line[:, None, :]).reshape(len(x), 4)).reshape(-1, 2, 2)
    lhs2[~valid] = np.eye(2)
    slope, intercept = np.linalg.solve(lhs2, (w @ (line * np.log(d)[:, None]))[..., None])[..., 0].T
    total = np.where(w.sum(axis=1) > 0, w.sum(axis=1), 1.0)
    log_c = (w @ np.log(c)) / total
    return log_c, centre + x_opt, intercept + slope * x_opt, valid


def _distinct_present(x: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per row of `present` (reps, runs): how many distinct values of x have a run present."""
    order = np.argsort(x, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(x[order]) != 0])
    return (np.add.reduceat(present[:, order].astype(np.int32), starts, axis=1) > 0).sum(axis=1)


def _batch_line(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares y = intercept + slope x per row over the masked columns: (intercept, slope)."""
    m = mask.astype(float)
    count = np.maximum(m.sum(axis=1), 1.0)
    xs, ys = np.where(mask, x, 0.0), np.where(mask, y, 0.0)
    x_bar, y_bar = xs.sum(axis=1) / count, ys.sum(axis=1) / count
    dx = np.where(mask, x - x_bar[:, None], 0.0)
    dy = np.where(mask, y - y_bar[:, None], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
    return y_bar - slope * x_bar, slope


def _replace(fit: Approach2Fit, **changes: Any) -> Approach2Fit:
    from dataclasses import replace

    return replace(fit, **changes)
