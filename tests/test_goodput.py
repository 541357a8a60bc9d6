"""Goodput from failures, checkpoints and restarts (budget.training.goodput)."""

from __future__ import annotations

import math

import pytest

from budget.errors import BudgetError
from budget.training import goodput as gp


def test_llama3_interruption_every_three_hours() -> None:
    """Dubey et al. 2024 (arXiv:2407.21783) §3.3.4 / Table 5: 419 unexpected interruptions in 54
    days on 16,384 H100 = one per 3.09 h; the per-GPU rate scaled back to 16,384 GPUs gives it."""
    src = gp.FAILURE_SOURCES["llama3"]
    assert src.mtbf_gpu_hours == pytest.approx(16384 * 54 * 24 / 419)
    assert gp.job_mtbf_hours(src.mtbf_gpu_hours, 16384) == pytest.approx(54 * 24 / 419)
    assert 2.9 < gp.job_mtbf_hours(src.mtbf_gpu_hours, 16384) < 3.3


def test_llama3_goodput_above_90_percent() -> None:
    """Llama 3 405B kept > 90% effective training time (Dubey et al. 2024 §3.3.4). With 405B params,
    14 bytes/param, its 2 TB/s storage (§3.3.1), 10 min restarts and Young's interval (the paper
    does not publish its checkpoint cadence), 54 days of elapsed time: goodput > 0.90 and about 419
    interruptions."""
    g = gp.goodput(params=405e9, num_gpus=16384, useful_hours=54 * 24 * 0.92,
                   write_gbps=2000.0)
    assert 0.90 < g.goodput < 0.97
    assert g.expected_interruptions == pytest.approx(419, rel=0.05)
    assert g.save_seconds == pytest.approx(405e9 * 14 / 2e12)
    assert sum(g.hours_lost.values()) == pytest.approx(g.elapsed_hours - g.useful_hours)


def test_goodput_falls_with_gpus_at_fixed_per_gpu_mtbf() -> None:
    values = [gp.goodput(params=70e9, num_gpus=n, useful_hours=1000.0, mtbf_gpu_hours=50000,
                         write_gbps=500.0).goodput for n in (512, 2048, 8192, 32768)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_optimal_interval_is_young() -> None:
    """Young 1974: tau_opt = sqrt(2 delta M); it is also the numerical minimum of the waste."""
    g = gp.goodput(params=70e9, num_gpus=4096, useful_hours=500.0, mtbf_gpu_hours=40000,
                   write_gbps=200.0)
    delta, m = g.save_seconds / 3600, g.job_mtbf_hours
    assert g.interval_hours == pytest.approx(math.sqrt(2 * delta * m))
    for factor in (0.5, 2.0):  # any other interval wastes more (to first order)
        other = gp.goodput(params=70e9, num_gpus=4096, useful_hours=500.0, mtbf_gpu_hours=40000,
                           write_gbps=200.0, interval_hours=g.interval_hours * factor)
        assert other.goodput < g.goodput
    quad = gp.goodput(params=280e9, num_gpus=4096, useful_hours=500.0, mtbf_gpu_hours=40000,
                      write_gbps=200.0)  # 4x the save cost -> 2x the interval
    assert quad.interval_hours == pytest.approx(2 * g.interval_hours)


def test_spot_preemption_lowers_goodput() -> None:
    base = gp.goodput(params=30e9, num_gpus=1024, useful_hours=500.0)
    spot = gp.goodput(params=30e9, num_gpus=1024, useful_hours=500.0,
                      preemptions_per_gpu_hour=3e-5)
    assert spot.goodput < base.goodput
    assert spot.expected_interruptions > base.expected_interruptions


def test_hopeless_failure_rate_is_refused() -> None:
    with pytest.raises(BudgetError, match="goodput would be"):
        gp.goodput(params=1e12, num_gpus=100000, useful_hours=10.0, mtbf_gpu_hours=1000.0,
                   restart_minutes=60)


@pytest.mark.parametrize("kw", [{"mtbf_gpu_hours": -1.0}, {"write_gbps": 0.0},
                                {"restart_minutes": -5.0}, {"failure_source": "nope"}])
def test_bad_inputs(kw: dict) -> None:
    with pytest.raises(BudgetError):
        gp.goodput(params=1e9, num_gpus=8, useful_hours=10.0, **kw)


def test_gpu_only_fleet_is_a_bound_not_in_the_interval():
    """Lablup 2026 (arXiv:2605.09370): 10 GPU failures in 55 days on 504 B200 = 66,528 GPU-hours per
    GPU failure; other causes are not counted, so it is an upper bound on the MTBF, kept out of
    the interval's range (OPT-175B to Llama 3)."""
    src = gp.FAILURE_SOURCES["lablup-b200"]
    assert src.mtbf_gpu_hours == pytest.approx(504 * 55 * 24 / 10)
    assert not src.all_causes
    assert src.mtbf_gpu_hours > max(s.mtbf_gpu_hours for s in gp.FAILURE_SOURCES.values()
                                    if s.all_causes)
