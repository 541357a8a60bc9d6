"""Plans for a fixed model (--model, --config, --params): its N, its shape, the budget when only N
is given (the law's compute-optimal D), and how each law reads N and D."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from budget import fixed_plan
from budget.errors import BudgetError
from budget.hardware.catalog import Accelerator
from budget.models import families
from budget.models.arch import Architecture
from budget.planner.request import PlanRequest, ResolvedBudget, resolve_budget, target_loss_budget
from budget.scaling import laws
from budget.training import time as costing


def fixed_params(req: PlanRequest) -> float | None:
    """The N a plan keeps: the model's (active per token for MoE) or --params; None otherwise."""
    if req.model is None:
        return req.budget.params
    if req.budget.params is not None:
        raise BudgetError("a named model fixes N; give --tokens (or another budget), not --params")
    return float(req.model.params_active())


def fixed_shape(req: PlanRequest, n: float) -> tuple[Architecture, str]:
    """The fixed model itself, or a family shape for N (it sizes only the activations)."""
    if req.model is not None:
        return req.model, req.model_source or req.model.name
    shape = families.shape_for_params(n, req.family, count="total", n_ctx=req.seq_len,
                                      vocab_size=req.vocab_size, **dict(req.block))
    return shape, (f"{req.family} family shape for N = {n:g}: it sizes the activations and the "
                   f"FLOPs per token; model states use N exactly")


def law_params(law: str, n_total: float, shape: Architecture, named: bool) -> float:
    """N as `law` counts it: total, or non-embedding (Kaplan) from the model or the shape."""
    if fixed_plan.LAW_COUNTS.get(law, "total") == "total":
        return n_total
    return float(shape.params_non_embedding(active=True)) if named else \
        n_total - shape.embedding_params()


def optimal_d_budget(law: str, n: float, shape: Architecture, named: bool) -> ResolvedBudget:
    """C = 6 N D with D the law's compute-optimal tokens for this N."""
    tokens = fixed_plan.optimal_tokens(law, law_params(law, n, shape, named))
    return ResolvedBudget(laws.check_compute(6.0 * n * tokens), "params",
                          f"C = 6 N D with N = {n:g} and D = {tokens:.4g}, {law}'s "
                          f"compute-optimal D for this N")


def fixed_report(req: PlanRequest, shape: Architecture, n: float, tokens: float,
                  tokens_given: bool, C: float, chosen: laws.Allocation, gpu: Accelerator,
                  mfu: float, per_token: float) -> fixed_plan.FixedModel:
    named = req.model is not None
    n_ne = law_params("kaplan", n, shape, named)
    options: list[fixed_plan.OptimalTokens] = []
    if not tokens_given:
        price = costing.resolve_price(gpu, req.price_per_hour)[0]
        for law in laws.LAW_IDS:
            d = fixed_plan.optimal_tokens(law, law_params(law, n, shape, named))
            real = per_token * d
            hours = costing.gpu_hours_for(real, gpu.peak_flops(req.precision), mfu)
            options.append(fixed_plan.OptimalTokens(law, d, 6.0 * n * d, real, hours,
                                                    None if price is None else hours * price))
    note = ("the laws are fitted on dense models; this MoE is read with its active parameters"
            if shape.is_moe else "")
    return fixed_plan.FixedModel(
        name=shape.name if named else f"N = {n:g}", params=n, params_non_embedding=n_ne, tokens=tokens,
        tokens_given=tokens_given, compute_flops=C,
        readings=fixed_plan.readings(n, n_ne, tokens, C), alternative=chosen,
        optimal_tokens=tuple(options), note=note)


def plan_budget(req: PlanRequest, gpu: Accelerator, mfu: float, flop_ratio: float,
                fixed_n: float | None, shape: Architecture | None,
                law_for_d: str) -> tuple[ResolvedBudget, bool]:
    """C for the request and whether only N was given (then D is `law_for_d`'s optimal D)."""
    b = req.budget
    only_n = bool(fixed_n) and b.tokens is None and not any(
        getattr(b, f) is not None for f in ("flops", "pf_days", "gpu_hours", "budget_usd",
                                             "forward_flops", "samples", "epochs"))
    target = target_loss_budget(req)
    if target is not None:
        return target, only_n
    if fixed_n and shape is not None and only_n:  # no D: the law's compute-optimal D for N
        return optimal_d_budget(law_for_d, fixed_n, shape, req.model is not None), only_n
    given = replace(b, params=fixed_n) if req.model is not None and b.tokens is not None else b
    budget = resolve_budget(given, gpu, req.precision, mfu, req.price_per_hour)
    if flop_ratio != 1.0:
        budget = replace(budget, compute_flops=budget.compute_flops / flop_ratio,
                         formula=f"{budget.formula} / {flop_ratio:.4f} (the planned model's "
                                 "real training FLOPs per 6ND, so the run fits the hours)")
    return budget, only_n


def finetuning(req: PlanRequest, shape: Architecture, gpu: Accelerator,
               fixed_n: float | None) -> tuple[Any, float]:
    """(one replica's fine-tuning memory, training FLOPs per token) for --finetune; it needs a
    given model and its tokens (recompute auto = full, QLoRA's gradient checkpointing)."""
    from budget.training.finetune import finetune_flops_per_token, finetune_memory

    if not fixed_n or req.budget.tokens is None:
        raise BudgetError("--finetune prices a given model: give --model (or --params) and --tokens")
    recompute = "full" if req.recompute == "auto" else req.recompute
    memory = finetune_memory(shape, req.finetune or "full", rank=req.finetune_rank,
                             seq_len=req.seq_len, micro_batch=req.micro_batch, recompute=recompute,
                             gpu=gpu.id, gpu_memory_bytes=gpu.memory_bytes)
    per_token = finetune_flops_per_token(shape, req.finetune or "full", rank=req.finetune_rank,
                                         seq_len=req.seq_len, recompute=recompute,
                                         attention=req.attention)
    return memory, per_token
