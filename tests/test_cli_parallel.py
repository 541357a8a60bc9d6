"""The layout options of `budget plan` / `budget memory` and the catalog's cluster fields through
click's CliRunner: JSON keys, warnings, one-line errors, and the numbers behind them."""

import json
import time

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.hardware.catalog import load_catalog


def run(*args):
    return CliRunner().invoke(main, list(args))


def plan_json(*args):
    result = run("plan", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_plan_json_has_the_layout_keys():
    plan = plan_json("--params", "70e9", "--tokens", "1.4e12", "--seq-len", "4096", "--num-gpus", "256")
    for key in ("layout", "memory_per_gpu_bytes", "step_time_s", "compute_s", "communication_s",
                "bubble_s", "predicted_mfu", "goodput"):
        assert plan[key] is not None, key
    assert plan["step_time_s"] == pytest.approx(plan["compute_s"] + plan["communication_s"]
                                                + plan["bubble_s"]
                                                + plan["parallel"]["search"]["best"]["step"]["optimizer_s"])
    assert plan["layout"]["num_gpus"] == 256 and plan["layout"]["global_batch_sequences"] <= \
        plan["hyperparameters"]["batch_sequences"]
    assert plan["memory_per_gpu_bytes"] <= 81559 * 2**20 * 0.9
    # goodput from the failure and checkpoint model (issue 23), not a fixed 0.90
    assert plan["goodput"] == plan["interval"]["goodput"]["goodput"] and 0.9 < plan["goodput"] < 1
    assert 0 < plan["predicted_mfu"] < 1


def test_70b_fits_once_the_model_is_split():
    """Issue 12: C = 6 x 70e9 x 1.4e12 at 4K context no longer 'does not fit at any GPU count':
    model states keep N = 70e9 exactly (issue 11), 70e9 x 16 B / 71.7 GiB usable = 15.6, so 16-20
    GPUs hold it, and the search lays it out on 32 GPUs (the memory block, ZeRO alone, needs full
    recompute)."""
    plan = plan_json("--params", "70e9", "--tokens", "1.4e12", "--seq-len", "4096", "--num-gpus", "32")
    assert 16 <= plan["parallel"]["search"]["fewest_gpus"] <= 20
    assert plan["layout"]["num_gpus"] == 32 and plan["memory"]["recompute"] == "full"
    assert plan["parallel"]["search"]["best"]["memory"]["fits"]


def test_16384_gpus_warn_about_the_useful_batch():
    """1e23 FLOPs on 16,384 GPUs: 16,384 sequences per step exceed the plan's 4,757-sequence batch."""
    plan = plan_json("--flops", "1e23", "--num-gpus", "16384")
    warnings = " ".join(plan["parallel"]["warnings"])
    assert "exceed the useful batch" in warnings
    assert plan["layout"]["global_batch_sequences"] <= plan["hyperparameters"]["batch_sequences"] + 1
    fewer = plan_json("--flops", "1e23", "--num-gpus", "1024")
    assert plan["predicted_mfu"] < 0.75 * fewer["predicted_mfu"]  # the bubble and communication show up


def test_fixed_layout_idle_gpus_and_errors():
    plan = plan_json("--flops", "1e21", "--num-gpus", "16", "--layout", "tp=2,pp=2,dp=2")
    assert plan["layout"]["tp"] == 2 and plan["layout"]["num_gpus"] == 8
    assert any("8 idle" in w for w in plan["parallel"]["warnings"])
    filled = plan_json("--flops", "1e21", "--num-gpus", "16", "--layout", "tp=2,pp=2")
    assert filled["layout"]["dp"] == 4
    for args, fragment in [(["--layout", "tp=5,dp=1"], "must divide the"),
                           (["--layout", "tpp=2"], "KEY=VALUE"),
                           (["--layout", "tp=16,pp=2"], "does not divide --num-gpus 8"),
                           (["--overlap", "tp=2"], "FRACTION in [0, 1]"),
                           (["--goodput", "1.5"], "'--goodput': '1.5' is out of range")]:
        result = run("plan", "--flops", "1e21", *args)
        assert result.exit_code == 2, (args, result.output)
        assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_nodes_days_and_goodput():
    """--nodes 4 on H100 = 32 GPUs (8 per node, catalog); --days 10 with --num-gpus 64 at goodput
    0.9 is a budget of 10 x 24 x 64 x 0.9 = 13,824 GPU-hours."""
    assert plan_json("--flops", "1e21", "--nodes", "4")["num_gpus"] == 32
    plan = plan_json("--days", "10", "--num-gpus", "64")
    assert plan["budget"]["given_as"] == "gpu-hours"
    # the hours buy the model's real training FLOPs (issue 11), so the run fits them: within the
    # shape's rounding (the shape is discrete in N, so its FLOP ratio jumps), never over
    assert 0.97 * 13824.0 <= plan["gpu_hours"] <= 13824.0 * (1 + 1e-9)
    assert 0.97 * 9.0 <= plan["wall_clock_days"] <= 9.0 * (1 + 1e-9)  # steady-state hours, 64 GPUs
    assert "the budget is fixed" in plan["budget"]["mfu_band_effect"]
    result = run("plan", "--days", "10", "--flops", "1e21")
    assert result.exit_code == 2 and "drop --flops" in result.stderr
    lower = plan_json("--flops", "1e21", "--goodput", "0.5")["parallel"]["wall_clock_hours"]
    higher = plan_json("--flops", "1e21", "--goodput", "1.0")["parallel"]["wall_clock_hours"]
    assert lower == pytest.approx(2 * higher)


def test_mfu_outside_band_and_device_default():
    plan = plan_json("--flops", "1e21", "--mfu", "0.7")
    assert any("outside --mfu-band" in n for n in plan["notes"])
    # an hours budget turns hours into C at the device's published MFU (a FLOPs budget is timed
    # by its layout instead: tests/test_time_model.py)
    h100 = plan_json("--gpu-hours", "1e5", "--gpu", "h100")
    assert h100["mfu"] == 0.41 and "arXiv:2407.21783" in h100["mfu_source"]
    mi300x = plan_json("--gpu-hours", "1e5", "--gpu", "mi300x")
    assert mi300x["mfu"] == 0.40 and mi300x["mfu_source"].startswith("global default")
    a100 = plan_json("--gpu-hours", "1e5", "--gpu", "a100")
    assert a100["mfu"] == 0.514 and a100["mfu_band"][1] == 0.514  # band widened to hold it


def test_plan_with_a_search_stays_under_half_a_second():
    """Issue 12: `budget plan` answers in under 0.5 s with the layout search (shared 2-core box)."""
    from budget.planner import BudgetInput, PlanRequest, make_plan

    make_plan(PlanRequest(BudgetInput(flops=1e21)))  # warm imports
    start = time.perf_counter()
    plan = make_plan(PlanRequest(BudgetInput(flops=1e24), num_gpus=4096, seq_len=8192,
                                 mfu_from_catalog=True))
    assert time.perf_counter() - start < 0.5
    assert plan.parallel.search.candidates >= 300


def test_memory_has_plan_defaults_and_answers_a_gpu_count():
    """Issue 12: `budget memory --params 6.74e9 --gpu h100` answered 'fewest GPUs: none' with
    ZeRO-0 and stored attention scores; with plan's defaults it answers a count."""
    result = run("memory", "--params", "6.74e9", "--gpu", "h100", "--json")
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert m["zero_stage"] == 3 and m["recompute"] == "selective" and m["num_gpus"] == 8
    assert m["layouts"]["fewest_gpus"] is not None and m["layouts"]["fewest_gpus"] <= 2
    big = json.loads(run("memory", "--params", "70e9", "--seq-len", "4096", "--gpu", "h100",
                         "--json").stdout)
    assert big["layouts"]["fewest_gpus"] == 16  # 70B x 16 B / 16 = 70 GB of states per GPU


def test_gpus_shows_cluster_fields():
    result = run("gpus")
    assert result.exit_code == 0
    assert "81,559 MiB" in result.stdout and "on-demand, RunPod Secure Cloud, 1 GPU" in result.stdout
    assert "mi250x-gcd" in result.stdout and "128 GB (2 devices)" in result.stdout


CAT = load_catalog(use_env=False)


def test_catalog_memory_as_reported_and_mi250x_as_two_devices():
    """nvidia-smi prints 81559MiB on an H100 80GB HBM3 and 143771MiB on an H200; AMD's MI250X is
    two GCDs of 64 GB and 191.5 dense BF16 TFLOP/s each (AMD MI250X specifications)."""
    assert CAT.get("h100").memory_bytes == 81559 * 2**20
    assert CAT.get("h200").memory_bytes == 143771 * 2**20
    gcd = CAT.get("mi250x")
    assert gcd.id == "mi250x-gcd" and gcd.memory_bytes == 64e9 and gcd.peak_flops("bf16") == 191.5e12
    assert CAT.get("mi250x-oam").devices_per_package == 2


def test_catalog_cluster_mfu_and_price_fields_are_sourced():
    tiers = {acc.price_tier for acc in CAT.accelerators if acc.price_usd_per_hour is not None}
    assert tiers == {"on-demand, RunPod Secure Cloud, 1 GPU"}  # one tier for every priced row
    a40, a80 = CAT.get("a100-40gb"), CAT.get("a100")
    assert a40.price_usd_per_hour is None or a40.price_usd_per_hour <= a80.price_usd_per_hour
    for acc in CAT.accelerators:
        if acc.gpus_per_node or acc.scale_up_gbs_per_dir:
            assert acc.sources.get("scale_up"), acc.id
        if acc.scale_out_gbs_per_dir:
            assert acc.sources.get("scale_out"), acc.id
        if acc.default_mfu:
            assert "arXiv" in acc.sources["mfu"] and any(y in acc.sources["mfu"] for y in ("2022", "2024"))
        if acc.memory_mib:
            assert "nvidia-smi" in acc.sources["memory_mib"]
    h100 = CAT.get("h100")
    assert (h100.gpus_per_node, h100.scale_up_gbs_per_dir, h100.scale_out_gbs_per_dir) == (8, 450, 50)


def test_days_deadline_warning():
    """--days 30 on 64 A100 with an optimistic --mfu 0.8: the predicted step time misses the deadline."""
    plan = plan_json("--days", "30", "--num-gpus", "64", "--gpu", "a100", "--mfu", "0.8")
    assert any("over --days 30" in w for w in plan["parallel"]["warnings"])
    assert plan["parallel"]["wall_clock_hours"] > 30 * 24


def test_memory_takes_a_fixed_layout():
    result = run("memory", "--n-layer", "40", "--d-model", "5120", "--gpu", "h100", "--num-gpus", "16",
                 "--layout", "tp=4,pp=2,zero=1", "--json")
    assert result.exit_code == 0, result.output
    lay = json.loads(result.stdout)["layouts"]
    assert lay["layout"].startswith("tp=4,pp=2,dp=2") and lay["memory_per_gpu_bytes"] > 0
