"""The calibrated law as a planner allocation (pure parts: no MLflow here)."""

import json
import random

import numpy as np
import pytest

from budget.errors import BudgetError
from budget.planner import BudgetInput, PlanRequest, make_plan
from budget.scaling import laws
from budget.scaling.calibrated import (
    FIT_KIND,
    FIT_SCHEMA_VERSION,
    calibration_from_fit,
    load_calibration_file,
    percentile_interval,
)

EPOCH = dict(E=laws.EPOCH.E, A=laws.EPOCH.A, B=laws.EPOCH.B, alpha=laws.EPOCH.alpha,
             beta=laws.EPOCH.beta)


def fit_json(budgets=(1e18, 1e19, 1e20), draws=200, success=True):
    rng = random.Random(0)
    jitter = [[EPOCH["E"] * (1 + rng.gauss(0, 0.01)), EPOCH["A"] * (1 + rng.gauss(0, 0.05)),
               EPOCH["B"] * (1 + rng.gauss(0, 0.05)), EPOCH["alpha"] + rng.gauss(0, 0.01),
               EPOCH["beta"] + rng.gauss(0, 0.01)] for _ in range(draws)]
    return {"kind": FIT_KIND, "schema_version": FIT_SCHEMA_VERSION,
            "input": {"points": 42, "level": 0.9},
            "approach3": {**EPOCH, "success": success, "message": "ok", "bootstrap_draws": jitter,
                          "bootstrap": {"level": 0.9}},
            "approach2": {"a": 0.5, "b": 0.5},
            "sweep": {"budgets_flops": list(budgets)}}


def test_calibrated_allocation_is_the_fitted_frontier_with_intervals():
    """A fit equal to Epoch's parameters reproduces Epoch's allocation; 6ND = C; the bootstrap
    interval brackets the estimate."""
    cal = calibration_from_fit(fit_json(), "test fit")
    a = cal.allocation(1e21)
    epoch = laws.compute_optimal("epoch", 1e21)
    assert a.law == "calibrated"
    assert a.params == pytest.approx(epoch.params) and a.tokens == pytest.approx(epoch.tokens)
    assert 6 * a.params * a.tokens == pytest.approx(1e21)
    for value, ci in ((a.params, a.params_ci), (a.tokens, a.tokens_ci), (a.loss, a.loss_ci)):
        assert ci[0] < value < ci[1]
    assert a.interval_level == 0.9


def test_percentile_interval_matches_numpy():
    values = np.random.default_rng(1).lognormal(size=501)
    low, high = percentile_interval(values.tolist(), 0.95)
    assert (low, high) == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])))


def test_extrapolation_warnings_and_recommendation():
    cal = calibration_from_fit(fit_json(budgets=(1e18, 1e19, 1e20)), "test fit")
    assert cal.extrapolation_decades(1e21) == pytest.approx(1.0)
    assert cal.warning(1e21) == ""
    assert "orders of magnitude beyond" in cal.warning(1e22)
    assert cal.warning(1e24).startswith("VERY LONG")
    near = make_plan(PlanRequest(budget=BudgetInput(flops=1e21)), calibration=cal)
    assert near.recommended == "calibrated"
    assert near.to_dict()["calibration"]["extrapolation_decades"] == pytest.approx(1.0)
    far = make_plan(PlanRequest(budget=BudgetInput(flops=1e24)), calibration=cal)
    assert far.recommended == "epoch"
    assert any("not recommended" in n for n in far.notes)
    assert any(a.law == "calibrated" for a in far.allocations)


def test_comparison_with_the_literature():
    cal = calibration_from_fit(fit_json(), "test fit")
    rows = {r["law"]: r for r in cal.comparison(1e21)}
    assert rows["kaplan"]["a"] == 0.73 and rows["chinchilla"]["a"] == pytest.approx(0.4516, abs=1e-4)
    assert rows["epoch"]["params_ratio"] == pytest.approx(1.0)
    assert rows["calibrated (approach 2)"]["a"] == 0.5


@pytest.mark.parametrize("mutate,message", [
    # without Approach 3 the plan falls back on Approach 2 (tests/test_calibrate_fallback.py)
    (lambda f: (f.pop("approach3"), f.pop("approach2")), "has no Approach 3"),
    (lambda f: (f["approach3"].update(success=False), f.pop("approach2")), "did not converge"),
    (lambda f: f.pop("sweep"), "which budgets were swept"),
    (lambda f: (f.pop("kind"), f.pop("schema_version")), "no kind/schema_version"),
    (lambda f: f.update(schema_version=2), "schema_version 2; this version reads kind"),
    (lambda f: f.update(kind="mlflow.run"), "kind 'mlflow.run'"),
])
def test_unusable_fits(mutate, message):
    fit = fit_json()
    mutate(fit)
    with pytest.raises(BudgetError, match=message):
        calibration_from_fit(fit, "test fit")


def test_fit_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fit_json()))
    assert load_calibration_file(path).allocation(1e21).params > 0
    with pytest.raises(BudgetError, match="no such fit JSON file"):
        load_calibration_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BudgetError, match="not a readable fit JSON"):
        load_calibration_file(tmp_path / "bad.json")


def test_a_hold_out_without_a_loss_law_is_null_not_nan():
    """Approach 2 predicts no loss, so its hold-out 'best loss' is not a number: the fit file
    says null (strict JSON), an older file's NaN is read as None, and a plan and its proposal
    text with that hold-out serialise (a NaN made `budget report --calibrate` crash)."""
    import math

    from budget.report.calibration import calibration_section
    from experiments.review.fitting import Holdout

    holdout = Holdout(1.5e12, 1.66, 41399.0, {"approach2": {
        "best_loss": math.nan, "params_opt": 43460.0, "best_loss_rel_error": math.nan,
        "params_opt_rel_error": 0.05}}, {}, True, (15000.0, 100000.0))
    written = json.loads(json.dumps(holdout.to_dict(), allow_nan=False))
    assert written["predictions"]["approach2"]["best_loss"] is None
    old = {**fit_json(), "holdout": {**written, "predictions": {"approach2": {
        "best_loss": math.nan, "params_opt": 43460.0, "best_loss_rel_error": math.nan,
        "params_opt_rel_error": 0.05}}}}
    cal = calibration_from_fit(old, "old fit")
    assert cal.holdout["predictions"]["approach2"]["best_loss"] is None
    plan = make_plan(PlanRequest(BudgetInput(flops=1e21)), calibration=cal)
    json.dumps(plan.to_dict(), allow_nan=False)
    text = " ".join(calibration_section(cal, 1e21).paragraphs)
    assert "approach2: best loss not predicted, optimal N +5.0%" in text


def test_sweep_units_travel_with_the_calibration():
    """Issue 15.3: a fit of a byte-level sweep says nats per byte; the calibrated allocation
    carries that unit, a literature allocation says nats per token, and the shape sized by the
    calibrated law takes the sweep's vocabulary and context unless they were given."""
    fit = {**fit_json(), "sweep": {"budgets_flops": [1e18, 1e19, 1e20], "loss_unit": "nats per byte",
                                   "vocab_size": 256, "n_ctx": 64, "dataset": "plays"}}
    cal = calibration_from_fit(fit, "byte sweep")
    assert cal.loss_unit == "nats per byte" and cal.units.describe() == \
        "nats per byte (plays, vocabulary 256, context 64)"
    plan = make_plan(PlanRequest(BudgetInput(flops=1e20)), calibration=cal)
    assert plan.recommended == "calibrated"
    units = {a.law: a.loss_unit for a in plan.allocations}
    assert units["calibrated"] == "nats per byte" and units["epoch"] == laws.LITERATURE_LOSS_UNIT
    assert (plan.shape.vocab_size, plan.shape.n_ctx) == (256, 64)
    assert any("the sweep's own vocabulary 256 and context 64" in n for n in plan.notes)
    mine = make_plan(PlanRequest(BudgetInput(flops=1e20), seq_len=4096, seq_len_given=True,
                                 vocab_size=32000), calibration=cal)
    assert (mine.shape.vocab_size, mine.shape.n_ctx) == (32000, 4096)
    plain = calibration_from_fit(fit_json(), "csv fit")  # a CSV fit says nothing of units
    assert plain.units is None and plain.loss_unit == laws.LITERATURE_LOSS_UNIT


def test_log_axis_ticks_are_plain_text():
    """The proposal's figures draw text without mathtext, so log ticks are 10¹² in plain text."""
    from budget.report.figures import power_of_ten

    assert [power_of_ten(x) for x in (1e12, 1e-3, 1.0, 3e12, 0.0)] == ["10¹²", "10⁻³", "10⁰", "", ""]
