"""One time model: the headline hours of `budget plan` are the chosen layout's step time x steps /
goodput (issue 22); --mfu overrides it, labelled; a network given by its FLOPs is priced at the
MFU with no language-model ratio."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from budget.cli import main


def run(*args: str) -> tuple[dict, str]:
    out = CliRunner().invoke(main, ["plan", *args, "--json"])
    assert out.exit_code == 0, out.output
    text = CliRunner().invoke(main, ["plan", *args]).output
    return json.loads(out.output), text


def test_resnet50_forward_flops_is_5_84_v100_hours():
    """ResNet-50: 3.8e9 forward FLOPs x 1.28e6 images x 90 epochs x 3 = 1.313e18 FLOPs; at 50% of
    the V100's 125 TFLOP/s FP16 peak (NVIDIA V100 datasheet) that is 5.84 V100-hours, with no
    language-model FLOP ratio and no allocation table."""
    plan, text = run("--forward-flops", "3.8e9", "--samples", "1.28e6", "--epochs", "90",
                     "--gpu", "v100", "--precision", "fp16", "--mfu", "0.5")
    assert plan["training_flops"] == pytest.approx(1.3133e18, rel=1e-4)
    assert plan["gpu_hours"] == pytest.approx(5.84, abs=0.005)
    assert plan["ratio_to_6nd"] == pytest.approx(1.0)
    assert "GPU-hours     5.84" in text
    assert "Compute-optimal allocation" not in text and "6ND" not in text


def test_headline_and_layout_state_one_gpu_hours_figure():
    """Without --mfu the headline GPU-hours, wall clock and dollars are the layout's billed hours."""
    plan, text = run("--model", "llama-2-70b", "--tokens", "2e12", "--gpu", "a100", "--num-gpus", "2048")
    par = plan["parallel"]
    assert plan["time_source"] == "layout"
    assert plan["gpu_hours"] == pytest.approx(par["billed_gpu_hours"], rel=1e-9)
    assert plan["wall_clock_hours"] == pytest.approx(par["wall_clock_hours"], rel=1e-9)
    assert plan["cost_usd"] == pytest.approx(par["billed_gpu_hours"] * plan["price_usd_per_hour"])
    figure = f"{par['billed_gpu_hours']:,.0f}"
    assert f"GPU-hours     {figure}" in text and f"billed {figure} GPU-hours" in text
    # the MFU shown is the prediction times goodput, not an assumed default
    assert plan["mfu"] == pytest.approx(par["predicted_mfu"] * par["goodput"], rel=0.02)


def test_llama2_70b_on_2048_a100_chooses_micro_batch_and_recompute_and_says_why():
    plan, text = run("--model", "llama-2-70b", "--tokens", "2e12", "--gpu", "a100", "--num-gpus", "2048")
    lay = plan["layout"]
    why = plan["parallel"]["search"]["why"]
    assert why.startswith(f"mb={lay['mb']}, ga={lay['ga']}, recompute={lay['recompute']} chosen: ")
    assert "recomputation" in why and "mb=" in why.split("chosen: ")[1]
    assert sum(1 for line in text.splitlines() if line.strip().startswith("why ")) == 1


def test_mfu_override_is_labelled_with_the_prediction_beside_it():
    plan, _ = run("--flops", "1e21", "--gpu", "h100", "--mfu", "0.4")
    assert plan["time_source"] == "mfu-override" and plan["mfu"] == 0.4
    assert "override" in plan["mfu_source"]
    assert f"{plan['parallel']['predicted_mfu']:.1%}" in plan["mfu_source"]


def test_zero3_fixed_layout_gets_its_micro_batch_from_the_search_not_1():
    """A --layout with ZeRO-3 and no mb= is not left at micro-batch 1 (re-gathering the weights for
    every micro-batch): it is completed with the micro-batch that is fastest per sequence of all
    that fit, and the plan says so."""
    # one GPU per node: every ZeRO-3 gather crosses the 25 GB/s NIC and is exposed
    base = ["--model", "llama-2-7b", "--tokens", "1e12", "--num-gpus", "64", "--gpu", "a100",
            "--gpus-per-node", "1"]
    plan, _ = run(*base, "--layout", "tp=1,pp=1,zero=3")
    assert "--layout completed with" in plan["parallel"]["search"]["why"]

    def per_sequence(p: dict) -> float:
        return p["parallel"]["step_time_s"] / p["layout"]["global_batch_sequences"]

    chosen = per_sequence(plan)
    for mb in (1, 2, 4, 8):
        given, _ = run(*base, "--layout", f"tp=1,pp=1,zero=3,mb={mb}")
        if given["parallel"]["search"]["best"]["memory"]["fits"]:
            assert chosen <= per_sequence(given) * (1 + 1e-9), mb
    assert plan["layout"]["mb"] > 1  # fewer, larger micro-batches re-gather the weights less often
