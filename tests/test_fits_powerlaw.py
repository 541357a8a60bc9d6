"""Power laws in one variable, y = E + A x^-alpha and y = A x^-alpha: recovery and a published law."""

import numpy as np
import pytest

from fits import FitError, fit_power_law, power_law

# Kaplan et al. 2020 eq. 1.1 / Table 5: L(N) = (N_c/N)^alpha_N, N_c = 8.8e13, alpha_N = 0.076,
# i.e. A = N_c^alpha_N in y = A x^-alpha.
KAPLAN_NC, KAPLAN_ALPHA_N = 8.8e13, 0.076


def test_pure_law_recovers_kaplans_eq_1_1_exactly():
    n = np.geomspace(1e6, 1e10, 9)
    fit = fit_power_law(n, (KAPLAN_NC / n) ** KAPLAN_ALPHA_N, saturating=False, x_name="params")
    assert fit.alpha == pytest.approx(KAPLAN_ALPHA_N, rel=1e-10)
    assert fit.A == pytest.approx(KAPLAN_NC ** KAPLAN_ALPHA_N, rel=1e-9) and fit.E == 0.0
    assert fit.residuals.rmse < 1e-12 and fit.to_dict()["model"] == "y = A params^-alpha"


def test_saturating_law_recovers_known_parameters_within_intervals():
    rng = np.random.default_rng(3)
    x = np.geomspace(1e18, 1e22, 24)
    y = power_law(x, 1.7, 2000.0, 0.17) * np.exp(rng.normal(0, 0.003, x.size))
    fit = fit_power_law(x, y, x_name="flops", bootstrap=150, seed=2)
    assert fit.success and fit.bootstrap.succeeded == 150
    assert 1.7 in fit.ci["E"] and 0.17 in fit.ci["alpha"] and 2000.0 in fit.ci["A"]
    assert fit.E == pytest.approx(1.7, rel=0.03)
    assert fit.predict(1e20) == pytest.approx(power_law(1e20, 1.7, 2000.0, 0.17), rel=0.01)


def test_power_law_needs_enough_distinct_points():
    with pytest.raises(FitError, match="at least 4 points"):
        fit_power_law([1, 2, 3], [3, 2, 1])
    with pytest.raises(FitError, match="distinct x values"):
        fit_power_law([1, 1, 2, 2], [3, 2.9, 2.5, 2.4])
    with pytest.raises(FitError, match="non-positive"):
        fit_power_law([1, 2, 3, 4], [3, 2, 0, 1])
