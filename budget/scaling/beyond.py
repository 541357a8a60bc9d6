"""Plans beyond compute-optimal, as one optional part of a plan (`Plan.beyond`).

The planner hands over the budget, the plan's allocations and its pricing; this module adds
- inference-aware sizing per parametric law (`--inference-tokens T`, `--target-loss L`),
- what a cap on unique tokens does (`--unique-tokens U`),
- the loss an explicit (N, D) buys (a `--params/--tokens` budget).
Nothing here changes the plan's compute-optimal numbers: with none of the options the plan has no
`beyond` part at all, and with T = 0 and no cap the inference rows are the allocations unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from budget.errors import BudgetError
from budget.scaling import data_constrained, inference, laws
from budget.scaling.frontier import PARAMETRIC_LAWS, LossBought, loss_you_buy

MEAN_CONTEXT_FRACTION = 0.5  # a served token attends to ~seq_len / 2 positions on average (our assumption)
# Sardana & Frankle 2023 (abstract): laws fitted at typical ratios overestimate the value of extra
# tokens at extreme ones (they trained up to 10,000 tokens/param); "a few hundred" is our line.
OPTIMISTIC_TOKENS_PER_PARAM = 300.0


@dataclass(frozen=True)
class BeyondPlan:
    """The optional beyond-compute-optimal part of a plan, with the assumptions it rests on."""

    inference: tuple[inference.InferencePlan, ...] = ()
    data: data_constrained.DataConstrainedPlan | None = None
    bought: tuple[LossBought, ...] = ()
    notes: tuple[str, ...] = ()  # laws left out and why
    assumptions: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"inference": [p.to_dict() for p in self.inference],
                "data_constrained": None if self.data is None else self.data.to_dict(),
                "loss_you_buy": [b.to_dict() for b in self.bought],
                "notes": list(self.notes), "assumptions": list(self.assumptions)}


def wanted(inference_tokens: float | None, target_loss: float | None,
           unique_tokens: float | None, params_tokens: tuple[float, float] | None) -> bool:
    return any(x is not None for x in (inference_tokens, target_loss, unique_tokens, params_tokens))


def budget_for_target_loss(target_loss: float, law_id: str) -> float:
    """The compute-optimal C = 6 N D reaching `target_loss` under a parametric law (no other budget)."""
    law = PARAMETRIC_LAWS.get(law_id)
    if law is None:
        raise BudgetError(f"--target-loss without a budget sizes C with a parametric law; law "
                          f"{law_id!r} has none: use --law {' or --law '.join(PARAMETRIC_LAWS)}, "
                          f"or give a budget too")
    n, d = inference.compute_optimal_for_loss(law, target_loss)
    return laws.FLOPS_PER_PARAM_TOKEN * n * d


def beyond_plan(*, compute_flops: float, allocations: Sequence[laws.Allocation], chosen_law: str,
                inference_tokens: float | None = None, target_loss: float | None = None,
                unique_tokens: float | None = None,
                params_tokens: tuple[float, float] | None = None, seq_len: int = 2048,
                usd_per_flop: float | None = None, pricing: str = "",
                extra_laws: Mapping[str, laws.ParametricLaw] | None = None,
                serving: inference.ServingPrice | None = None, serving_text: str = "") -> BeyondPlan:
    """The beyond part of a plan; `usd_per_flop` prices training and inference FLOPs alike;
    `extra_laws` (e.g. the team's calibrated fit) join the published parametric laws."""
    parametric = {**PARAMETRIC_LAWS, **(extra_laws or {})}
    if inference_tokens is not None and not (math.isfinite(inference_tokens) and inference_tokens >= 0):
        raise BudgetError(f"inference tokens {inference_tokens!r} must be a finite number >= 0 "
                          f"(lifetime tokens served)")
    notes: list[str] = []
    assumptions: list[str] = []
    plans: list[inference.InferencePlan] = []
    if inference_tokens is not None or target_loss is not None:
        T = 0.0 if inference_tokens is None else inference_tokens
        context = MEAN_CONTEXT_FRACTION * seq_len
        by_id = {a.law: a for a in allocations}
        for name, law in parametric.items():
            alloc = by_id.get(name)
            try:
                plans.append(_inference_row(name, law, alloc, T, target_loss, context, usd_per_flop,
                                            serving))
            except BudgetError as exc:
                notes.append(f"{name}: {exc}")
        notes += [f"{p.law}: the inference-aware model trains on {p.chosen.tokens_per_param:,.0f} "
                  f"tokens/param, past ~{OPTIMISTIC_TOKENS_PER_PARAM:g}: fits from typical ratios "
                  f"overestimate what extra tokens buy there (Sardana & Frankle 2023), so read its "
                  f"loss and saving as optimistic" for p in plans
                  if p.chosen.tokens_per_param > OPTIMISTIC_TOKENS_PER_PARAM]
        assumptions += [
            (f"inference FLOPs per served token = 2 N + 4 n_layer d_model t with mean context "
            f"t = {context:g} tokens (half of --seq-len {seq_len}), n_layer and d_model from the "
            f"house shape rule; training FLOPs 6 N D (Sardana & Frankle 2023 ignore attention)"),
            (f"inference priced like training: {pricing}; decode usually runs memory-bound far "
            f"below training MFU (Sardana & Frankle 2023 note this favours smaller models "
            f"further), so the inference dollars are a floor") if serving is None else
            (f"inference dollars: each model served at {serving_text}, sized by the "
             f"continuous-batching simulator (budget serve --rate), at the cheapest tensor "
             f"parallelism that holds it; N* still minimises FLOPs"),
            ("only the parametric laws (epoch, chinchilla) have a loss to hold fixed; "
            "tokens-per-param and kaplan have no L(N, D)")]
    data = None
    if unique_tokens is not None:
        triples = tuple((a.law, a.params, a.tokens) for a in allocations) + tuple(
            (f"{p.law} (inference-aware)", p.chosen.params, p.chosen.tokens) for p in plans
            if p.inference_tokens > 0)
        data = data_constrained.data_constrained_plan(compute_flops, unique_tokens, triples,
                                                      chosen_law)
        assumptions.append(
            f"repetition: Muennighoff et al. 2023's C4 law and decay constants R_D* = "
            f"{data_constrained.R_D_STAR}, R_N* = {data_constrained.R_N_STAR}; its losses are on C4 "
            f"and compare only with each other")
    bought: tuple[LossBought, ...] = ()
    if params_tokens is not None:
        bought = tuple(loss_you_buy(name, law, *params_tokens) for name, law in parametric.items())
    return BeyondPlan(tuple(plans), data, bought, tuple(notes), tuple(assumptions))


def _inference_row(name: str, law: laws.ParametricLaw, alloc: laws.Allocation | None, T: float,
                   target_loss: float | None, context: float, usd_per_flop: float | None,
                   serving: inference.ServingPrice | None = None) -> inference.InferencePlan:
    if target_loss is not None:
        return inference.inference_plan(name, law, target_loss, T, loss_from="--target-loss",
                                        context_tokens=context, usd_per_flop=usd_per_flop,
                                        serving=serving)
    if alloc is None or alloc.loss is None:
        raise BudgetError("no allocation with a loss in the plan")
    return inference.inference_plan(name, law, alloc.loss, T,
                                    loss_from="the compute-optimal model at the budget",
                                    reference=(alloc.params, alloc.tokens), context_tokens=context,
                                    usd_per_flop=usd_per_flop, serving=serving)
