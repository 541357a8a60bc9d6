"""The Monte Carlo interval (budget.training.interval): order, collapse, reproducibility, tornado."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget.hardware.catalog import load_catalog
from budget.training import interval as iv

CAT = load_catalog(use_env=False)
H100 = CAT.get("h100")
ROWS = tuple(CAT.prices_for("h100"))
LAWS = (("epoch", 29.5e9), ("chinchilla", 14.6e9), ("kaplan", 135e9))


def run(**kw):
    args = dict(training_flops=1e23, peak_flops=H100.peak_flops("bf16"), num_gpus=1024, mfu=0.41,
                mfu_band=(0.30, 0.50), params=29.5e9, law_params=LAWS, price_rows=ROWS,
                device=H100.id, opts=iv.Reliability(draws=2000))
    args.update(kw)
    return iv.interval(**args)


@settings(max_examples=25, deadline=None)
@given(flops=st.floats(1e20, 1e25), gpus=st.integers(8, 16384), mfu=st.floats(0.2, 0.6),
       seed=st.integers(0, 2**31), mtbf=st.one_of(st.none(), st.floats(2e4, 2e5)),
       tier=st.sampled_from([None, "spot", "reserved-1y"]))
def test_percentiles_are_ordered(flops, gpus, mfu, seed, mtbf, tier):
    out = run(training_flops=flops, num_gpus=gpus, mfu=mfu, params=min(1e12, flops / 1e12),
              opts=iv.Reliability(draws=500, seed=seed, mtbf_gpu_hours=mtbf, price_tier=tier))
    for key in ("gpu_hours", "wall_days", "usd"):
        p = out.percentiles[key]
        assert p["p10"] <= p["p50"] <= p["p90"], key


def test_collapsed_inputs_give_the_point_exactly():
    """One law, a zero-width MFU band, a fixed MTBF, one provider, no failure noise: every draw is
    the point figure, so P10 = P50 = P90 = the single figure, to the last bit."""
    out = run(law_params=(("epoch", 29.5e9),), mfu_band=(0.41, 0.41),
              opts=iv.Reliability(draws=300, mtbf_gpu_hours=50000.0, price_tier="on-demand",
                                  provider="AWS", failure_noise=False))
    for key in ("gpu_hours", "wall_days", "usd"):
        p = out.percentiles[key]
        assert p["p10"] == p["p50"] == p["p90"] == out.point[key], key
    g = out.goodput  # the same point through goodput.py's scalar path
    assert out.point["goodput"] == pytest.approx(g.goodput, rel=1e-12)
    assert out.point["gpu_hours"] == pytest.approx(g.elapsed_hours * 1024, rel=1e-12)
    assert out.point["usd"] == pytest.approx(g.elapsed_hours * 1024 * 6.88, rel=1e-12)


def test_seeded_and_reproducible():
    a, b, c = run(), run(), run(opts=iv.Reliability(draws=2000, seed=1))
    assert a.percentiles == b.percentiles
    assert a.percentiles != c.percentiles


def test_spot_lowers_goodput_and_price():
    on_demand = run(opts=iv.Reliability(draws=500, price_tier="on-demand", provider="AWS"))
    spot = run(opts=iv.Reliability(draws=500, price_tier="spot", provider="AWS"))
    assert spot.goodput.goodput < on_demand.goodput.goodput
    assert spot.goodput.preemptions_per_gpu_hour > 0
    assert spot.point["usd"] < on_demand.point["usd"]


def test_inputs_are_stated_and_tornado_sorted():
    out = run()
    names = [i.name for i in out.inputs]
    assert names == ["law (N)", "step time (MFU)", "MTBF per GPU", "failure process", "price"]
    assert all(i.to_dict()["distribution"] for i in out.inputs)
    swings = [b["swing"] for b in out.tornado]
    assert swings == sorted(swings, reverse=True) and swings[0] > 0
    # the MFU band alone moves GPU-hours by about the band's width: 0.30-0.50 around 0.41
    mfu_bar = next(b for b in out.tornado if b["input"].startswith("step"))
    assert mfu_bar["high"] / mfu_bar["low"] > 1.2


def test_no_price_gives_hours_only():
    out = run(price_rows=())
    assert out.percentiles["usd"] is None and out.point["usd"] is None
    assert out.tornado_unit == "GPU-hours"


def test_calibrated_bootstrap_interval_feeds_the_law_input():
    out = run(calibrated_ci=(10e9, 40e9))
    law = out.inputs[0].to_dict()
    assert "bootstrap" in law["distribution"] and 10e9 <= law["p10"] < law["p90"] <= 40e9


def test_plan_cli_interval_and_tier_options():
    """`budget plan --flops 1e23 --gpu h100 --num-gpus 1024` (the issue's example) prints P10/P50/P90
    days and dollars; --json carries them; conflicting price options are one-line errors."""
    import json

    from click.testing import CliRunner

    from budget.cli import main

    args = ["plan", "--flops", "1e23", "--gpu", "h100", "--num-gpus", "1024"]
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0 and "Interval (4,000 seeded draws" in text.output
    assert "P10 / P50 / P90" in text.output and "moves the cost most" in text.output
    data = json.loads(CliRunner().invoke(main, args + ["--json"]).output)
    p = data["interval"]["percentiles"]
    assert p["usd"]["p10"] <= p["usd"]["p50"] <= p["usd"]["p90"]
    assert data["goodput"] == data["interval"]["goodput"]["goodput"]
    spot = json.loads(CliRunner().invoke(main, args + ["--json", "--price-tier", "spot",
                                                       "--provider", "AWS"]).output)
    assert spot["price_usd_per_hour"] == 2.25 and spot["goodput"] < data["goodput"]
    bad = CliRunner().invoke(main, args + ["--price-tier", "spot", "--price-per-hour", "2"])
    assert bad.exit_code == 2 and "drop --price-tier" in bad.output
    none = CliRunner().invoke(main, args + ["--price-tier", "reserved-3y"])
    assert none.exit_code == 2 and "no reserved-3y price for h100-sxm-80gb" in none.output


@settings(max_examples=25, deadline=None)
@given(flops=st.floats(1e20, 1e25), gpus=st.integers(1, 16384), mfu=st.floats(0.1, 0.7),
       params=st.floats(1e8, 1e12), mtbf=st.floats(2e4, 2e5), seed=st.integers(0, 2**31),
       provider=st.sampled_from(["AWS", "Lambda", "GCP"]))
def test_collapse_is_exact_for_any_point(flops, gpus, mfu, params, mtbf, seed, provider):
    """Property: every distribution at a point -> P10 = P50 = P90 = the point, bit for bit."""
    out = run(training_flops=flops, num_gpus=gpus, mfu=mfu, mfu_band=(mfu, mfu), params=params,
              law_params=(("one", params),),
              opts=iv.Reliability(draws=50, seed=seed, mtbf_gpu_hours=mtbf, provider=provider,
                                  price_tier="on-demand", failure_noise=False))
    for key in ("gpu_hours", "wall_days", "usd"):
        p = out.percentiles[key]
        assert p["p10"] == p["p50"] == p["p90"] == out.point[key], key
