"""Plans for the model you name: N kept exactly, each law's reading of (N, D), time from real FLOPs."""

import json

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.fixed_plan import kaplan_loss_nd, optimal_tokens
from budget.models.named import get_model
from budget.planner import BudgetInput, PlanRequest, make_plan
from budget.scaling import laws


def plan_json(*args):
    result = CliRunner().invoke(main, ["plan", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_params_and_tokens_keep_n():
    """7B on 1T tokens is 142.9 tokens/param; the memory holds 7e9 x 16 bytes of model states,
    not the 18.9B epoch optimum of the same C (the issue's report)."""
    p = make_plan(PlanRequest(BudgetInput(params=7e9, tokens=1e12)))
    assert p.memory.params == 7e9 and p.memory.model_states_bytes_unsharded == 16 * 7e9
    assert p.fixed is not None and p.fixed.tokens_per_param == pytest.approx(142.857, rel=1e-4)
    assert abs(p.shape.params_total() / 7e9 - 1) <= 0.02  # the shape only sizes activations
    epoch = next(r for r in p.fixed.readings if r.law == "epoch")
    assert epoch.loss == pytest.approx(laws.EPOCH.loss(7e9, 1e12))
    assert epoch.optimal_params == pytest.approx(p.allocation("epoch").params)
    assert epoch.overtraining == pytest.approx(1e12 / p.allocation("epoch").tokens)
    assert epoch.loss > epoch.optimal_loss  # over-training costs loss at fixed C
    assert p.fixed.alternative.law == "epoch"


def test_named_model_plan_405b():
    """Llama 3.1 405B on 15.6T tokens at 8,192 context (Dubey et al. 2024 Table 3: 3.8e25 FLOPs):
    C = 6ND = 3.80e25; the memory and GPU count are for 405,853,388,800 parameters."""
    d = plan_json("--model", "llama-3.1-405b", "--tokens", "15.6e12")
    assert d["compute_flops"] == pytest.approx(3.8e25, rel=0.01)
    assert d["memory"]["params"] == 405_853_388_800
    assert d["shape"]["name"] == "llama-3.1-405b" and d["memory"]["seq_len"] == 8192
    fixed = d["fixed_model"]
    assert fixed["tokens_per_param"] == pytest.approx(15.6e12 / 405_853_388_800)
    assert {r["law"] for r in fixed["readings"]} == set(laws.LAW_IDS)


def test_time_uses_the_real_training_flops():
    """With an MFU given (the override), GPU-hours = (model training FLOPs per token x D) / (peak x
    MFU): 3x forward with attention and logits; the layout's recomputation is in its step time,
    which the notes and the MFU source show beside the override."""
    arch = get_model("llama-3-8b").arch
    p = make_plan(PlanRequest(BudgetInput(tokens=1e12), model=arch, seq_len=8192,
                              recompute="full"))
    per_token = arch.training_flops_per_token(8192)
    assert p.training_flops == pytest.approx(per_token * 1e12)
    assert p.compute_flops == pytest.approx(6 * arch.params_total() * 1e12)  # C stays 6ND
    assert p.cost.gpu_hours == pytest.approx(per_token * 1e12 / (989.5e12 * 0.4) / 3600)
    assert p.ratio_to_6nd == pytest.approx(per_token / (6 * arch.params_total()))
    assert p.time_source == "mfu-override" and "override" in p.mfu_source
    assert any("--mfu overrides the layout's prediction" in n for n in p.notes)


def test_model_alone_gives_each_laws_optimal_tokens():
    """Without D: each law's compute-optimal D for N (epoch ~20 tokens/param; the 20x rule exactly)."""
    d = plan_json("--model", "llama-3-8b")
    options = {o["law"]: o for o in d["fixed_model"]["optimal_tokens"]}
    n = 8_030_261_248
    assert options["tokens-per-param"]["tokens"] == pytest.approx(20 * n, rel=1e-6)
    assert 15 < options["epoch"]["tokens"] / n < 25
    assert d["fixed_model"]["tokens"] == pytest.approx(options["epoch"]["tokens"])
    assert d["fixed_model"]["tokens_given"] is False
    assert laws.compute_optimal("epoch", d["compute_flops"]).params == pytest.approx(n, rel=1e-6)


def test_kaplan_nd_loss_and_inversion():
    """Kaplan et al. 2020 eq. 1.5 with the §4.2 Table 2 fit (alpha_N 0.076, alpha_D 0.103,
    N_c 6.4e13, D_c 1.8e13): 2.331 nats at N = 1e9, D = 1e11; (N_c / N)^alpha_N as D -> infinity."""
    assert kaplan_loss_nd(1e9, 1e11) == pytest.approx(2.331, abs=5e-4)
    assert kaplan_loss_nd(1e9, 1e30) == pytest.approx((6.4e13 / 1e9) ** 0.076, rel=1e-6)
    d = optimal_tokens("chinchilla", 70e9)
    assert laws.compute_optimal("chinchilla", 6 * 70e9 * d).params == pytest.approx(70e9, rel=1e-6)


def test_plan_text_shows_the_comparison():
    out = CliRunner().invoke(main, ["plan", "--params", "7e9", "--tokens", "1e12"]).stdout
    assert "142.9 tokens per parameter" in out and "D/D*" in out
    assert "Compute-optimal alternative (epoch)" in out and "x 6ND" in out


def test_moe_plan_uses_active_n_for_c_and_total_n_for_memory():
    """Mixtral 8x7B: C = 6 x 12,879,925,248 active x D; Adam states hold all 46,702,792,704."""
    d = plan_json("--model", "mixtral-8x7b", "--tokens", "1e12", "--seq-len", "4096")
    assert d["compute_flops"] == pytest.approx(6 * 12_879_925_248 * 1e12)
    assert d["memory"]["params"] == 46_702_792_704
    assert "MoE is read with its active parameters" in d["fixed_model"]["note"]


def test_report_for_a_named_model_is_that_plan(tmp_path):
    """`budget report --model X --tokens D` embeds the plan `budget plan` gives for the same
    options, and its re-check line names the model."""
    args = ["--model", "llama-2-7b", "--tokens", "2e12"]
    report = CliRunner().invoke(main, ["report", *args, "--out", str(tmp_path / "p"), "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["plan"] == plan_json(*args)
    markdown = (tmp_path / "p" / "proposal.md").read_text()
    assert "budget plan --model llama-2-7b --tokens 2000000000000.0 " in markdown
    assert "Train llama-2-7b (6.74B parameters) on 2T tokens" in markdown
