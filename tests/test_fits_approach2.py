"""Approach 2 (IsoFLOP profiles): Chinchilla's digitised runs and synthetic IsoFLOP sweeps."""

from pathlib import Path

import numpy as np
import pytest

from fits import FitError, chinchilla_loss, cluster_budgets, fit_approach2, load_csv

DATA = Path(__file__).parent / "data" / "chinchilla_svg_extracted_data.csv"
CHINCHILLA = {"E": np.exp(0.5267228), "A": np.exp(6.0073404), "B": np.exp(6.0179186),
              "alpha": 0.33917084, "beta": 0.2849083}  # Hoffmann eq. 10, unrounded (Epoch notebook cell 16)


def test_cluster_budgets_merges_near_equal_flops_only():
    flops = np.array([1e19, 1.02e19, 0.98e19, 3e19, 3.05e19, 1e20, 1e20])
    labels = cluster_budgets(flops)
    assert labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert cluster_budgets(flops, tol_decades=0.001).tolist() == [1, 2, 0, 3, 4, 5, 5]  # 6 distinct values


def test_chinchilla_isoflop_exponent_lies_in_hoffmanns_table2_interval():
    """Hoffmann et al. 2022 Table 2, Approach 2: a = 0.49 (0.462, 0.534), b = 0.51 (0.483, 0.529)."""
    t = load_csv(DATA, drop_highest_loss=5)
    fit = fit_approach2(t.params, t.tokens, t.flops, t.loss, bootstrap=150, seed=0, target_flops=5.76e23)
    assert 0.462 < fit.a < 0.534 and 0.483 < fit.b < 0.529
    assert fit.ci["a"].low < 0.49 < fit.ci["a"].high
    assert sum(c.valid for c in fit.curves) >= 9  # at least Hoffmann's nine budgets have a minimum
    # D_opt = C / (6 N_opt) when tokens are derived from C: the two laws are consistent.
    assert fit.a + fit.b == pytest.approx(1.0, abs=0.02)
    assert fit.target.params in fit.ci["params_opt"] and fit.loss_law is not None


def synthetic_sweep(budgets, sizes_per_budget=9, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        n_star = 1.3 * (c / 6) ** 0.4565  # around the eq. 4 optimum
        for n in n_star * np.geomspace(1 / 6, 6, sizes_per_budget):
            d = c / (6 * n)
            rows.append((n, d, c, chinchilla_loss(n, d, **CHINCHILLA) * np.exp(rng.normal(0, noise))))
    return np.array(rows).T


def test_recovers_the_frontier_of_a_known_law():
    """The minima of L(N, C/6N) follow N_opt = G (C/6)^a with a = beta/(alpha+beta) = 0.4565 (eq. 4)."""
    n, d, c, l = synthetic_sweep(np.geomspace(1e18, 1e22, 7), noise=0.002, seed=1)
    fit = fit_approach2(n, d, c, l, bootstrap=100, seed=3)
    assert fit.success and fit.a in fit.ci["a"]
    assert 0.4565 in fit.ci["a"] and fit.a == pytest.approx(0.4565, abs=0.02)
    assert fit.optimal_allocation(1e21).params == pytest.approx(1.300 * (1e21 / 6) ** 0.4565, rel=0.1)


def test_budgets_without_an_interior_minimum_are_reported_and_left_out():
    n, d, c, l = synthetic_sweep([1e19, 1e20, 1e21])
    edge = c == 1e21
    n2, d2, l2 = n.copy(), d.copy(), l.copy()
    l2[edge] = np.linspace(3.0, 2.0, edge.sum())  # monotone: minimum at the largest size
    fit = fit_approach2(n2, d2, c, l2)
    reasons = [cv.reason for cv in fit.curves]
    assert reasons.count("interior minimum") == 2 and len(fit.minima[0]) == 2
    assert "2 of 3 budgets" in fit.message


def test_one_budget_is_not_enough():
    n, d, c, l = synthetic_sweep([1e19])
    with pytest.raises(FitError, match="at least 2 compute budgets"):
        fit_approach2(n, d, c, l)


def test_nominal_budgets_recover_hoffmanns_nine_isoflop_profiles():
    """Snapping the digitised runs to Hoffmann's nine budgets (6e18 to 3e21, §3.2) gives nine profiles."""
    t = load_csv(DATA, drop_highest_loss=5)
    nine = [6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21]
    fit = fit_approach2(t.params, t.tokens, t.flops, t.loss, budgets=nine)
    assert [c.flops for c in fit.curves] == pytest.approx(nine) and all(c.valid for c in fit.curves)
    assert sum(len(c.loss) for c in fit.curves) == 240
    assert 0.462 < fit.a < 0.534  # Hoffmann et al. 2022 Table 2, Approach 2 (10th-90th percentile)
    with pytest.raises(FitError, match="budgets has 1"):
        fit_approach2(t.params, t.tokens, t.flops, t.loss, budgets=[1e19, -1])


def test_batched_bootstrap_parabolas_equal_the_one_at_a_time_fit():
    """The bootstrap solves all resamples at once; each row must equal `_curve` on the same weights."""
    from fits.approach2 import _batch_minimum, _curve
    from fits.common import resample_weights

    t = load_csv(DATA, drop_highest_loss=5)
    m = cluster_budgets(t.flops) == 9  # one budget with 24 runs
    n, d, c, l = t.params[m], t.tokens[m], t.flops[m], t.loss[m]
    w = resample_weights(int(m.sum()), 40, seed=4)
    w[0] = 0.0
    w[0, :2] = 1.0  # two runs only: not enough sizes
    log_c, log_n, log_d, valid = _batch_minimum(n, d, c, l, w)
    for i in range(len(w)):
        one = _curve(n, d, c, l, w[i])
        assert valid[i] == one.valid
        if one.valid:
            assert np.exp(log_n[i]) == pytest.approx(one.params_opt, rel=1e-9)
            assert np.exp(log_d[i]) == pytest.approx(one.tokens_opt, rel=1e-9)
            assert np.exp(log_c[i]) == pytest.approx(one.flops, rel=1e-12)
    assert valid.sum() >= 30 and not valid[0]
