"""Power laws in one variable: y = E + A x^-alpha (saturating) and y = A x^-alpha (pure).

Used for loss against parameters N, tokens D or compute C (Kaplan et al. 2020 eqs. 1.1-1.3 are
pure power laws; Hoffmann et al. 2022 eq. 2 and Besiroglu et al. 2024 add the irreducible E).
Residuals are taken in log y, so every decade of y weighs the same; the pure law is then ordinary
least squares in log-log space and the saturating law is a bounded nonlinear least-squares refit
from the best of a few initial E values (each seeded by a log-log polyfit, as lmfit examples do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fits.common import (
    BootstrapInfo,
    Interval,
    Progress,
    ResidualStats,
    blas_single_threaded,
    check_bootstrap,
    check_level,
    resample_weights,
    summarise,
    tick,
)
from fits.data import check_positive, require
from fits.errors import FitError

E_START_FRACTIONS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95)  # initial E as fractions of min(y)


def power_law(x: Any, E: float, A: float, alpha: float) -> Any:
    """y = E + A x^-alpha (E = 0 for the pure law)."""
    return E + A * np.power(x, -alpha)


@dataclass(frozen=True)
class PowerLawFit:
    """y = E + A x^-alpha fitted to (x, y); `saturating=False` means E is fixed at 0."""

    x_name: str
    saturating: bool
    E: float
    A: float
    alpha: float
    success: bool
    message: str
    n_points: int
    residuals: ResidualStats
    ci: dict[str, Interval] = field(default_factory=dict)
    se: dict[str, float] = field(default_factory=dict)
    bootstrap: BootstrapInfo | None = None

    def predict(self, x: Any) -> Any:
        """Predicted y at x."""
        return power_law(x, self.E, self.A, self.alpha)

    def to_dict(self) -> dict[str, Any]:
        model = f"y = E + A {self.x_name}^-alpha" if self.saturating else f"y = A {self.x_name}^-alpha"
        return {"model": model, "x": self.x_name, "E": self.E, "A": self.A, "alpha": self.alpha,
                "ci": {k: v.to_dict() for k, v in self.ci.items()}, "se": dict(self.se),
                "success": self.success, "message": self.message, "points": self.n_points,
                "residuals": self.residuals.to_dict(),
                "bootstrap": self.bootstrap.to_dict() if self.bootstrap else None}


@blas_single_threaded
def fit_power_law(x: Any, y: Any, *, saturating: bool = True, x_name: str = "x", bootstrap: int = 0,
                  seed: int = 0, level: float = 0.95, progress: Progress | None = None) -> PowerLawFit:
    """Fit y = E + A x^-alpha (or y = A x^-alpha) by least squares in log y; bootstrap over points."""
    xs, ys = check_positive(**{x_name: x, "y": y})
    require(len(xs), 4 if saturating else 3, "points", "a saturating power law" if saturating else "a power law")
    require(len(np.unique(xs)), 3, f"distinct {x_name} values", "a power law")
    bootstrap, level = check_bootstrap(bootstrap), check_level(level)
    params, ok, message = _fit_once(xs, ys, np.ones_like(xs), saturating)
    residuals = ResidualStats.of(np.log(ys) - np.log(power_law(xs, *params)), "log y")
    ci: dict[str, Interval] = {}
    se: dict[str, float] = {}
    info = None
    if bootstrap:
        weights = resample_weights(len(xs), bootstrap, seed)
        samples = {k: np.full(bootstrap, np.nan) for k in ("E", "A", "alpha")}
        for i in range(bootstrap):
            if len(np.unique(xs[weights[i] > 0])) >= 3:
                p, good, _ = _fit_once(xs, ys, weights[i], saturating, start=params)
                if good:
                    for k, v in zip(("E", "A", "alpha"), p):
                        samples[k][i] = v
            tick(progress, f"power law in {x_name} bootstrap", i + 1, bootstrap)
        ci, se = summarise(samples if saturating else {k: samples[k] for k in ("A", "alpha")}, level)
        info = BootstrapInfo(bootstrap, int(np.isfinite(samples["A"]).sum()), seed, level)
    E, A, alpha = params
    return PowerLawFit(x_name=x_name, saturating=saturating, E=E, A=A, alpha=alpha, success=ok,
                       message=message, n_points=len(xs), residuals=residuals, ci=ci, se=se, bootstrap=info)


def _fit_once(x: np.ndarray, y: np.ndarray, w: np.ndarray, saturating: bool,
              start: tuple[float, float, float] | None = None) -> tuple[tuple[float, float, float], bool, str]:
    """One weighted fit; returns ((E, A, alpha), success, message)."""
    if not saturating:
        A, alpha = _loglog(x, y, w)
        return (0.0, A, alpha), True, "closed-form least squares in log-log space"
    from scipy.optimize import least_squares

    y_min = float(y[w > 0].min())
    upper = y_min * (1.0 - 1e-9)
    starts = [start] if start is not None else [_start(x, y, w, f * y_min) for f in E_START_FRACTIONS]
    best = None
    sw = np.sqrt(w)
    for E0, A0, alpha0 in starts:
        theta0 = np.array([min(max(E0, 0.0), upper * 0.999), np.log(A0), alpha0])
        res = least_squares(lambda t: sw * (np.log(y) - np.log(t[0] + np.exp(t[1]) * x ** -t[2])),
                            theta0, bounds=([0.0, -np.inf, -np.inf], [upper, np.inf, np.inf]),
                            x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12)
        if best is None or res.cost < best.cost:
            best = res
    if best is None or not np.all(np.isfinite(best.x)):
        raise FitError("saturating power law failed: no start gave a finite fit")
    E, logA, alpha = (float(v) for v in best.x)
    return (E, float(np.exp(logA)), alpha), bool(best.success), str(best.message)


def _start(x: np.ndarray, y: np.ndarray, w: np.ndarray, E0: float) -> tuple[float, float, float]:
    A0, alpha0 = _loglog(x, y - E0, w)
    return E0, A0, alpha0


def _loglog(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """log y = log A - alpha log x by weighted least squares; returns (A, alpha)."""
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1, w=np.sqrt(w))
    return float(np.exp(intercept)), float(-slope)
