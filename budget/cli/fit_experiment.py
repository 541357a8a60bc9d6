"""`budget fit --experiment NAME`: fit an MLflow experiment's sweep, log the fit back, compare it
with the literature laws; and `--holdout-largest` for both CSV and experiment input."""

from __future__ import annotations

import math

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from budget.cli.common import emit, require_extra


def fit_experiment_command(experiment: str, tracking_uri: str | None, approaches: tuple[str, ...],
                           bootstrap: int, seed: int, level: float, target_flops: float | None,
                           holdout_largest: bool, plot_dir: str | None, as_json: bool,
                           progress: Any) -> None:
    """Read the finished sweep runs, fit, log the fit run, print the result and the comparison."""
    require_extra("sweep", "mlflow")
    from experiments.fitting import fit_experiment

    result = fit_experiment(experiment, tracking_uri, approaches=approaches, bootstrap=bootstrap,
                            seed=seed, level=level, target_flops=target_flops,
                            holdout_largest=holdout_largest, progress=progress)
    if plot_dir is not None:
        save_plots(result.report, plot_dir, result.budgets_flops,
                   (result.units or {}).get("loss_unit"))
    emit(result, as_json, render_experiment_fit)


@dataclass(frozen=True)
class CsvFit:
    """A CSV's FitReport plus the hold-out check (--holdout-largest)."""

    report: Any
    holdout: Any

    def to_dict(self) -> dict[str, Any]:
        return {**self.report.to_dict(), "holdout": self.holdout.to_dict()}

    def render(self) -> str:
        from budget.cli.fit import render

        return render(self.report) + "\n\n" + render_holdout(self.holdout)


def with_holdout(report: Any, table: Any, seed: int) -> CsvFit:
    """--holdout-largest for a CSV: the same hold-out as for an experiment (experiments.fitting)."""
    import pandas as pd

    from experiments.fitting import holdout_fit

    points = pd.DataFrame({"params": table.params, "tokens": table.tokens, "flops": table.flops,
                           "loss": table.loss})
    return CsvFit(report, holdout_fit(points, seed=seed))


def save_plots(report: Any, plot_dir: str, budgets: tuple[float, ...],
               loss_unit: str | None = None) -> None:
    from experiments.fitting import literature_references
    from fits.plots import save_figures

    refs = literature_references(budgets, report.target_flops)
    for path in save_figures(report, Path(plot_dir), refs, loss_unit=loss_unit):
        click.echo(f"wrote {path}", err=True)


def render_experiment_fit(result: Any) -> str:
    """The fit's summary, where it came from, the hold-out check and the literature comparison."""
    from budget.cli.fit import render

    sweep = result.to_dict()["sweep"]
    lines = [f"experiment {sweep['experiment']!r}: {sweep['runs']} finished runs over "
             f"{len(sweep['budgets_flops'])} budgets "
             f"({', '.join(f'{b:.1e}' for b in sweep['budgets_flops'])} FLOPs)",
             f"logged as fit run {sweep['fit_run_id']} (tag budget.role=fit; sweep run(s) "
             f"{', '.join(sweep['sweep_parents'])})"]
    if sweep.get("loss_unit"):
        lines.append(f"losses are {sweep['loss_unit']} ({sweep.get('dataset') or 'the sweep'}, "
                     f"vocabulary {sweep['vocab_size']:,}, context {sweep['n_ctx']}): not "
                     f"comparable with the literature's nats per GPT-2/Chinchilla token")
    lines += ["", render(result.report)]
    if result.holdout is not None:
        lines += ["", render_holdout(result.holdout)]
    lines += ["", render_comparison(result)]
    lines += [f"WARNING: {w}" for w in result.warnings]
    return "\n".join(lines)


def render_holdout(holdout: Any) -> str:
    lines = [f"hold-out: fitted without the largest budget ({holdout.budget_flops:.2e} FLOPs); "
             f"measured there: best loss {holdout.observed_best_loss:.4f}, optimal N "
             f"{holdout.observed_params_opt:,.0f}"]
    for key, p in holdout.predictions.items():
        loss = f"predicted best loss {p['best_loss']:.4f} ({p['best_loss_rel_error']:+.1%})" \
            if math.isfinite(p["best_loss"]) else "best loss not predicted (no loss law fitted)"
        lines.append(f"  {key}: {loss}, optimal N {p['params_opt']:,.0f} "
                     f"({p['params_opt_rel_error']:+.1%})")
    lines += [f"  {key}: not fitted without the largest budget ({why})"
              for key, why in holdout.skipped.items()]
    return "\n".join(lines)


def render_comparison(result: Any) -> str:
    """Exponents and N_opt at the target budget: the team's fit beside the literature laws."""
    from budget.errors import BudgetError
    from budget.render import human, table
    from budget.scaling.calibrated import calibration_from_fit

    target = result.report.target_flops
    try:
        rows = calibration_from_fit(result.to_dict(), "this fit").comparison(target)
    except BudgetError as exc:
        return f"no comparison with the literature: {exc}"
    body = [[r["law"], f"{r['a']:.3f}", f"{r['b']:.3f}", human(r["params"]),
             "-" if r["params_ratio"] is None else f"{r['params_ratio']:.3g}"] for r in rows]
    return "\n".join([f"against the literature at C = {target:.2e} FLOPs (N_opt ~ C^a, D_opt ~ C^b; "
                      "ratio = your N_opt / theirs; kaplan's N is non-embedding):",
                      table(["law", "a", "b", "N_opt", "ratio"], body)])
