"""Kaplan et al. 2020 eq. 1.5, L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D."""

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from fits import FitError, fit_kaplan, kaplan_loss
from fits.kaplan import _objective_and_gradient, kaplan_frontier

TABLE2 = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}  # Kaplan et al. 2020 §4.2 Table 2


def test_formula_matches_kaplans_constants():
    """scaling_laws.md §3 (derived from Kaplan et al. eq. 1.5): 2.331 with Table 2, 2.389 with Table 5."""
    assert kaplan_loss(1e9, 1e11, **TABLE2) == pytest.approx(2.331, abs=5e-4)
    assert kaplan_loss(1e9, 1e11, 8.8e13, 5.4e13, 0.076, 0.095) == pytest.approx(2.389, abs=5e-4)


def test_closed_form_frontier_is_the_minimum_along_the_budget():
    opt = kaplan_frontier(1e21, **TABLE2)
    grid = np.geomspace(1e8, 1e12, 400001)
    brute = grid[np.argmin(kaplan_loss(grid, 1e21 / (6 * grid), **TABLE2))]
    assert opt.params == pytest.approx(brute, rel=1e-4)
    assert 6 * opt.params * opt.tokens == pytest.approx(1e21)


def test_gradient_is_exact():
    rng = np.random.default_rng(0)
    logs = np.log(rng.uniform(1e7, 1e9, 30)), np.log(rng.uniform(1e8, 1e10, 30)), np.log(rng.uniform(2.5, 4, 30))
    theta = np.array([0.7 * np.log(1e13), np.log(1e13), 0.7, 0.1])
    numeric = approx_fprime(theta, lambda t: _objective_and_gradient(t, *logs)[0], 1e-8)
    np.testing.assert_allclose(_objective_and_gradient(theta, *logs)[1], numeric, rtol=1e-4, atol=1e-9)


def test_recovers_table2_parameters_from_noisy_synthetic_runs():
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e7, 1e9, 7), 6)
    d = np.tile(np.geomspace(1e8, 3e10, 6), 7)
    l = kaplan_loss(n, d, **TABLE2) * np.exp(rng.normal(0, 0.003, n.size))
    fit = fit_kaplan(n, d, l, bootstrap=60, seed=0, target_flops=1e21)
    assert fit.success
    for name, true in TABLE2.items():
        assert true in fit.ci[name], (name, true, fit.ci[name])
    assert fit.alpha_N == pytest.approx(0.076, rel=0.05) and fit.alpha_D == pytest.approx(0.103, rel=0.05)
    assert fit.a == pytest.approx(0.103 / 0.179, rel=0.03) and fit.a + fit.b == pytest.approx(1)
    assert fit.target.params in fit.ci["params_opt"]


def test_too_few_runs_raise():
    with pytest.raises(FitError, match="at least 5 runs"):
        fit_kaplan([1e8, 2e8], [1e9, 1e9], [3.0, 2.9])


def test_a_degenerate_fit_says_so():
    """Loss that rises with N and D: the exponents run to their bound and success is False."""
    n = np.repeat(np.geomspace(1e7, 1e9, 4), 4)
    d = np.tile(np.geomspace(1e9, 1e11, 4), 4)
    fit = fit_kaplan(n, d, 1.5 + 1e-3 * n**0.3 + 1e-3 * d**0.2)
    assert not fit.success and "lower bound" in fit.message and fit.target is None


def test_frontier_of_a_far_out_resample_is_a_number_not_an_overflow_error():
    """A bootstrap resample of a team store's sweep (two budgets, four points) fitted
    N_c ~ 1e300 with r = 5; N_c**r as a Python float raised OverflowError out of `budget fit`.
    In logs it is finite here, and inf (a dropped sample) when N_c itself is inf."""
    import math

    from fits.kaplan import kaplan_frontier

    far = kaplan_frontier(1e20, N_c=1e300, D_c=1e10, alpha_N=0.5, alpha_D=0.1)
    assert math.isfinite(far.params) and far.params > 1e250
    assert far.params * far.tokens * 6 == pytest.approx(1e20)
    assert math.isinf(kaplan_frontier(1e20, N_c=math.inf, D_c=1e10, alpha_N=0.5, alpha_D=0.1).params)
    # Kaplan Table 2 values give the closed form unchanged: N_opt = (r N_c^r C / (6 D_c))^(1/(1+r))
    r = 0.076 / 0.103
    closed = (r * 6.4e13**r * 1e21 / (6 * 1.8e13)) ** (1 / (1 + r))
    assert kaplan_frontier(1e21, 6.4e13, 1.8e13, 0.076, 0.103).params == pytest.approx(closed, rel=1e-12)
