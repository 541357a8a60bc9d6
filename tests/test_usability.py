"""The planning verdict of a fit (experiments.review.usability): interior minima and the N_opt
interval, on constructed sweeps whose answer is known by construction."""

import pandas as pd

from experiments.review.usability import MAX_NOPT_SPAN, planning_verdict, refusal


def sweep(best_index):
    """Two budgets of four sizes; at each, the size at `best_index` has the lowest loss."""
    rows = []
    for c in (1e10, 1e11):
        for k, n in enumerate((1e4, 2e4, 4e4, 8e4)):
            rows.append({"flops": c, "params": n, "loss": 3.0 + abs(k - best_index) * 0.1})
    return pd.DataFrame(rows)


def fit_with_span(span):
    return {"approach3": {"ci": {"params_opt": {"low": 1e4, "high": 1e4 * span}}}}


def test_interior_minima_at_two_budgets_and_a_narrow_interval_are_usable():
    verdict = planning_verdict(sweep(1), fit_with_span(3.0))
    assert verdict["usable"] and verdict["interior_budgets"] == 2 and verdict["reasons"] == []


def test_the_smallest_size_winning_everywhere_is_not_usable():
    verdict = planning_verdict(sweep(0), fit_with_span(3.0))
    assert not verdict["usable"] and verdict["interior_budgets"] == 0
    assert verdict["reasons"] == ["0 of 2 budget(s) have their lowest loss inside the sampled "
                                  "sizes (at least 2 needed: N_opt is extrapolated)"]
    assert refusal({"planning": verdict}) == verdict["reasons"][0]


def test_a_wide_interval_is_not_usable_even_without_a_recorded_verdict():
    assert not planning_verdict(sweep(2), fit_with_span(MAX_NOPT_SPAN * 1.5))["usable"]
    assert refusal(fit_with_span(15.0)) == "the N_opt interval spans 15x (at most 10x)"
    assert refusal(fit_with_span(9.9)) is None and refusal({}) is None
