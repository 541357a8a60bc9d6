"""`budget plan`, `budget gpus` and `budget memory` through click's CliRunner: JSON keys, exit
codes and the one-line error contract."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from budget.cli import main

PLAN_KEYS = {"compute_flops", "compute_pf_days", "h100_hours", "budget", "gpu", "precision", "mfu",
             "mfu_band", "mfu_source", "allocations", "recommended", "recommended_reason",
             "gpu_hours", "gpu_hours_range", "wall_clock_hours", "wall_clock_hours_range",
             "wall_clock_days", "num_gpus", "cost_usd", "cost_usd_range", "price_usd_per_hour",
             "price_source", "memory", "min_gpus", "shape", "hyperparameters", "notes", "calibration",
             "energy",
             # the layout section (issue 12): units in the key names
             "parallel", "layout", "memory_per_gpu_bytes", "step_time_s", "compute_s",
             "communication_s", "bubble_s", "predicted_mfu", "goodput",
             "tokens", "training_flops_per_token", "training_flops", "ratio_to_6nd",
             "attention_convention", "fixed_model", "time_source",
             # the P10/P50/P90 interval, goodput and price row (issue 23)
             "interval"}
ALLOCATION_KEYS = {"law", "compute_flops", "params", "tokens", "tokens_per_param", "loss",
                   "params_count", "source", "note", "params_ci", "tokens_ci", "loss_ci",
                   "interval_level", "loss_unit"}
MEMORY_KEYS = {"params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes", "total_bytes",
               "min_gpus"}


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_plan_json_has_the_documented_keys():
    result = run("plan", "--flops", "1e21", "--gpu", "h100", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert set(plan) == PLAN_KEYS
    assert plan["compute_flops"] == 1e21
    assert plan["gpu"]["name"] == "NVIDIA H100 SXM 80GB" and plan["gpu"]["peak_flops"] == 989.5e12
    assert [a["law"] for a in plan["allocations"]] == ["epoch", "chinchilla", "chinchilla-unrounded",
                                                       "tokens-per-param", "kaplan"]
    for a in plan["allocations"]:
        assert set(a) == ALLOCATION_KEYS
        assert 6 * a["params"] * a["tokens"] == pytest.approx(1e21)
    assert plan["recommended"] == "epoch"
    assert MEMORY_KEYS <= set(plan["memory"])
    assert {"n_layer", "d_model", "n_head", "d_ff"} <= set(plan["shape"])
    # GPU-hours are the chosen layout's billed hours (steps x step time / goodput x GPUs), and the
    # plan's MFU is what that implies for the proposed shape's real FLOPs (1.094x 6ND)
    assert plan["time_source"] == "layout"
    assert plan["gpu_hours"] == pytest.approx(plan["parallel"]["billed_gpu_hours"], rel=1e-9)
    assert plan["gpu_hours"] == pytest.approx(
        1e21 * plan["ratio_to_6nd"] / (989.5e12 * plan["mfu"]) / 3600, rel=1e-9)
    assert plan["ratio_to_6nd"] == pytest.approx(1.094, abs=0.001)


def test_plan_table_mentions_the_alias_and_every_law():
    result = run("plan", "--flops", "1e21", "--gpu", "h100")
    assert result.exit_code == 0
    assert "'h100' means NVIDIA H100 SXM 80GB" in result.stdout
    for law in ("epoch *", "chinchilla", "tokens-per-param", "kaplan"):
        assert law in result.stdout
    billed = json.loads(run("plan", "--flops", "1e21", "--gpu", "h100", "--json").stdout)["gpu_hours"]
    assert f"GPU-hours     {billed:,.0f}" in result.stdout  # the layout's billed hours


@pytest.mark.parametrize("args", [
    ["--pf-days", "11.574"], ["--gpu-hours", "685"], ["--budget-usd", "2390"],
    ["--params", "2.78e9", "--tokens", "6e10"], ["--forward-flops", "1e12", "--samples", "1e8",
                                                  "--epochs", "3.33"]])
def test_other_budget_forms_land_near_1e21(args, fixed_prices):  # --budget-usd reads a price
    """685 H100-hours (or $2,390 at $3.49/h) at MFU 0.41 deliver 1e21 FLOPs: an hours or money
    budget buys the model's real training FLOPs, so there C = 6ND is 1e21 / the real-FLOP ratio."""
    result = run("plan", *args, "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    spent = plan["training_flops"] if plan["budget"]["given_as"] in ("gpu-hours", "usd") \
        else plan["compute_flops"]
    assert spent == pytest.approx(1e21, rel=0.01)


@pytest.mark.parametrize("args,fragment", [
    (["--flops", "abc"], "Invalid value for '--flops': 'abc' is not a number"),
    (["--flops", "0"], "'0' must be > 0"),
    (["--flops", "-1e21"], "must be > 0"),
    (["--flops", "nan"], "is not finite"),
    (["--flops", "inf"], "is not finite"),
    (["--flops", "1e21", "--gpu", "h10"], "unknown accelerator 'h10'; close matches: h100"),
    (["--flops", "1e21", "--mfu", "1.5"], "'1.5' is out of range; give a number > 0 and <= 1"),
    (["--flops", "1e21", "--mfu", "0"], "'--mfu': '0' must be > 0"),
    (["--flops", "1e21", "--num-gpus", "0"], "'0' must be a whole number >= 1"),
    (["--flops", "1e21", "--pf-days", "3"], "conflicting budgets --flops and --pf-days"),
    ([], "no budget given"),
    (["--tokens", "1e9"], "--params and --tokens go together"),
    (["--flops", "1e21", "--gpu", "v100"], "v100-sxm2-32gb has no bf16 peak"),
    (["--flops", "1e21", "--precision", "fp4"], "Invalid value for '--precision'"),
    (["--flops", "1e21", "--mfu-band", "0.3"], "must be two numbers LOW,HIGH"),
    (["--budget-usd", "100", "--gpu", "gb200"], "has no on-demand price"),
])
def test_plan_bad_input_is_one_line_exit_2(args, fragment):
    result = run("plan", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_malformed_catalog_via_cli(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[accelerator]]\nid = "x"\n')
    result = run("plan", "--flops", "1e21", "--catalog", str(bad))
    assert result.exit_code == 2
    assert str(bad) in result.stderr and "accelerator #1 (x): missing fields 'name', 'vendor', 'memory_gb'" in result.stderr


def test_gpus_table_and_json():
    result = run("gpus", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)["accelerators"]
    assert len(rows) >= 28
    h100 = next(r for r in rows if r["id"] == "h100-sxm-80gb")
    assert h100["peak_tflops"]["bf16"] == 989.5 and "h100" in h100["aliases"]
    assert set(h100["sources"]) >= {"peak", "memory", "bandwidth", "price"}
    table = run("gpus", "--sources").stdout
    assert "h100-sxm-80gb" in table and "datasheet" in table


def test_memory_json_and_min_gpus():
    result = run("memory", "--params", "7e9", "--gpu", "h100", "--zero", "3", "--json")
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert MEMORY_KEYS <= set(m)
    assert m["bytes_per_param"] == 16
    assert m["total_bytes"] == pytest.approx(m["params_bytes"] + m["grads_bytes"] +
                                             m["optimizer_bytes"] + m["activations_bytes"])
    assert m["min_gpus"] >= 2


def test_memory_needs_a_model():
    result = run("memory", "--gpu", "h100")
    assert result.exit_code == 2 and "give --model NAME, --config FILE, --params N" in result.stderr


def test_plan_does_not_import_heavy_modules():
    """`budget plan` must start fast: no torch, mlflow, scipy.optimize or matplotlib."""
    code = ("import sys; from budget.cli import main\n"
            "try:\n    main(['plan', '--flops', '1e21', '--gpu', 'h100', '--json'])\n"
            "except SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'mlflow', 'scipy.optimize', 'matplotlib', 'pandas') "
            "if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
