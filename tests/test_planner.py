"""The planner end to end as a library: budgets in every form, the plan's numbers, its errors."""

import math

import pytest

from budget.errors import BudgetError
from budget.planner import BudgetInput, PlanRequest, make_plan, resolve_budget
from budget.scaling import laws


@pytest.fixture(scope="module")
def h100(priced_catalog):
    return priced_catalog.get("h100")  # the frozen price ($2.69/h) the usd case assumes


@pytest.mark.parametrize("budget,expected", [
    (BudgetInput(flops=1e21), 1e21),
    (BudgetInput(pf_days=2.0), 2 * 8.64e19),
    (BudgetInput(params=174.6e9, tokens=300e9), 3.1428e23),  # GPT-3, Brown et al. 2020 Table D.1
    (BudgetInput(forward_flops=0.39e9 * 2, samples=1.28e6, epochs=350), 3 * 0.78e9 * 1.28e6 * 350),
    (BudgetInput(gpu_hours=1000.0), 1000 * 3600 * 989.5e12 * 0.4),
    (BudgetInput(budget_usd=3490.0), 1000 * 3600 * 989.5e12 * 0.4),  # $3.49/h: H100 SXM, RunPod Secure Cloud
])
def test_every_budget_form(h100, budget, expected):
    assert resolve_budget(budget, h100, "bf16", 0.4).compute_flops == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("budget,message", [
    (BudgetInput(), "no budget given"),
    (BudgetInput(flops=1e21, pf_days=3.0), "conflicting budgets --flops and --pf-days"),
    (BudgetInput(params=1e9), "--params and --tokens go together"),
    (BudgetInput(forward_flops=1e9, samples=1e6), "give all three"),
    (BudgetInput(flops=float("nan")), "finite number > 0"),
])
def test_budget_errors(h100, budget, message):
    with pytest.raises(BudgetError, match=message):
        resolve_budget(budget, h100, "bf16", 0.4)


@pytest.fixture(scope="module")
def plan():
    return make_plan(PlanRequest(budget=BudgetInput(flops=1e21), gpu="h100"))


def test_plan_allocations_and_recommendation(plan):
    assert [a.law for a in plan.allocations] == list(laws.LAW_IDS)
    for a in plan.allocations:
        assert 6 * a.params * a.tokens == pytest.approx(1e21)
    assert plan.recommended == "epoch"
    assert plan.allocation("tokens-per-param").params == pytest.approx(math.sqrt(1e21 / 120))


def test_plan_shape_is_within_two_percent_of_recommended_n(plan):
    """The default family is Llama-style (SwiGLU, RMSNorm, rotary, untied, GQA) with head counts
    8-way tensor parallelism can split."""
    assert abs(plan.shape.params_total() / plan.allocation("epoch").params - 1) <= 0.02
    assert plan.shape.d_model % 64 == 0 and plan.shape.d_ff % 256 == 0
    assert plan.shape.mlp == "gated" and plan.shape.norm == "rmsnorm" and not plan.shape.tied_embeddings
    assert plan.shape.n_head % 8 == 0 and plan.shape.n_kv_head == 8


def test_plan_shape_in_the_gpt2_family():
    plan = make_plan(PlanRequest(budget=BudgetInput(flops=1e21), family="gpt2"))
    assert abs(plan.shape.params_total() / plan.allocation("epoch").params - 1) <= 0.02
    assert plan.shape.mlp == "plain" and plan.shape.tied_embeddings and plan.shape.vocab_size == 50257


def test_plan_costs_and_units(plan):
    """1e21 FLOPs = 11.57 PF-days; 701.8 H100-hours at 40% MFU; 8 GPUs by default."""
    assert plan.compute_pf_days == pytest.approx(11.574, rel=1e-3)
    assert plan.h100_hours == pytest.approx(701.8, abs=0.1)
    # time is priced on the shape's real training FLOPs (attention and logits in), not on 6ND
    assert plan.training_flops == pytest.approx(
        plan.shape.training_flops_per_token(2048) * plan.allocation("epoch").tokens)
    assert plan.cost.gpu_hours == pytest.approx(plan.h100_hours * plan.ratio_to_6nd)
    assert 1.05 < plan.ratio_to_6nd < 1.15
    assert plan.cost.num_gpus == 8
    assert plan.memory.min_gpus == 1  # a ~2.7B model's 44 GB of Adam state fits one 80 GB GPU
    assert plan.gpu.alias_note == "'h100' means NVIDIA H100 SXM 80GB (h100-sxm-80gb)"


def test_plan_with_law_choice_and_kaplan_counts_non_embedding():
    plan = make_plan(PlanRequest(budget=BudgetInput(flops=1e21), law="kaplan"))
    assert plan.shape_params_count == "non_embedding"
    assert abs(plan.shape_error) <= 0.02
    assert any("--law" in n for n in plan.notes)


def test_big_plan_needs_many_gpus():
    """At 1e25 FLOPs the recommended model (313B) does not fit on one 8-GPU node."""
    plan = make_plan(PlanRequest(budget=BudgetInput(flops=1e25), gpu="a100"))
    assert plan.memory.recompute == "full"  # selective activations of a 313B model exceed 80 GB
    assert any("full activation recomputation" in n for n in plan.notes)
    assert plan.memory.min_gpus > 8
    assert any("does not fit on 8 GPU(s)" in n for n in plan.notes)


def test_plan_errors():
    with pytest.raises(BudgetError, match="unknown accelerator"):
        make_plan(PlanRequest(budget=BudgetInput(flops=1e21), gpu="h1000"))
    with pytest.raises(BudgetError, match="has no bf16 peak"):
        make_plan(PlanRequest(budget=BudgetInput(flops=1e21), gpu="v100"))
    with pytest.raises(BudgetError, match="MFU"):
        make_plan(PlanRequest(budget=BudgetInput(flops=1e21), mfu=1.5))


def test_fp8_plans_warn_about_the_mfu_denominator():
    """MFU against the FP8 peak runs lower: NeMo GPT-3 175B 45%, Llama 4 about 20%."""
    plan = make_plan(PlanRequest(budget=BudgetInput(flops=1e21), precision="fp8"))
    assert plan.gpu.peak_flops == 1979e12
    assert any("FP8 dense peak" in n for n in plan.notes)
