"""The plan's notes: range warnings, what a fixed budget's MFU band moves, the FLOP accounting,
calibration, memory and batch remarks a reviewer would raise."""

from __future__ import annotations

from typing import Any

from budget.errors import BudgetError
from budget.planner.request import SANE_COMPUTE_FLOPS, PlanRequest, ResolvedBudget
from budget.scaling import laws
from budget.scaling.calibrated import VERY_LONG_EXTRAPOLATION_DECADES, Calibration
from budget.training.memory import MemoryBreakdown


def fixed_budget_notes(budget: ResolvedBudget, law: str, mfu: float,
                       band: tuple[float, float]) -> list[str]:
    """A budget fixed in dollars, GPU-hours or days: the MFU band moves C, N, D and loss, not the
    dollars (C = hours x peak x MFU scales with MFU)."""
    if budget.given_as not in ("usd", "gpu-hours"):
        return []
    ends = []
    for m in band:
        c = budget.compute_flops * m / mfu
        try:
            a = next(x for x in laws.all_allocations(c) if x.law == law)
        except (BudgetError, StopIteration):
            return []
        ends.append((c, a))
    (c0, a0), (c1, a1) = ends
    loss = "" if a0.loss is None or a1.loss is None else f", loss {a0.loss:.3f}-{a1.loss:.3f}"
    return [f"the budget is fixed ({budget.given_as}): over the MFU band {band[0]:.0%}-{band[1]:.0%} "
            f"the same money or hours buy C = {c0:.2e}-{c1:.2e} FLOPs, so under '{law}' N = "
            f"{a0.params:.3g}-{a1.params:.3g}, D = {a0.tokens:.3g}-{a1.tokens:.3g}{loss}; the dollar "
            "and hour ranges shown are for the one C at the assumed MFU"]


def compute_range_warning(compute_flops: float) -> str:
    """A warning for a budget far outside the range the laws were fitted on, else ''."""
    low, high = SANE_COMPUTE_FLOPS
    if low <= compute_flops <= high:
        return ""
    side = "below" if compute_flops < low else "above"
    return (f"the budget {compute_flops:.3g} FLOPs is far {side} the range the laws were fitted on "
            f"(6e18-3e21 FLOPs; sane planning range {low:.0e}-{high:.0e}): the allocations are "
            f"extrapolations, not predictions")


def flop_notes(req: PlanRequest, memory: MemoryBreakdown, ratio: float, fixed_n: float | None,
               timed: bool, parallel: Any) -> list[str]:
    """How the hours were reached: the layout's step time, or FLOPs at an MFU."""
    if req.finetune:
        return [f"{req.finetune} fine-tuning: FLOPs per token are forward + activation gradients"
                + ("" if req.finetune == "full" else " (no weight gradients for the frozen base) "
                   f"+ the rank-{req.finetune_rank} adapters' 6 r (d_in + d_out) per layer")
                + " + one recomputed forward under full recomputation, priced at the MFU on one "
                "replica (no layout search); C = 6ND is the pre-training count, shown for the laws"]
    if req.budget.forward_flops is not None:
        return ["GPU-hours and wall clock are C = 3 x forward FLOPs x samples x epochs at the MFU "
                "(no layout and no language-model FLOP ratio for a network given by its FLOPs)"]
    if timed:
        lay = parallel.search.best.layout
        how = (f"steps x the step time of the chosen layout ({lay.describe()}: compute at the "
               f"device's fitted efficiency, exposed communication, bubble, optimizer, its "
               f"{lay.recompute} recomputation) / goodput {parallel.goodput:.0%} x its {lay.num_gpus} GPUs")
        notes = [f"GPU-hours, wall clock, dollars and energy are {how}; model FLOPs {ratio:.3f}x C "
                 f"= 6ND (3x forward with attention, {req.attention}, T = {req.seq_len:,}, and logits)"]
        if not req.mfu_from_catalog:
            notes[0] = notes[0].replace("GPU-hours, wall clock, dollars and energy are",
                                        "the layout section's billed hours are")
            notes.append("--mfu overrides the layout's prediction for the headline hours and dollars")
        return notes
    full = memory.recompute == "full"
    notes = [(f"GPU-hours and wall clock use the model's real training FLOPs, {ratio:.3f}x C = "
              f"6ND: {'4x (full recomputation)' if full else '3x'} forward with attention "
              f"({req.attention}, T = {req.seq_len:,}) and logits")]
    if full:
        notes.append("with full recomputation the extra forward is counted as work, so --mfu is "
                     "read as hardware FLOPs utilisation (HFU; PaLM's MFU leaves it out, "
                     "Chowdhery et al. 2022 App. B)")
    if (req.budget.gpu_hours is not None or req.budget.budget_usd is not None) and fixed_n:
        notes.append(f"the budget became C by 6ND; this model's real FLOPs are {ratio:.3f}x C, so "
                     f"the run needs {ratio:.3f}x the hours given (or {1 / ratio:.0%} of D)")
    return notes


def plan_notes(req: PlanRequest, budget: ResolvedBudget, memory: MemoryBreakdown,
           shape_error: float, calibration: Calibration | None, C: float) -> list[str]:
    notes = []
    warning = compute_range_warning(C)
    if warning:
        import warnings

        from budget.errors import BudgetWarning

        warnings.warn(warning, BudgetWarning, stacklevel=3)
        notes.append(f"WARNING: {warning}")
    if calibration is not None:
        if hasattr(calibration, "used"):  # a fit without Approach 3 (budget.scaling.calibrated_frontier)
            notes.append(calibration.used())
        decades = calibration.extrapolation_decades(C)
        notes.append(calibration.warning(C) or f"the budget is {decades:.1f} orders of magnitude "
                     f"from the largest swept budget ({calibration.max_budget_flops:.2e} FLOPs)")
        if decades > VERY_LONG_EXTRAPOLATION_DECADES:
            notes.append("the calibrated law is shown but not recommended: more than 3 orders of "
                         "magnitude of extrapolation; sweep larger budgets to trust it")
    low, high = req.mfu_band
    if not req.mfu_from_catalog and not low <= req.mfu <= high:
        notes.append(f"--mfu {req.mfu:g} lies outside --mfu-band {low:g}-{high:g}: the ranges do "
                     "not bracket the point estimate")
    if req.law:
        notes.append(f"shape and memory sized for law '{req.law}' as asked (--law)")
    if req.precision == "fp8":
        notes.append("MFU here is against the FP8 dense peak (twice BF16's): reported FP8 runs reach "
                     "about 20% (Llama 4) to 45% (NeMo GPT-3 175B) of it, so check --mfu")
    if budget.given_as == "forward-flops":
        notes.append("the scaling laws are for dense decoder-only language models: no allocation "
                     "is shown for a network given by its FLOPs ('budget scale' sizes a CNN)")
    if abs(shape_error) > 0.02:
        notes.append(f"no {req.family}-family shape with d_model a multiple of 64 and this "
                     f"vocabulary comes within 2% of N (closest {shape_error:+.1%}): embeddings "
                     "dominate at this size")
    if req.recompute == "auto" and memory.recompute == "full":
        notes.append("with ZeRO data parallelism alone selective recomputation does not fit at any GPU "
                     "count, so the memory block assumes full activation recomputation; the layout "
                     "section splits the model with tp/pp instead, and its step time prices the run")
    if req.finetune:
        pass
    elif memory.min_gpus is None:
        notes.append(memory.min_gpus_note)
    elif memory.min_gpus > req.num_gpus:
        notes.append(f"does not fit on {req.num_gpus} GPU(s): needs at least {memory.min_gpus} "
                     f"with ZeRO-{req.zero_stage}")
    if budget.given_as != "forward-flops":
        notes.append("losses are nats/token on each law's own data (MassiveText, WebText2): compare "
                     "them within a law, not across laws or with your data")
    return notes
