"""Weak fits say so: two-budget Approach 2, E at its bound, failed bootstrap refits, hold-out
vertices outside the sampled sizes, and no numpy RuntimeWarnings leaking (real scipy fits)."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from experiments.review.fitting import Holdout, _vertex_inside, quiet_numpy
from fits import fit_table
from fits.diagnostics import weak_fit_warnings


def chinchilla_grid(budgets, sizes_per_budget=5, E=1.69, noise=0.0, seed=0):
    """Runs on IsoFLOP budgets from L = E + A/N^a + B/D^b with Hoffmann et al. 2022 eq. (10)'s
    A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28 (E replaced when given)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        n_opt = 0.6 * (c / 6) ** 0.5
        for n in np.geomspace(n_opt / 8, n_opt * 8, sizes_per_budget):
            d = c / (6 * n)
            loss = E + 406.4 / n ** 0.34 + 410.7 / d ** 0.28 + noise * rng.standard_normal()
            rows.append({"params": n, "tokens": d, "flops": c, "loss": loss})
    return pd.DataFrame(rows)


def test_two_budget_approach2_says_its_line_is_exact():
    report = fit_table(chinchilla_grid([1e18, 1e19]), ("2",))
    found = [w for w in weak_fit_warnings(report) if w.startswith("approach2: the line")]
    assert len(found) == 1 and "2 IsoFLOP minima" in found[0]
    three = fit_table(chinchilla_grid([1e18, 1e19, 1e20]), ("2",))
    assert not [w for w in weak_fit_warnings(three) if "passes exactly" in w]


def test_irreducible_loss_at_its_bound_is_a_warning():
    """Data with no asymptote (E = 0): the fitted E falls to its lower bound."""
    report = fit_table(chinchilla_grid([1e18, 1e19, 1e20], E=0.0), ("3",))
    assert report["approach3"].E < 1e-3 * report.table.loss.min()
    assert any(w.startswith("approach3: E = ") and "lower bound" in w
               for w in weak_fit_warnings(report))
    healthy = fit_table(chinchilla_grid([1e18, 1e19, 1e20]), ("3",))
    assert not [w for w in weak_fit_warnings(healthy) if "lower bound" in w]


def test_failed_bootstrap_refits_are_counted_and_explained():
    """Three sizes per budget: a resample within a budget often keeps fewer than three distinct
    sizes, so it has no parabola and that refit fails."""
    data = chinchilla_grid([1e18, 1e19], sizes_per_budget=3, noise=0.01)
    with quiet_numpy():
        report = fit_table(data, ("2",), bootstrap=100)
    boot = report["approach2"].bootstrap
    assert boot.succeeded < boot.requested
    line = next(w for w in weak_fit_warnings(report) if "bootstrap refits" in w)
    assert line.startswith(f"approach2: {boot.succeeded} of 100 bootstrap refits succeeded; "
                           f"the {100 - boot.succeeded} failed one(s) were resamples in which")
    assert "interior parabola minimum" in line


def test_numpy_runtime_warnings_do_not_leak():
    data = chinchilla_grid([1e18, 1e19], sizes_per_budget=3, noise=0.05, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with quiet_numpy():
            fit_table(data, ("2", "3"), bootstrap=50)


def test_holdout_vertex_outside_the_sizes_says_so():
    sizes = np.array([1e4, 2e4, 4e4, 8e4])
    assert _vertex_inside(sizes, np.array([2.4, 2.3, 2.2, 2.1])) is False  # still falling
    assert _vertex_inside(sizes, np.array([2.4, 2.2, 2.25, 2.5])) is True
    held = Holdout(1e12, 2.1, 8e4, {"approach3": {"best_loss": 2.0, "params_opt": 3e5,
                                                  "best_loss_rel_error": -0.05,
                                                  "params_opt_rel_error": 2.75}},
                   {}, vertex_inside=False, sampled_params=(1e4, 8e4))
    assert held.warnings[0].startswith("hold-out: the fitted vertex lies outside the sampled "
                                       "sizes at 1e+12 FLOPs")
    assert "outside the sizes the held-out budget sampled (10,000-80,000)" in held.warnings[1]
    assert held.to_dict()["warnings"] == held.warnings
    assert math.isnan(Holdout(1, 1, 1, {}, {}).sampled_params[0])


@pytest.mark.parametrize("a, expected", [(1.3, True), (0.5, False)])
def test_approach2_exponent_outside_zero_one(a, expected):
    from dataclasses import replace

    report = fit_table(chinchilla_grid([1e18, 1e19, 1e20]), ("2",))
    fit = replace(report["approach2"], a=a)
    report.results["approach2"] = fit
    assert any("a = 1.3 lies outside 0..1" in w for w in weak_fit_warnings(report)) is expected
