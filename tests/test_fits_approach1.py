"""Approach 1 (lower envelope of training curves) on curves drawn from a known L(N, D)."""

import numpy as np
import pytest

from fits import FitError, chinchilla_loss, fit_approach1

CHINCHILLA = {"E": np.exp(0.5267228), "A": np.exp(6.0073404), "B": np.exp(6.0179186),
              "alpha": 0.33917084, "beta": 0.2849083}  # Hoffmann eq. 10, unrounded (Epoch notebook cell 16)


def curves(sizes, steps=60, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(sizes):
        d = np.geomspace(1e8, 3e11, steps)
        loss = chinchilla_loss(n, d, **CHINCHILLA) * np.exp(rng.normal(0, noise, steps))
        rows += [(f"run{i}", n, dd, ll) for dd, ll in zip(d, loss)]
    run, n, d, l = zip(*rows)
    return np.array(run), np.array(n), np.array(d), np.array(l)


def test_envelope_exponent_matches_the_closed_form_frontier():
    """For L = E + A/N^alpha + B/D^beta the optimal N grows as C^(beta/(alpha+beta)) = C^0.4565 (Hoffmann eq. 4)."""
    run, n, d, l = curves(np.geomspace(1e7, 1e10, 13))
    fit = fit_approach1(run, n, d, l, bootstrap=80, seed=0, target_flops=1e21)
    assert fit.a == pytest.approx(0.4565, abs=0.01) and fit.a + fit.b == pytest.approx(1.0, abs=1e-6)
    assert fit.ci["a"].low < 0.4565 < fit.ci["a"].high
    assert fit.runs == 13 and len(np.unique(fit.envelope.params)) >= 10
    assert fit.target.params == pytest.approx(fit.predict(1e21))
    # Every envelope point is the lowest loss among the runs at that compute.
    c0 = fit.envelope.flops[len(fit.envelope.flops) // 2]
    losses = [np.interp(np.log(c0), np.log(6 * n[run == r] * d[run == r]), l[run == r], left=np.inf, right=np.inf)
              for r in np.unique(run)]
    assert fit.envelope.loss[len(fit.envelope.flops) // 2] == pytest.approx(min(losses))


def test_needs_curves_of_several_sizes():
    run, n, d, l = curves([1e8])
    with pytest.raises(FitError, match="at least 2 model sizes"):
        fit_approach1(run, n, d, l)
    with pytest.raises(FitError, match="several rows per run_id"):
        fit_approach1(["a", "b"], [1e8, 2e8], [1e9, 1e9], [3.0, 2.9])
