"""The one place `budget` reaches into `fits` and `experiments`, always lazily inside a function.

`budget fit` (a CSV or an MLflow experiment, with the hold-out check and figures) and loading a
calibration for `budget plan --calibrate` / `budget report --calibrate` live here, so the commands
stay thin (parse, one call, render) and `import budget` pulls in neither scipy, pandas, torch nor
mlflow. A missing optional dependency is a BudgetError naming the extra to install (exit 2).

The option choices and defaults of `budget fit` are constants here; `fits` states the same values
(`fits.report.APPROACHES`, `fits.approach2.BUDGET_TOL_DECADES`; a test checks they agree) but is
not imported at command-line start-up.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from budget.errors import BudgetError
from budget.scaling.calibrated import (
    Calibration,
    calibration_from_fit,
    is_fit_file,
    load_calibration_file,
)

APPROACH_CHOICES = ("1", "2", "3", "kaplan", "all")  # fits.report.APPROACHES plus 'all'
DEFAULT_APPROACHES = ("all",)
DEFAULT_BOOTSTRAP = 200  # resamples over runs for the intervals
MAX_BOOTSTRAP = 10_000  # = fits.common.MAX_BOOTSTRAP (fits may not import budget, nor budget fits at import)
DEFAULT_LEVEL = 0.95
DEFAULT_BUDGET_TOL = 0.15  # decades of log10 C merged into one budget (fits.approach2.BUDGET_TOL_DECADES)
SWEEP_EXTRA = "sweep"

if TYPE_CHECKING:
    from budget.planner import Plan, PlanRequest


def require_extra(extra: str, *modules: str) -> None:
    """BudgetError with the pip line to run when an optional dependency is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise BudgetError(f"this command needs {', '.join(missing)}; install the extra: "
                          f"pip install 'compute-budget[{extra}]'")


# --- calibration for plan and report --------------------------------------------------------

@dataclass(frozen=True)
class LoadedCalibration:
    """A calibration and, when it came from an MLflow experiment, the fit run it was read from."""

    calibration: Calibration
    run_id: str | None = None
    tracking_uri: str | None = None


def load_calibration(name: str, tracking_uri: str | None = None) -> LoadedCalibration:
    """`--calibrate NAME`: a saved fit file, or the newest fit logged to an MLflow experiment
    (fitted now, not logged, when the experiment has none yet; needs the sweep extra)."""
    if is_fit_file(name):
        _refuse_unusable(name, _read_fit_file(name), f"fit file {name!r}")
        return LoadedCalibration(load_calibration_file(name))
    require_extra(SWEEP_EXTRA, "mlflow")
    from experiments.review.fitting import latest_fit

    fit, run_id = latest_fit(name, tracking_uri)
    where = f"fit run {run_id[:8]}" if run_id else "fitted now: no fit run logged yet"
    _refuse_unusable(name, fit, f"the fit of experiment {name!r} ({where})")
    return LoadedCalibration(calibration_from_fit(fit, f"experiment '{name}', {where}"), run_id,
                             tracking_uri)


def _read_fit_file(path: str) -> dict[str, Any]:
    import json

    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError):
        return {}  # load_calibration_file says what is wrong with it, in one line
    return data if isinstance(data, dict) else {}


def _refuse_unusable(name: str, fit: dict[str, Any], what: str) -> None:
    """BudgetError in one line when the fit is recorded (or judged) not usable for planning
    (experiments.review.usability), naming why and the preset to run instead."""
    from experiments.review.usability import INSTEAD, refusal

    why = refusal(fit)
    if why is not None:
        raise BudgetError(f"--calibrate {name}: {what} is not usable for planning: {why}; run "
                          f"{INSTEAD}, then budget fit --experiment NAME")


def calibrated_plan(req: PlanRequest, calibrate: str | None = None,
                    tracking_uri: str | None = None) -> Plan:
    """`budget plan`: the planner's Plan for a PlanRequest, with `--calibrate NAME` loaded first."""
    from budget.planner import make_plan

    calibration = load_calibration(calibrate, tracking_uri).calibration if calibrate else None
    return make_plan(req, calibration=calibration)


def open_report_store(tracking_uri: str | None, experiment: str) -> tuple[Any, str, str]:
    """(client, experiment id, tracking URI) of the store `budget report --experiment` logs to;
    opened before any file is written so a bad URI fails first."""
    require_extra(SWEEP_EXTRA, "mlflow")
    from experiments.tracking.store import probe_writable
    from experiments.tracking.writer import open_store, resolve_tracking_uri

    try:
        probe_writable(resolve_tracking_uri(tracking_uri))  # read-only or locked: at once
        return open_store(tracking_uri, experiment)
    except OSError as exc:  # open_store lets mlflow's mkdir of the sqlite folder through
        raise BudgetError(f"tracking store {tracking_uri!r} is not usable: "
                          f"{exc.strerror or exc}") from None


def log_report(written: Any, tracker: Any, experiment_id: str, tracking_uri: str) -> dict[str, str]:
    """The report folder as artifacts (under `report/`) of a run of its own, through the
    project's one MLflow writer (experiments.tracking.writer); its ids."""
    from budget.report.build import report_metrics, report_params
    from experiments.tracking import names
    from experiments.tracking.writer import log_folder_run

    plan = written.report.plan
    return log_folder_run(tracker, experiment_id, written.out_dir,
                          name=names.report_run_name(plan.compute_flops), role=names.ROLE_REPORT,
                          params=report_params(written.report), metrics=report_metrics(plan),
                          artifact_path=names.REPORT_DIR)


def calibration_figures(loaded: LoadedCalibration) -> dict[str, bytes]:
    """PNG bytes (file stem -> bytes) of the figures logged with the fit run; none for a file."""
    if loaded.run_id is None:
        return {}
    from experiments.review.fitting import fit_figures

    return fit_figures(loaded.run_id, loaded.tracking_uri)


# --- budget fit -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FitRequest:
    """Everything `budget fit` takes, already parsed (exactly one of csv_path or experiment)."""

    csv_path: str | None = None
    experiment: str | None = None
    tracking_uri: str | None = None
    holdout_largest: bool = False
    approaches: tuple[str, ...] = DEFAULT_APPROACHES
    bootstrap: int = DEFAULT_BOOTSTRAP
    seed: int = 0
    level: float = DEFAULT_LEVEL
    target_flops: float | None = None
    drop_highest_loss: int = 0
    budget_tol: float = DEFAULT_BUDGET_TOL
    budgets: tuple[float, ...] | None = None
    plot_dir: str | None = None


@dataclass(frozen=True)
class CsvFit:
    """A CSV's FitReport plus the hold-out check (--holdout-largest)."""

    report: Any  # fits.FitReport
    holdout: Any  # experiments.review.fitting.Holdout

    def to_dict(self) -> dict[str, Any]:
        return {**self.report.to_dict(), "holdout": self.holdout.to_dict()}


@dataclass(frozen=True)
class FitOutcome:
    """What `budget fit` made: the result (FitReport, CsvFit or ExperimentFit) and figure paths."""

    result: Any
    figures: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return dict(self.result.to_dict())


def run_fit(req: FitRequest, progress: Callable[[str, int, int], None] | None = None) -> FitOutcome:
    """Fit a CSV or an experiment's sweep as `req` says; write figures when `req.plot_dir`."""
    if req.experiment is not None and req.csv_path is not None:
        raise BudgetError("give --csv FILE or --experiment NAME, not both")
    if req.experiment is not None:
        return _fit_experiment(req, progress)
    if req.csv_path is None:
        raise BudgetError("give --csv FILE (a CSV with params, loss and tokens or flops columns) "
                          "or --experiment NAME (an MLflow experiment of sweep runs)")
    from fits import fit_table, load_csv

    table = load_csv(req.csv_path, drop_highest_loss=req.drop_highest_loss)
    report = fit_table(table, req.approaches, bootstrap=req.bootstrap, seed=req.seed,
                       target_flops=req.target_flops, progress=progress, level=req.level,
                       budget_tol=req.budget_tol,
                       budgets=list(req.budgets) if req.budgets else None)
    figures: tuple[str, ...] = ()
    if req.plot_dir is not None:
        from fits.plots import save_figures

        figures = tuple(str(p) for p in save_figures(report, req.plot_dir))
    if req.holdout_largest:
        return FitOutcome(with_holdout(report, table, req.seed), figures)
    return FitOutcome(report, figures)


def with_holdout(report: Any, table: Any, seed: int) -> CsvFit:
    """--holdout-largest for a CSV: the same hold-out as for an experiment (experiments.review.fitting)."""
    require_extra(SWEEP_EXTRA, "mlflow")
    import pandas as pd

    from experiments.review.fitting import holdout_fit

    points = pd.DataFrame({"params": table.params, "tokens": table.tokens, "flops": table.flops,
                           "loss": table.loss})
    return CsvFit(report, holdout_fit(points, seed=seed))


def _fit_experiment(req: FitRequest, progress: Callable[[str, int, int], None] | None) -> FitOutcome:
    """Read the finished sweep runs, fit, log the fit run; figures beside the literature laws."""
    require_extra(SWEEP_EXTRA, "mlflow")
    from experiments.review.fitting import fit_experiment, literature_references

    result = fit_experiment(str(req.experiment), req.tracking_uri, approaches=req.approaches,
                            bootstrap=req.bootstrap, seed=req.seed, level=req.level,
                            target_flops=req.target_flops, holdout_largest=req.holdout_largest,
                            progress=progress)
    figures: tuple[str, ...] = ()
    if req.plot_dir is not None:
        from fits.plots import save_figures

        refs = literature_references(result.budgets_flops, result.report.target_flops)
        unit = (getattr(result, "units", None) or {}).get("loss_unit")
        figures = tuple(str(p) for p in save_figures(result.report, Path(req.plot_dir), refs,
                                                     loss_unit=unit))
    return FitOutcome(result, figures)


def literature_comparison(result: Any) -> list[dict[str, Any]]:
    """The team's fit beside every registered law at the fit's target budget (BudgetError when
    the fit has no usable Approach 3)."""
    return calibration_from_fit(result.to_dict(), "this fit").comparison(result.report.target_flops)
