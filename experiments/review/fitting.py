"""Close the loop: fit an experiment's sweep runs (`budget fit --experiment`) and log the fit back.

`fit_experiment` reads the finished sweep points of an MLflow experiment
(`experiments.tracking.writer.sweep_runs_frame`; per-step curves for Approach 1), runs `fits.fit_table`,
and logs the result to the same experiment as a run of its own (tag `budget.role = fit`): the
fitted parameters and interval ends as metrics, the JSON result and the figures (IsoFLOP curves
with minima, the frontier beside the literature laws, residuals) as artifacts, tagged with the
sweep runs it came from. `holdout_largest=True` fits on all but the largest budget and measures
how well that fit predicts the held-out budget's best loss and optimal N.
`latest_fit` returns the newest logged fit JSON for `budget plan --calibrate EXP`.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

from experiments.errors import SweepError
from experiments.tracking import names
from experiments.tracking.writer import (
    ROLE,
    Tracker,
    find_runs,
    open_reader,
    redact,
    resolve_tracking_uri,
)

FIT_ROLE = names.ROLE_FIT
SWEEP_PARENTS_TAG = names.SWEEP_PARENTS
FIT_JSON = names.FIT_JSON
MIN_RUNS = 6  # Approach 3 needs >= 6 runs over >= 3 sizes (fits.approach3)
MIN_BUDGETS = 2  # Approach 2 needs >= 2 budgets with an interior minimum (fits.approach2)
LITERATURE_REFERENCES = ("epoch", "chinchilla", "kaplan")


@dataclass(frozen=True)
class Holdout:
    """How a fit on all but the largest budget predicts that budget."""

    budget_flops: float
    observed_best_loss: float
    observed_params_opt: float
    predictions: dict[str, dict[str, float]]  # approach -> {best_loss, params_opt, *_rel_error}
    skipped: dict[str, str]  # approach -> why it could not be fitted without the largest budget
    vertex_inside: bool = True  # False: the measured optimum is the best run's N, not a vertex
    sampled_params: tuple[float, float] = (math.nan, math.nan)  # held-out budget's N range

    @property
    def warnings(self) -> list[str]:
        out = []
        if not self.vertex_inside:
            out.append(f"hold-out: the fitted vertex lies outside the sampled sizes at "
                       f"{self.budget_flops:.3g} FLOPs; its 'optimal N' is the best run's N, "
                       f"so the N error is only a bound")
        low, high = self.sampled_params
        for key, p in self.predictions.items():
            n = p.get("params_opt", math.nan)
            if math.isfinite(n) and math.isfinite(low) and not low <= n <= high:
                out.append(f"hold-out: {key} predicts N_opt {n:,.0f} outside the sizes the "
                           f"held-out budget sampled ({low:,.0f}-{high:,.0f})")
        return out

    def to_dict(self) -> dict[str, Any]:
        def finite(x: float) -> float | None:  # JSON has no NaN: "not predicted" is null
            return x if math.isfinite(x) else None

        return {"budget_flops": self.budget_flops, "observed_best_loss": self.observed_best_loss,
                "observed_params_opt": self.observed_params_opt,
                "predictions": {k: {m: finite(v) for m, v in p.items()}
                                for k, p in self.predictions.items()},
                "skipped": self.skipped, "vertex_inside": self.vertex_inside,
                "sampled_params": [finite(x) for x in self.sampled_params],
                "warnings": self.warnings}


@dataclass(frozen=True)
class ExperimentFit:
    """A FitReport of an experiment's sweep, where it came from, and the run it was logged to."""

    experiment: str
    experiment_id: str
    tracking_uri: str
    report: Any  # fits.FitReport
    budgets_flops: tuple[float, ...]
    sweep_parents: tuple[str, ...]
    n_runs: int
    fit_run_id: str | None = None
    holdout: Holdout | None = None
    units: dict[str, Any] | None = None  # loss_unit, vocab_size, n_ctx of the sweep (sweep_units)
    planning: dict[str, Any] | None = None  # experiments.review.usability.planning_verdict

    @property
    def warnings(self) -> list[str]:
        from fits.diagnostics import weak_fit_warnings

        out = weak_fit_warnings(self.report)
        if self.holdout is not None:
            out += self.holdout.warnings
        return out

    def to_dict(self) -> dict[str, Any]:
        out = self.report.to_dict()
        out["sweep"] = {"experiment": self.experiment, "experiment_id": self.experiment_id,
                        "tracking_uri": self.tracking_uri, "fit_run_id": self.fit_run_id,
                        "sweep_parents": list(self.sweep_parents), "runs": self.n_runs,
                        "budgets_flops": list(self.budgets_flops), **(self.units or {})}
        out["holdout"] = self.holdout.to_dict() if self.holdout else None
        out["warnings"] = self.warnings
        if self.planning is not None:
            out["planning"] = self.planning
        return out


def sweep_units(client: Any, run_ids: Any) -> dict[str, Any]:
    """What the sweep's losses are measured in: nats per token of its tokenizer (per byte for the
    byte-level default), with the vocabulary and context the calibrated shape must use."""
    from experiments.training.data import loss_unit

    ids = list(run_ids)
    if not ids:
        return {}
    p = client.get_run(ids[0]).data.params
    vocab, n_ctx = int(p.get("vocab_size", 0)), int(p.get("n_ctx", 0))
    return {"loss_unit": loss_unit(vocab), "vocab_size": vocab, "n_ctx": n_ctx,
            "dataset": p.get("dataset", "")}


def read_sweep(experiment: str, tracking_uri: str | None) -> tuple[Any, Any, tuple[str, ...], str]:
    """(points frame, curves frame, sweep parent run ids, experiment id) of the finished points."""
    from experiments.tracking.writer import sweep_curves_frame, sweep_runs_frame

    client, uri = open_reader(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        from experiments.tracking.unknown_experiment import unknown_experiment

        raise unknown_experiment(client, experiment, redact("", uri))
    points = sweep_runs_frame(experiment, uri)
    parents = tuple(sorted({client.get_run(r).data.tags.get(names.PARENT_RUN, "")
                            for r in points["run_id"]} - {""}))
    curves = sweep_curves_frame(experiment, uri) if len(points) else None
    return points, curves, parents, found.experiment_id


def check_enough(points: Any, experiment: str) -> tuple[float, ...]:
    """The distinct budgets; SweepError saying what is missing when the sweep is too small."""
    from fits import cluster_budgets

    if len(points) == 0:
        import shlex

        command = shlex.join(["budget", "sweep", "--experiment", experiment])
        raise SweepError(f"experiment {experiment!r} has no finished sweep runs; run "
                         f"'{command}' first")
    labels = cluster_budgets(points["flops"].to_numpy())
    budgets = tuple(sorted(float(points["flops"][labels == k].median()) for k in set(labels)))
    if len(points) < MIN_RUNS or len(budgets) < MIN_BUDGETS:
        raise SweepError(
            f"experiment {experiment!r} has {len(points)} finished runs over {len(budgets)} "
            f"budget(s); fitting needs at least {MIN_RUNS} runs over {MIN_BUDGETS} budgets with 3+ "
            "model sizes each (run 'budget sweep' with more --budgets or --points)")
    return budgets


def fit_experiment(experiment: str, tracking_uri: str | None = None, *,
                   approaches: tuple[str, ...] = ("all",), bootstrap: int = 200, seed: int = 0,
                   level: float = 0.95, target_flops: float | None = None,
                   holdout_largest: bool = False, log: bool = True,
                   progress: Callable[[str, int, int], None] | None = None) -> ExperimentFit:
    """Fit the experiment's finished sweep points; log the fit back unless `log` is False."""
    from fits import fit_table

    uri = resolve_tracking_uri(tracking_uri)
    if log:  # the fit is logged back: a store that refuses writes fails before the fitting
        from experiments.tracking.store import probe_writable

        probe_writable(uri)
    points, curves, parents, exp_id = read_sweep(experiment, uri)
    budgets = check_enough(points, experiment)
    # the hold-out fits without bootstrap: quick, and it says what is missing before the long fit
    with quiet_numpy():
        holdout = holdout_fit(points, seed=seed) if holdout_largest else None
        wants_1 = any(a in ("1", "all") for a in approaches)
        report = fit_table(points[["params", "tokens", "flops", "loss"]], approaches,
                           bootstrap=bootstrap, seed=seed, level=level, target_flops=target_flops,
                           progress=progress, curves=curves if wants_1 and curves is not None
                           and len(curves) else None)
    from mlflow.tracking import MlflowClient

    units = sweep_units(MlflowClient(tracking_uri=uri), points["run_id"])
    from experiments.review.usability import planning_verdict

    result = ExperimentFit(experiment, exp_id, uri, report, budgets, parents, len(points),
                           holdout=holdout, units=units,
                           planning=planning_verdict(points, report.to_dict()))
    if log:
        result = log_fit(result)
    return result


@contextmanager
def quiet_numpy() -> Iterator[None]:
    """Bootstrap resamples hit degenerate parabolas and overflowing power laws by design (those
    refits count as failed and are reported): numpy's RuntimeWarnings about them are noise."""
    import warnings

    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def holdout_fit(points: Any, *, bootstrap: int = 0, seed: int = 0) -> Holdout:
    """Fit Approaches 2 and 3 without the largest budget; compare with what that budget measured."""
    import numpy as np

    from fits import FitError, cluster_budgets, fit_table

    labels = cluster_budgets(points["flops"].to_numpy())
    top = labels == labels.max()
    held, rest = points[top], points[~top]
    if len(set(labels[~top])) < MIN_BUDGETS:
        raise SweepError(f"--holdout-largest needs at least {MIN_BUDGETS + 1} compute budgets, the "
                         f"runs have {len(set(labels))}")
    budget = float(held["flops"].median())
    observed_loss = float(held["loss"].min())
    sizes = held["params"].to_numpy(float)
    observed_n = _parabola_minimum(sizes, held["loss"].to_numpy(float))
    inside = _vertex_inside(sizes, held["loss"].to_numpy(float))
    predictions: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    for approach in ("2", "3"):
        key = f"approach{approach}"
        try:
            fit = fit_table(rest[["params", "tokens", "flops", "loss"]], (approach,),
                            bootstrap=bootstrap, seed=seed, target_flops=budget)[key]
        except FitError as exc:
            skipped[key] = str(exc)
            continue
        opt = fit.optimal_allocation(budget)
        loss = float(opt.loss) if opt.loss is not None and np.isfinite(opt.loss) else math.nan
        predictions[key] = {"best_loss": loss, "params_opt": float(opt.params),
                            "best_loss_rel_error": loss / observed_loss - 1.0,
                            "params_opt_rel_error": float(opt.params) / observed_n - 1.0}
    return Holdout(budget, observed_loss, observed_n, predictions, skipped, inside,
                   (float(sizes.min()), float(sizes.max())))


def _vertex_inside(params: Any, loss: Any) -> bool:
    import numpy as np

    x = np.log(params)
    if len(set(x)) < 3:
        return False
    c2, c1, _ = np.polyfit(x, loss, 2)
    return bool(c2 > 0 and x.min() <= -c1 / (2 * c2) <= x.max())


def _parabola_minimum(params: Any, loss: Any) -> float:
    """N at the minimum of a parabola in log N through the held-out budget's runs (Approach 2's
    per-budget step); the best run's N when the parabola has no interior minimum."""
    import numpy as np

    x = np.log(params)
    best = float(params[np.argmin(loss)])
    if len(x) < 3:
        return best
    c2, c1, _ = np.polyfit(x, loss, 2)
    if c2 <= 0:
        return best
    vertex = -c1 / (2 * c2)
    return float(np.exp(vertex)) if x.min() <= vertex <= x.max() else best


def literature_references(budgets: tuple[float, ...], target: float | None) -> dict[str, Any]:
    """label -> (C values, N_opt values) of the literature laws over the plotted compute range."""
    import numpy as np

    from budget.scaling import laws

    high = max(max(budgets), target or 0.0)
    cs = np.logspace(math.log10(min(budgets)) - 0.5, math.log10(high) + 0.5, 50)
    refs = {}
    for law in LITERATURE_REFERENCES:
        ns = [laws.compute_optimal(law, float(c)).params for c in cs]
        label = f"{law} (literature{', non-embedding N' if law == 'kaplan' else ''})"
        refs[label] = (cs.tolist(), ns)
    return refs


def _planning_tags(planning: dict[str, Any] | None) -> dict[str, str]:
    if planning is None:
        return {}
    why = "; ".join(planning["reasons"])
    return {names.USABLE: str(planning["usable"]).lower(), **({names.UNUSABLE_WHY: why}
                                                              if why else {})}


def log_fit(result: ExperimentFit) -> ExperimentFit:
    """Log the fit as its own run in the experiment: metrics, params, fit.json and figures."""
    from fits.plots import report_figures

    refs = literature_references(result.budgets_flops, result.report.target_flops)
    tracker = Tracker(result.tracking_uri)
    run_id = tracker.create_run(result.experiment_id, names.FIT_RUN, {
        ROLE: FIT_ROLE, SWEEP_PARENTS_TAG: ",".join(result.sweep_parents),
        names.NOTE: _note(result), **_planning_tags(result.planning)})
    try:
        tracker.log_params(run_id, {
            "approaches": ",".join(sorted(result.report.results)),
            "bootstrap": result.report.bootstrap, "seed": result.report.seed,
            "level": result.report.level, "runs": result.n_runs,
            "budgets": len(result.budgets_flops), "target_flops": result.report.target_flops})
        tracker.log_metrics(run_id, fit_metrics(result))
        unit = (result.units or {}).get("loss_unit")
        for name, fig in report_figures(result.report, refs, unit).items():
            tracker.log_figure(run_id, fig, f"{names.FIT_PLOTS}/{name}.png")
        done = replace(result, fit_run_id=run_id)
        tracker.log_dict(run_id, done.to_dict(), FIT_JSON)
    except BaseException as exc:
        tracker.fail_run(run_id, " ".join(f"{type(exc).__name__}: {exc}".split())[:4000])
        raise
    tracker.end_run(run_id)
    return done


def _note(result: ExperimentFit) -> str:
    return (f"Scaling-law fit of {result.n_runs} finished sweep runs over "
            f"{len(result.budgets_flops)} budgets (sweep run(s) {', '.join(result.sweep_parents)}).")


def fit_metrics(result: ExperimentFit) -> dict[str, float]:
    """Fitted parameters, exponents, interval ends and hold-out errors as flat MLflow metrics."""
    out: dict[str, float] = {}
    for key, fit in result.report.results.items():
        d = fit.to_dict()
        for name in ("E", "A", "B", "alpha", "beta", "a", "b", "G", "objective"):
            if isinstance(d.get(name), (int, float)) and math.isfinite(d[name]):
                out[f"{key}.{name}"] = float(d[name])
        for name, ci in (d.get("ci") or {}).items():
            for end in ("low", "high"):
                if isinstance(ci.get(end), (int, float)) and math.isfinite(ci[end]):
                    out[f"{key}.{name}.ci_{end}"] = float(ci[end])
    if result.holdout:
        for key, pred in result.holdout.predictions.items():
            for name, value in pred.items():
                if math.isfinite(value):
                    out[f"holdout.{key}.{name}"] = value
    return out


def fit_figures(fit_run_id: str, tracking_uri: str | None = None) -> dict[str, bytes]:
    """PNG bytes of a logged fit run's figures (file stem -> bytes)."""
    import tempfile
    from pathlib import Path

    client, _ = open_reader(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(client.download_artifacts(fit_run_id, names.FIT_PLOTS, tmp))
        return {p.stem: p.read_bytes() for p in sorted(local.glob("*.png"))}


def latest_fit(experiment: str, tracking_uri: str | None = None) -> tuple[dict[str, Any], str | None]:
    """The newest fit JSON logged to the experiment and its run id; if none was logged, fit now
    (not logged; run id None)."""
    import json
    import tempfile
    from pathlib import Path

    from mlflow.exceptions import MlflowException

    client, uri = open_reader(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        from experiments.tracking.unknown_experiment import unknown_experiment

        raise unknown_experiment(client, experiment, redact("", uri))
    runs = find_runs(client, exp.experiment_id,
                     f"tags.`{ROLE}` = '{FIT_ROLE}' and attributes.status = 'FINISHED'")
    if runs:
        run_id = runs[0].info.run_id
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = client.download_artifacts(run_id, FIT_JSON, tmp)
            except MlflowException as exc:
                raise SweepError(f"fit run {run_id} of experiment {experiment!r} has no readable "
                                 f"{FIT_JSON}: {str(exc).splitlines()[0]}") from None
            return json.loads(Path(local).read_text(encoding="utf-8")), run_id
    fresh = fit_experiment(experiment, uri, approaches=("2", "3"), log=False)
    return fresh.to_dict(), None
