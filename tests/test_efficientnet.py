"""Compound scaling (Tan & Le 2019): coefficients, rounding effects, FLOP targets, training cost."""

import math

import pytest

from budget.errors import BudgetError
from budget.models import cnn
from budget.models import efficientnet as E

B0 = cnn.load_network("efficientnet-b0")


def test_paper_coefficients():
    """Tan & Le 2019 §3.3 eq. 3: alpha = 1.2, beta = 1.1, gamma = 1.15, alpha·beta²·gamma² ~ 2
    (1.2 · 1.21 · 1.3225 = 1.9203)."""
    c = E.Coefficients()
    assert (c.alpha, c.beta, c.gamma) == (1.2, 1.1, 1.15)
    assert c.product == pytest.approx(1.9203, abs=1e-4)
    s = c.scaling(2.0)
    assert (s.depth, s.width, s.resolution) == pytest.approx((1.44, 1.21, 1.3225))


def test_phi_one_layout():
    """phi = 1: d = 1.2, w = 1.1, r = 1.15 -> 224 · 1.15 = 257.6 -> 258 pixels; B0's stem 32
    channels -> round(35.2 to a multiple of 8) = 32; stage repeats ceil(1.2 r)."""
    r = E.scale_phi(B0, 1.0)
    assert r.network.input_shape == (3, 258, 258)
    assert r.network.stages[0].output_shape[0] == 32
    assert [s.repeats for s in r.network.stages[1:-1]] == [2, 3, 3, 4, 4, 5, 2]
    assert r.ideal_flops_ratio == pytest.approx(E.Coefficients().product)
    d = r.to_dict()
    for key in ("width", "depth", "resolution", "params", "forward_macs", "forward_flops"):
        assert key in d
    assert d["forward_macs"] == r.network.macs and d["params"] == r.network.params


def test_rounding_effects_shrink_as_the_network_grows():
    """FLOPs grow about (alpha·beta²·gamma²)^phi (Tan & Le §3.3). At phi = 1 rounding (repeats
    1 -> 2 in two stages) adds ~30% over the ideal 1.92x; by phi = 6 the realised growth is
    within 3% of the ideal 50x."""
    one, six = E.scale_phi(B0, 1.0), E.scale_phi(B0, 6.0)
    assert one.network.flops / one.base.flops / one.ideal_flops_ratio > 1.2
    assert six.network.flops / six.base.flops == pytest.approx(six.ideal_flops_ratio, rel=0.03)


def test_flops_are_monotone_in_phi():
    flops = [E.scale_phi(B0, phi / 4).network.flops for phi in range(-8, 17)]
    assert flops == sorted(flops)


def test_target_search_meets_the_target():
    """The chosen phi's FLOPs stay within the target and the next step up exceeds it."""
    r = E.scale_to_target(B0, 4e9)
    t = r.target
    assert r.network.flops == t.achieved <= 4e9 < t.next_value
    assert t.next_phi - r.phi < 1e-3
    assert t.phi_ideal == pytest.approx(math.log(4e9 / r.base.flops) / math.log(1.9203), rel=1e-3)
    macs = E.scale_to_target(B0, 1.8e9, metric="forward_macs")
    assert macs.network.macs <= 1.8e9 < macs.target.next_value


def test_target_out_of_reach():
    with pytest.raises(BudgetError, match="below the smallest network"):
        E.scale_to_target(B0, 1e3)
    with pytest.raises(BudgetError, match="above the network at phi=16"):
        E.scale_to_target(B0, 1e20)


def test_variants_reproduce_the_builder_rows():
    """tensorflow/tpu efficientnet_builder.efficientnet_params: B0 is (1.0, 1.0, 224); our B0
    variant equals the base network."""
    w, d, px = E.VARIANTS["b0"]
    r = E.scale(B0, cnn.Scaling(width=w, depth=d, image_size=px))
    assert (r.network.params, r.network.macs) == (r.base.params, r.base.macs)
    b7 = E.scale(B0, cnn.Scaling(*E.VARIANTS["b7"][:2], image_size=E.VARIANTS["b7"][2]))
    assert b7.network.input_shape == (3, 600, 600)
    assert b7.network.params > 12 * r.base.params


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=0.9), "alpha=0.9 must be"), (dict(gamma=float("nan")), "gamma=nan"),
    (dict(alpha=1.0, beta=1.0, gamma=1.0), "all 1")])
def test_bad_coefficients(kwargs, message):
    with pytest.raises(BudgetError, match=message):
        E.Coefficients(**kwargs)


def test_bad_phi_and_batch():
    with pytest.raises(BudgetError, match=r"phi=40 must be a finite number in \[-8, 16\]"):
        E.scale_phi(B0, 40)
    with pytest.raises(BudgetError, match="batch 0"):
        E.scale_phi(B0, 1.0, batch=0)


def test_training_compute_and_cost():
    """Training = 3 x forward x samples x epochs (DESIGN.md); GPU-hours = C / (peak x MFU) / 3600
    with the catalog's dense bf16 peak (budget.training.time)."""
    from budget.hardware.catalog import load_catalog

    r = E.with_training(E.scale_phi(B0, 0.0), 1.28e6, 350, gpu="h100", mfu=0.3)
    t = r.training
    assert t.training_flops == 3 * r.network.flops * 1.28e6 * 350
    peak = load_catalog().get("h100").peak_flops("bf16")
    assert t.cost.gpu_hours == pytest.approx(t.training_flops / (peak * 0.3) / 3600)
    recompute = E.with_training(r, 1.28e6, 350, recompute=True)
    assert recompute.training.training_flops == pytest.approx(4 / 3 * t.training_flops)
    d = r.to_dict()["training"]
    assert d["multiplier"] == 3 and d["gpu_hours"] == t.cost.gpu_hours
    with pytest.raises(BudgetError, match="epochs 0"):
        E.with_training(r, 1e6, 0)


def test_activation_memory_scales_with_batch():
    one = E.scale_phi(B0, 0.0).to_dict()
    many = E.scale_phi(B0, 0.0, batch=32, bytes_per_element=4).to_dict()
    assert many["activation_bytes"] == 64 * one["activation_bytes"]
    assert one["activation_bytes"] == 2 * sum(
        layer.activation_elements for _, layer in E.scale_phi(B0, 0.0).network.rows())


def _synthetic_variants(seed, n=12, truth=(1.2, 1.1, 1.15), noise=1e-4):
    """Accuracy from a concave surrogate whose constrained optimum is `truth` (depth, width, res).

    With value = 0.7 + sum b_i u_i - c_i u_i^2, u = log(d, w, r), the Lagrange condition
    b_i - 2 c_i u_i = lambda k_i (k = 1, 2, 2 from alpha beta^2 gamma^2) puts the optimum of
    the constraint alpha beta^2 gamma^2 = prod(truth ** k) at u = log(truth) for any lambda.
    """
    import numpy as np

    k, c, lam = np.array([1, 2, 2]), np.array([1.0, 1.5, 0.8]), 0.1
    b = 2 * c * np.log(truth) + lam * k
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        d, w, r = rng.uniform(1.0, 2.0, 3)
        u = np.log([d, w, r])
        out.append(E.Observation(w, d, r, 0.7 + b @ u - c @ u ** 2 + rng.normal(0, noise)))
    return out, truth[0] * truth[1] ** 2 * truth[2] ** 2


def test_fit_recovers_the_coefficients_that_generated_the_data():
    """Seeded synthetic variants (noise 1e-4) generated with the paper's optimum alpha 1.2,
    beta 1.1, gamma 1.15: the grid search on the fitted surrogate finds it to the grid step."""
    obs, product = _synthetic_variants(seed=0)
    fit = E.fit_coefficients(obs, target_product=product)
    c = fit.coefficients
    assert (c.alpha, c.beta, c.gamma) == pytest.approx((1.2, 1.1, 1.15), abs=0.005)
    assert fit.r_squared > 0.999 and not fit.at_boundary
    losses = [E.Observation(o.width, o.depth, o.resolution, 3.0 - o.value) for o in obs]
    assert E.fit_coefficients(losses, metric="loss", target_product=product).coefficients == c


def test_fit_respects_the_paper_constraint_and_flags_boundaries():
    """Tan & Le 2019 eq. 3: alpha beta^2 gamma^2 ~ 2 with alpha, beta, gamma >= 1. Data that
    reward only resolution put alpha and beta at 1 and gamma at sqrt(2)."""
    obs, _ = _synthetic_variants(seed=1)
    fit = E.fit_coefficients(obs)
    assert fit.coefficients.product == pytest.approx(2.0, rel=0.01)
    only_res = [E.Observation(o.width, o.depth, o.resolution, math.log(o.resolution)) for o in obs]
    edge = E.fit_coefficients(only_res)
    assert edge.at_boundary and edge.coefficients.gamma == pytest.approx(math.sqrt(2), abs=0.01)
    with pytest.raises(BudgetError, match="at least 7 measured variants"):
        E.fit_coefficients(obs[:6])
    with pytest.raises(BudgetError, match="metric 'top1'"):
        E.fit_coefficients(obs, metric="top1")
