"""GPU-hours, wall clock and dollars, and budgets given as time or money."""

import pytest

from budget.errors import BudgetError
from budget.hardware.catalog import load_catalog
from budget.training import time as costing


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(use_env=False)


def test_nanogpt_worked_example(catalog):
    """nanoGPT transformer_sizing.ipynb: GPT-2 124M (124,337,664 params without biases) on 300B
    tokens, C = 6ND, at 30% MFU on 8 x A100 (312 TFLOP/s BF16) takes 3.46 days."""
    c = 6 * 124_337_664 * 300e9
    est = costing.estimate_cost(c, catalog.get("a100"), mfu=0.30, num_gpus=8)
    assert est.wall_clock_days == pytest.approx(3.46, abs=0.01)


def test_gpu_hours_price_and_band(catalog):
    """GPU-hours = C / (peak x MFU) / 3600: 1e21 FLOPs on H100 SXM (989.5 TFLOP/s dense BF16)
    at 40% MFU is 701.8 hours; the band's high MFU gives the low end of the range."""
    h100 = catalog.get("h100")
    est = costing.estimate_cost(1e21, h100, mfu=0.4, num_gpus=8, mfu_band=(0.3, 0.5))
    assert est.gpu_hours == pytest.approx(1e21 / (989.5e12 * 0.4) / 3600)
    assert est.gpu_hours == pytest.approx(701.8, abs=0.1)
    assert est.wall_clock_hours == pytest.approx(est.gpu_hours / 8)
    assert est.cost_usd == pytest.approx(est.gpu_hours * h100.price_usd_per_hour)
    assert est.gpu_hours_range[0] == pytest.approx(est.gpu_hours * 0.4 / 0.5)
    assert est.gpu_hours_range[1] == pytest.approx(est.gpu_hours * 0.4 / 0.3)


def test_price_override_and_missing_price(catalog):
    gb200 = catalog.get("gb200")
    assert costing.estimate_cost(1e21, gb200).cost_usd is None
    assert costing.estimate_cost(1e21, gb200, price_per_hour=10.0).cost_usd > 0
    with pytest.raises(BudgetError, match="give --price-per-hour"):
        costing.compute_from_usd(1000.0, gb200, "bf16", 0.4)


def test_budget_round_trips(catalog):
    h100 = catalog.get("h100")
    c = costing.compute_from_gpu_hours(1000.0, h100, "bf16", 0.4)
    assert costing.estimate_cost(c, h100, mfu=0.4).gpu_hours == pytest.approx(1000.0)
    c_usd = costing.compute_from_usd(3490.0, h100, "bf16", 0.4)  # $3.49/h (RunPod Secure Cloud)
    assert c_usd == pytest.approx(c)


@pytest.mark.parametrize("mfu", [0, -0.1, 1.01, float("nan")])
def test_mfu_outside_unit_interval(catalog, mfu):
    with pytest.raises(BudgetError, match=r"MFU .* must be in \(0, 1\]"):
        costing.estimate_cost(1e21, catalog.get("h100"), mfu=mfu)


def test_non_positive_gpu_count(catalog):
    with pytest.raises(BudgetError, match="number of GPUs 0"):
        costing.estimate_cost(1e21, catalog.get("h100"), num_gpus=0)
