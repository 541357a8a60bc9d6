"""One entry point for every fit: `fit_table(df, approaches=...) -> FitReport` (what `budget fit` prints)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from fits.approach1 import fit_approach1
from fits.approach2 import (
    BUDGET_TOL_DECADES,
    cluster_budgets,
    fit_approach2,
    snap_budgets,
)
from fits.approach3 import fit_approach3
from fits.common import Progress, check_bootstrap, check_level, group_slices, json_safe
from fits.data import FitTable, prepare_table
from fits.errors import FitError
from fits.kaplan import fit_kaplan

APPROACHES = ("1", "2", "3", "kaplan")
# The fit file's identity (budget.scaling.calibrated reads exactly this kind and version; it states
# the same two constants because fits never imports budget). Bump the version when a key it reads
# changes meaning or place.
FIT_KIND = "compute-budget.fit"
FIT_SCHEMA_VERSION = 1
RESULT_KEYS = {"1": "approach1", "2": "approach2", "3": "approach3", "kaplan": "kaplan"}
# Rows x bootstrap resamples: each resample refits every row. Measured here: 500 rows x 200
# resamples (approaches 2 and 3) take 8.6 s on one core, so 2,000,000 row-refits is about half a
# minute to a minute; past it the resamples are cut to fit, and below MIN_RESAMPLES dropped.
MAX_ROW_RESAMPLES = 2_000_000
MIN_RESAMPLES = 20  # fewer resamples than this give no usable percentile interval


@dataclass(frozen=True, eq=False)
class FitReport:
    """The fits run on one table: results keyed `approach1`, `approach2`, `approach3`, `kaplan`."""

    table: FitTable
    results: dict[str, Any]
    target_flops: float
    bootstrap: int
    seed: int
    level: float
    skipped: dict[str, str] = field(default_factory=dict)
    budgets_flops: tuple[float, ...] = ()  # the distinct compute budgets (median C of each group)
    notes: tuple[str, ...] = ()  # what the fit changed or cannot say (a capped bootstrap, one budget)

    def __getitem__(self, key: str) -> Any:
        return self.results[key]

    def to_dict(self) -> dict[str, Any]:
        head = dict(self.table.to_dict(), target_flops=self.target_flops, bootstrap=self.bootstrap,
                    seed=self.seed, level=self.level, skipped=dict(self.skipped),
                    budgets_flops=list(self.budgets_flops))
        head["notes"] = list(head.get("notes", [])) + list(self.notes)
        return json_safe({"kind": FIT_KIND, "schema_version": FIT_SCHEMA_VERSION, "input": head,
                          **{k: v.to_dict() for k, v in self.results.items()}})


def parse_approaches(approaches: str | Iterable[str]) -> tuple[tuple[str, ...], bool]:
    """Normalise approach names ('1', '2', '3', 'kaplan', 'all'); returns (names, lenient)."""
    names = [approaches] if isinstance(approaches, str) else list(approaches)
    names = [str(a).strip().lower().removeprefix("approach") for a in names]
    if "all" in names:
        return APPROACHES, True
    bad = [a for a in names if a not in APPROACHES]
    if bad or not names:
        raise FitError(f"unknown approach {', '.join(bad) or '(none)'}; choose from 1, 2, 3, kaplan, all")
    return tuple(dict.fromkeys(names)), False


def fit_table(data: pd.DataFrame | FitTable, approaches: str | Iterable[str] = ("2", "3"), *,
              bootstrap: int = 0, seed: int = 0, target_flops: float | None = None,
              progress: Progress | None = None, level: float = 0.95, drop_highest_loss: int = 0,
              curves: pd.DataFrame | None = None, budget_tol: float = BUDGET_TOL_DECADES,
              budgets: Sequence[float] | None = None) -> FitReport:
    """Run the chosen fits on a table of runs (columns params, tokens and/or flops, loss[, run_id]).

    With 'all', approaches the data cannot support (e.g. Approach 1 without per-step curves) are
    skipped and the reason is recorded; an approach named explicitly raises FitError instead.
    `target_flops` (default: the largest compute in the table) is where N_opt, D_opt and the loss
    are reported with intervals. `curves` is an optional separate long table (run_id, params,
    tokens or flops, loss per step) for Approach 1 when `data` holds only final results.
    `budget_tol` and `budgets` choose how Approach 2 groups runs into budgets (see fit_approach2).
    """
    table = data if isinstance(data, FitTable) else prepare_table(data, drop_highest_loss=drop_highest_loss)
    if curves is not None:
        steps = prepare_table(curves).curves
        if steps is None:
            raise FitError("curves must be a long table with a run_id column and several rows per run")
        table = replace(table, curves=steps)
    names, lenient = parse_approaches(approaches)
    bootstrap, level = check_bootstrap(bootstrap), check_level(level)
    bootstrap, capped = cap_bootstrap(len(table.loss), bootstrap)
    target = float(target_flops) if target_flops is not None else float(np.max(table.flops))
    if not (np.isfinite(target) and target > 0):
        raise FitError(f"target_flops must be a finite number > 0, got {target_flops!r}")
    opts = {"bootstrap": bootstrap, "seed": seed, "level": level, "target_flops": target, "progress": progress}
    grouping = {"budget_tol": budget_tol, "budgets": budgets}
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in names:
        try:
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # results are checked
                results[RESULT_KEYS[name]] = _run(name, table, opts, grouping)
        except FitError as exc:
            if not lenient:
                raise
            skipped[RESULT_KEYS[name]] = str(exc)
    if not results:
        raise FitError("no fit could run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    _check_target(results, target)
    found = distinct_budgets(table.flops, budget_tol, budgets)
    notes = [capped] if capped else []
    if len(found) == 1:
        notes.append(f"every run has one compute budget (C = {found[0]:.3g} FLOPs): the exponents "
                     "are not identified by this data (N and D move together on one IsoFLOP); "
                     "sweep at least three budgets")
    return FitReport(table, results, target, bootstrap, seed, level, skipped, found, tuple(notes))


def cap_bootstrap(rows: int, resamples: int) -> tuple[int, str]:
    """(resamples to run, a note saying what was capped, or '') under MAX_ROW_RESAMPLES."""
    if rows * resamples <= MAX_ROW_RESAMPLES:
        return resamples, ""
    fit = MAX_ROW_RESAMPLES // max(rows, 1)
    kept = fit if fit >= MIN_RESAMPLES else 0
    return kept, (f"bootstrap capped: {rows:,} rows x {resamples:,} resamples is over the "
                  f"{MAX_ROW_RESAMPLES:,} row-refits allowed; ran {kept:,} resamples"
                  + ("" if kept else " (no intervals: too few to be meaningful; aggregate the rows)"))


def _check_target(results: dict[str, Any], target: float) -> None:
    """FitError when a fit's N_opt or D_opt at the target overflows (a target far past the data)."""
    for key, result in results.items():
        optimum = getattr(result, "target", None)
        if optimum is None:
            continue
        values = (optimum.params, optimum.tokens)
        if not all(np.isfinite(v) and v > 0 for v in values):
            raise FitError(f"target_flops {target:.3g}: {key}'s N_opt, D_opt = {values[0]:.3g}, "
                           f"{values[1]:.3g} are not finite positive numbers there; give a target "
                           "within a few orders of magnitude of the fitted budgets")


def distinct_budgets(flops: np.ndarray, budget_tol: float = BUDGET_TOL_DECADES,
                     budgets: Sequence[float] | None = None) -> tuple[float, ...]:
    """The budgets the runs were grouped into (as Approach 2 groups them): median C of each group."""
    if budgets is not None:
        labels, flops = snap_budgets(flops, budgets)
    else:
        labels = cluster_budgets(flops, budget_tol)
    return tuple(sorted(float(np.median(flops[idx])) for idx in group_slices(labels)[1]))


def _run(name: str, t: FitTable, opts: dict[str, Any], grouping: dict[str, Any]) -> Any:
    if name == "1":
        if t.curves is None:
            raise FitError("Approach 1 needs per-step training curves: a run_id column with several rows per run")
        cv = t.curves
        return fit_approach1(cv.run_id, cv.params, cv.tokens, cv.loss, cv.flops, **opts)
    if name == "2":
        return fit_approach2(t.params, t.tokens, t.flops, t.loss, **opts, **grouping)
    if name == "3":
        return fit_approach3(t.params, t.tokens, t.loss, **opts)
    return fit_kaplan(t.params, t.tokens, t.loss, **opts)

