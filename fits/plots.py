"""Figures of a FitReport: IsoFLOP curves, the compute-optimal frontier, residuals, the Approach 1 envelope.

Every function RETURNS a `matplotlib.figure.Figure` built without pyplot (no global state, no GUI
backend), so callers can `fig.savefig(...)` or `mlflow.log_figure(fig, "fit_frontier")`.
`save_figures(report, folder)` writes them all as PNG. matplotlib is imported only here, lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from fits.approach2 import Approach2Fit
    from fits.report import FitReport

References = Mapping[str, tuple[Sequence[float], Sequence[float]]]  # label -> (C values, N values)
LABELS = {"approach1": "Approach 1 (envelope)", "approach2": "Approach 2 (IsoFLOP)",
          "approach3": "Approach 3 (parametric)", "kaplan": "Kaplan L(N, D)"}


def _figure(width: float = 7.0, height: float = 4.5) -> "Figure":
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def isoflop_figure(fit: "Approach2Fit", loss_unit: str | None = None) -> "Figure":
    """Loss against N for each budget, its parabola and its minimum (Hoffmann et al. 2022 Figure 3 left)."""
    from matplotlib import colormaps

    fig = _figure()
    ax = fig.add_subplot()
    cmap = colormaps["viridis"]
    curves = fit.curves
    for i, cv in enumerate(curves):
        colour = cmap(i / max(1, len(curves) - 1))
        ax.scatter(cv.params, cv.loss, s=12, color=colour, alpha=0.8 if cv.valid else 0.3)
        if cv.valid:
            grid = np.geomspace(cv.params.min(), cv.params.max(), 100)
            ax.plot(grid, cv.parabola(grid), color=colour, lw=1.2, label=f"C = {cv.flops:.2g}")
            ax.plot([cv.params_opt], [cv.loss_opt], marker="*", ms=11, color=colour, mec="black", mew=0.6)
    ax.set(xscale="log", xlabel="parameters N",
           ylabel=f"final loss ({loss_unit})" if loss_unit else "final loss",
           title=f"IsoFLOP profiles: N_opt ∝ C^{fit.a:.3f} (stars: minima)")
    if sum(cv.valid for cv in curves) <= 12:
        ax.legend(fontsize=7, ncols=2)
    return fig


def frontier_figure(report: "FitReport", references: References | None = None) -> "Figure":
    """N_opt against C: each approach's fitted law, the data behind it, and optional reference laws."""
    fig = _figure()
    ax = fig.add_subplot()
    c_low, c_high = float(np.min(report.table.flops)), max(float(np.max(report.table.flops)), report.target_flops)
    grid = np.geomspace(c_low, c_high, 200)
    for key, fit in report.results.items():
        line = ax.plot(grid, [fit.optimal_allocation(c).params for c in grid],
                       label=f"{LABELS[key]}: a = {fit.a:.3f}")[0]
        _frontier_points(ax, key, fit, line.get_color())
    for label, (cs, ns) in (references or {}).items():
        ax.plot(np.asarray(cs, float), np.asarray(ns, float), ls="--", lw=1.2, label=label)
    ax.axvline(report.target_flops, color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="training compute C (FLOPs)", ylabel="compute-optimal N",
           title="Compute-optimal frontier")
    ax.legend(fontsize=7)
    return fig


def _frontier_points(ax: Any, key: str, fit: Any, colour: Any) -> None:
    if key == "approach2":
        cs, ns, _ = fit.minima
        ax.scatter(cs, ns, color=colour, s=20, zorder=3, label="IsoFLOP minima")
    elif key == "approach1":
        env = fit.envelope
        ax.scatter(env.flops, env.params, color=colour, s=3, alpha=0.4, label="envelope")


def residuals_figure(report: "FitReport") -> "Figure":
    """log L(observed) - log L(fitted) against compute, for the parametric fits (Approach 3, Kaplan)."""
    fig = _figure()
    ax = fig.add_subplot()
    t = report.table
    drawn = 0
    for key in ("approach3", "kaplan"):
        if key in report.results:
            fit = report.results[key]
            res = np.log(t.loss) - np.log(fit.predict(t.params, t.tokens))
            ax.scatter(t.flops, res, s=10, alpha=0.7,
                       label=f"{LABELS[key]}: RMSE {fit.residuals.rmse:.4f}")
            drawn += 1
    if not drawn and "approach2" in report.results:
        fit = report.results["approach2"]
        cs, ns, _ = fit.minima
        ax.scatter(cs, np.log(ns) - np.log(fit.predict(cs)), s=20, label="Approach 2: log N_opt residual")
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set(xscale="log", xlabel="training compute C (FLOPs)", ylabel="residual (log space)",
           title="Residuals")
    ax.legend(fontsize=7)
    return fig


def envelope_figure(report: "FitReport", loss_unit: str | None = None) -> "Figure":
    """Approach 1: training curves as loss against compute, with their lower envelope."""
    fig = _figure()
    ax = fig.add_subplot()
    cv = report.table.curves
    if cv is not None:
        for run in np.unique(cv.run_id):
            m = cv.run_id == run
            ax.plot(cv.flops[m], cv.loss[m], lw=0.7, alpha=0.5, color="tab:blue")
    env = report.results["approach1"].envelope
    ax.plot(env.flops, env.loss, color="black", lw=1.8, label="lower envelope")
    ax.set(xscale="log", xlabel="training compute C (FLOPs)",
           ylabel=f"loss ({loss_unit})" if loss_unit else "loss", title="Training-curve envelope")
    ax.legend(fontsize=7)
    return fig


def report_figures(report: "FitReport", references: References | None = None,
                   loss_unit: str | None = None) -> dict[str, "Figure"]:
    """Every figure the report supports, keyed by name (`fit_frontier`, ...; the PNG file stem).
    `loss_unit` labels the loss axes (a sweep's 'nats per byte' is not the literature's)."""
    figures = {"fit_frontier": frontier_figure(report, references),
               "fit_residuals": residuals_figure(report)}
    if "approach2" in report.results:
        figures["fit_isoflop"] = isoflop_figure(report.results["approach2"], loss_unit)
    if "approach1" in report.results:
        figures["fit_envelope"] = envelope_figure(report, loss_unit)
    return figures


def save_figures(report: "FitReport", folder: str | Path, references: References | None = None,
                 dpi: int = 120, loss_unit: str | None = None) -> list[Path]:
    """Write every figure of the report as PNG into `folder` (created if missing); returns the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in report_figures(report, references, loss_unit).items():
        path = out / f"{name}.png"
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    return paths
