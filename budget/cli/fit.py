"""`budget fit`: fit scaling laws (Chinchilla Approaches 1-3, Kaplan) to a CSV of runs with scipy."""

from __future__ import annotations

import sys
from typing import Any

import click

from budget.cli.common import POSITIVE, Number, check_writable_dir, emit, json_option
from budget.wiring import (
    APPROACH_CHOICES,
    DEFAULT_APPROACHES,
    DEFAULT_BOOTSTRAP,
    DEFAULT_BUDGET_TOL,
    DEFAULT_LEVEL,
    MAX_BOOTSTRAP,
    FitRequest,
)


@click.command(name="fit")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False, readable=True),
              help="CSV of runs: params, loss and tokens or flops (optional run_id for per-step curves).")
@click.option("--experiment", default=None,
              help="MLflow experiment of 'budget sweep' runs: fit its finished points and log the fit "
                   "back to it as a run of its own.")
@click.option("--tracking-uri", default=None,
              help="MLflow store of --experiment (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")
@click.option("--holdout-largest", is_flag=True,
              help="Also fit without the largest budget and report how well that predicts its best "
                   "loss and optimal N (relative errors).")
@click.option("--approach", "approaches", type=click.Choice(APPROACH_CHOICES, case_sensitive=False),
              multiple=True, default=DEFAULT_APPROACHES, show_default=True,
              help="Method(s) to fit; repeat for several. 'all' skips those the data cannot support.")
@click.option("--bootstrap", type=click.IntRange(min=0, max=MAX_BOOTSTRAP), default=DEFAULT_BOOTSTRAP,
              show_default=True,
              help=f"Bootstrap resamples over runs for the intervals (0 = none; at most {MAX_BOOTSTRAP:,}).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap resampling.")
@click.option("--level", type=Number(high=1.0, high_open=True), default=DEFAULT_LEVEL,
              show_default=True, help="Confidence level of the intervals.")
# a law's extrapolation past 1e30 FLOPs (100,000x the largest runs reported, ~4e25) is no answer
@click.option("--target-flops", type=Number(low=1.0, high=1e30), default=None,
              help="Budget (FLOPs) where N_opt, D_opt and loss are reported [default: largest in the CSV].")
@click.option("--drop-highest-loss", type=click.IntRange(min=0), default=0, show_default=True,
              help="Leave out the K highest-loss runs (Epoch's Chinchilla refit drops 5).")
@click.option("--budget-tol", type=POSITIVE, default=DEFAULT_BUDGET_TOL, show_default=True,
              help="Approach 2: runs whose log10 FLOPs lie within this many decades form one budget.")
@click.option("--budgets", callback=lambda ctx, param, value: _budgets(value, param, ctx), default=None,
              metavar="C1,C2,...",
              help="Approach 2: nominal budgets in FLOPs, comma-separated (each run joins the nearest).")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for PNG figures (IsoFLOP curves, frontier, residuals).")
@json_option
def command(csv_path: str | None, experiment: str | None, tracking_uri: str | None,
            holdout_largest: bool, approaches: tuple[str, ...], bootstrap: int,
            seed: int, level: float, target_flops: float | None, drop_highest_loss: int, budget_tol: float,
            budgets: list[float] | None, plot_dir: str | None, as_json: bool) -> None:
    """Fit scaling laws to your runs: IsoFLOP minima, L = E + A/N^alpha + B/D^beta, Kaplan's L(N, D).

    With --experiment, the fit of a 'budget sweep' experiment is logged back to it and compared
    with the literature laws; 'budget plan --calibrate EXPERIMENT' then plans with it.

    Example: budget fit --csv runs.csv --approach 3 --bootstrap 1000 --plot fig/
    """
    if experiment is not None and csv_path is not None:
        raise click.UsageError("give --csv FILE or --experiment NAME, not both")
    if plot_dir is not None:
        check_writable_dir(plot_dir, "--plot")  # before a long fit, not after it
    from budget.cli.fit_render import render_fit
    from budget.wiring import run_fit

    req = FitRequest(csv_path, experiment, tracking_uri, holdout_largest, tuple(approaches),
                     bootstrap, seed, level, target_flops, drop_highest_loss, budget_tol,
                     tuple(budgets) if budgets else None, plot_dir)
    with _ProgressBars() as progress:
        outcome = run_fit(req, progress)
    for path in outcome.figures:
        click.echo(f"wrote {path}", err=True)
    emit(outcome, as_json, render_fit)


def _budgets(value: str | None, param: Any, ctx: Any) -> list[float] | None:
    """Parse '6e18,1e19,3e19' into numbers > 0 (a usage error names the bad item)."""
    if value is None:
        return None
    return [POSITIVE.convert(item, param, ctx) for item in value.split(",") if item.strip()] or None


class _ProgressBars:
    """Adapts fits' progress(label, done, total) callback to one click progress bar per label, on stderr."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._label = ""
        self._done = 0

    def __enter__(self) -> "_ProgressBars":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._close()

    def __call__(self, label: str, done: int, total: int) -> None:
        if label != self._label or self._bar is None:
            self._close()
            self._bar = click.progressbar(length=total, label=label, file=sys.stderr)
            self._bar.__enter__()
            self._label, self._done = label, 0
        self._bar.update(done - self._done)
        self._done = done

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def render(report: Any) -> str:
    """Human-readable summary of a FitReport (numbers only formatted here, never computed)."""
    d = report.to_dict()
    head = d["input"]
    lines = [f"{head['points']} runs, {head['distinct_params']} model sizes"
             + "".join(f"; {note}" for note in head["notes"])]
    lines += [f"skipped {k}: {v}" for k, v in head["skipped"].items()]
    for key, res in d.items():
        if key == "input" or not isinstance(res, dict):  # kind, schema_version
            continue
        lines.append("")
        lines.append(f"{key}: {res['model']}" + ("" if res["success"] else f"  [NOT CONVERGED: {res['message']}]"))
        one = len(head.get("budgets_flops", [])) == 1
        lines += [_row(name, res[name], res["ci"].get(name))
                  + (ONE_BUDGET if one and name in EXPONENTS else "") for name in _names(key)]
        if res.get("target"):
            t = res["target"]
            loss = "" if t["loss"] is None else f", loss {t['loss']:.4f}"
            lines.append(f"  at C = {t['flops']:.3g}: N_opt {t['params']:.3g}, D_opt {t['tokens']:.3g} "
                         f"({t['tokens_per_param']:.1f} tokens/param){loss}")
        lines.append(f"  residual RMSE ({res['residuals']['space']}): {res['residuals']['rmse']:.4g}")
    return "\n".join(lines)


EXPONENTS = ("a", "b", "alpha", "beta", "alpha_N", "alpha_D")
ONE_BUDGET = "  (one budget: not identified)"


def _names(key: str) -> tuple[str, ...]:
    return {"approach3": ("E", "A", "B", "alpha", "beta", "a", "b"),
            "kaplan": ("N_c", "D_c", "alpha_N", "alpha_D", "a", "b")}.get(key, ("a", "b", "k_params", "k_tokens"))


def _row(name: str, value: float | None, ci: dict[str, Any] | None) -> str:
    interval = f"  [{_g(ci['low'])}, {_g(ci['high'])}] ({ci['level']:.0%})" if ci else ""
    return f"  {name:>8} = {_g(value)}{interval}"


def _g(value: float | None) -> str:
    """A fitted number to 4 significant digits; 'n/a' where the fit gave none (inf or NaN)."""
    return "n/a" if value is None else f"{value:.4g}"
