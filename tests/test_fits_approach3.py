"""Approach 3 (L = E + A/N^alpha + B/D^beta): Epoch's refit of Chinchilla as the known answer.

Known answer: Besiroglu, Erdil, Barnett, You (2024), "Chinchilla Scaling: A replication attempt"
(arXiv:2404.10102), repository epoch-research/analyzing-chinchilla, data_analysis.ipynb: the grid
fit (cell 18) on the 240 digitised points of Hoffmann et al. 2022 Figure 4 gives A = 477.84,
B = 2143.86, E = 1.81724, alpha = 0.34731, beta = 0.36718, objective 0.0010182740; the bootstrap
(cells 21-25, 4,000 resamples) gives SEs A 124.522, B 1293.284, E 0.02566, alpha 0.01540,
beta 0.02060.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime
from scipy.special import huber as scipy_huber

from fits import FitError, chinchilla_loss, fit_approach3
from fits.approach3 import frontier, hoffmann_grid, objective, objective_and_gradient

DATA = Path(__file__).parent / "data" / "chinchilla_svg_extracted_data.csv"
EPOCH_GRID = {"A": 477.84, "B": 2143.86, "E": 1.81724, "alpha": 0.34731, "beta": 0.36718}
EPOCH_OBJECTIVE = 0.0010182740
EPOCH_SE = {"A": 124.522, "B": 1293.284, "E": 0.02566, "alpha": 0.01540, "beta": 0.02060}
# Hoffmann et al. 2022 eq. 10 with the unrounded values of Epoch's notebook cell 16.
CHINCHILLA = {"E": np.exp(0.5267228), "A": np.exp(6.0073404), "B": np.exp(6.0179186),
              "alpha": 0.33917084, "beta": 0.2849083}


def chinchilla_points():
    df = pd.read_csv(DATA)
    keep = df["loss"] < np.sort(df["loss"])[-5]  # Epoch drops the 5 highest losses
    n, c, l = df["Model Size"][keep].to_numpy(), df["Training FLOP"][keep].to_numpy(), df["loss"][keep].to_numpy()
    return n, c / (6 * n), l


@pytest.fixture(scope="module")
def epoch_fit():
    n, d, l = chinchilla_points()
    return fit_approach3(n, d, l, bootstrap=300, seed=42, target_flops=5.76e23)


def test_grid_is_hoffmanns_4500_starts():
    grid = hoffmann_grid()
    assert grid.shape == (4500, 5)
    assert sorted(set(grid[:, 3])) == [0, 0.5, 1, 1.5, 2] and sorted(set(grid[:, 0])) == [0, 5, 10, 15, 20, 25]


def test_objective_is_epochs_summed_scipy_huber_and_gradient_is_exact():
    n, d, l = chinchilla_points()
    logs = np.log(n), np.log(d), np.log(l)
    theta = np.array([6.2, 7.6, 0.6, 0.35, 0.37])
    pred = np.log(chinchilla_loss(n, d, np.exp(0.6), np.exp(6.2), np.exp(7.6), 0.35, 0.37))
    assert objective(theta, *logs) == pytest.approx(np.sum(scipy_huber(1e-3, pred - logs[2])), rel=1e-12)
    value, grad = objective_and_gradient(theta, *logs)
    numeric = approx_fprime(theta, lambda t: objective_and_gradient(t, *logs)[0], 1e-8)
    assert value == pytest.approx(objective(theta, *logs))
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-9)


def test_reproduces_epochs_grid_fit_within_one_percent(epoch_fit):
    for name, value in EPOCH_GRID.items():
        assert getattr(epoch_fit, name) == pytest.approx(value, rel=0.01), name
    assert abs(epoch_fit.objective - EPOCH_OBJECTIVE) <= 5e-11  # equal to the 10 decimals Epoch printed
    assert epoch_fit.success and epoch_fit.n_points == 240


def test_bootstrap_standard_errors_are_the_size_of_epochs(epoch_fit):
    assert epoch_fit.bootstrap.succeeded >= 295
    for name, se in EPOCH_SE.items():
        assert 0.75 < epoch_fit.se[name] / se < 1.33, (name, epoch_fit.se[name], se)
        assert getattr(epoch_fit, name) in epoch_fit.ci[name]


def test_frontier_is_hoffmann_eq4(epoch_fit):
    f = epoch_fit
    assert f.a == pytest.approx(f.beta / (f.alpha + f.beta)) and f.a + f.b == pytest.approx(1.0)
    opt = f.optimal_allocation(5.76e23)
    assert 6 * opt.params * opt.tokens == pytest.approx(5.76e23)
    # Brute-force minimum of L(N, C/6N) along the budget agrees with the closed form.
    grid = np.geomspace(opt.params / 3, opt.params * 3, 200001)
    best = grid[np.argmin(f.predict(grid, 5.76e23 / (6 * grid)))]
    assert best == pytest.approx(opt.params, rel=1e-4)
    # scaling_laws.md §2, derived from Epoch's estimates: N_opt ~ 72B and D/N ~ 18.4 at Gopher compute.
    assert opt.params == pytest.approx(72e9, rel=0.05) and opt.tokens_per_param == pytest.approx(18.4, rel=0.05)
    assert f.target.params == pytest.approx(opt.params) and opt.params in f.ci["params_opt"]


def test_chinchilla_unrounded_frontier_matches_the_paper():
    """Hoffmann et al. 2022 eq. 4 with the unrounded eq. 10 values: a = 0.4565, G = 1.300 (reference §1a)."""
    opt = frontier(6.0, **CHINCHILLA)  # C/6 = 1 so N_opt = G
    assert opt.params == pytest.approx(1.300, abs=5e-4)
    a = CHINCHILLA["beta"] / (CHINCHILLA["alpha"] + CHINCHILLA["beta"])
    assert a == pytest.approx(0.4565, abs=5e-5)


def test_recovers_known_parameters_from_noisy_synthetic_runs():
    rng = np.random.default_rng(7)
    n = np.repeat(np.geomspace(5e7, 5e9, 8), 6)
    d = np.tile(np.geomspace(1e9, 3e11, 6), 8)
    l = chinchilla_loss(n, d, **CHINCHILLA) * np.exp(rng.normal(0, 0.01, n.size))
    fit = fit_approach3(n, d, l, bootstrap=120, seed=1)
    assert fit.success
    for name, true in CHINCHILLA.items():
        assert true in fit.ci[name], (name, true, fit.ci[name])
    assert fit.E == pytest.approx(CHINCHILLA["E"], rel=0.05)
    assert fit.a == pytest.approx(0.4565, abs=0.05)


def test_too_few_runs_or_sizes_raise_fit_error():
    with pytest.raises(FitError, match="at least 6 runs"):
        fit_approach3([1e8, 2e8, 3e8], [1e9, 2e9, 3e9], [3.0, 2.9, 2.8])
    with pytest.raises(FitError, match="distinct model sizes"):
        fit_approach3([1e8] * 8, np.geomspace(1e9, 1e10, 8), np.linspace(3, 2.5, 8))
    with pytest.raises(FitError, match="loss has 1 missing"):
        fit_approach3(np.geomspace(1e8, 1e9, 8), np.geomspace(1e9, 1e10, 8), [3, 2.9, np.nan, 2.7, 2.6, 2.5, 2.4, 2.3])
    with pytest.raises(FitError, match="bootstrap"):
        n, d, l = chinchilla_points()
        fit_approach3(n, d, l, bootstrap=-1)


def test_a_fit_with_a_negative_exponent_says_so():
    """Loss that rises with N and D has no decreasing power law: success is False, with the reason."""
    n = np.repeat(np.geomspace(1e7, 1e9, 4), 4)
    d = np.tile(np.geomspace(1e9, 1e11, 4), 4)
    fit = fit_approach3(n, d, 1.5 + 1e-3 * n**0.3 + 1e-3 * d**0.2)
    assert not fit.success and "non-positive exponent" in fit.message
    assert fit.to_dict()["success"] is False and fit.to_dict()["G"] is None  # strict JSON, no NaN
