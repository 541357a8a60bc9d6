"""The allocation: N and D under every law (and a team's calibrated fit), the one recommended,
and the shape sized for it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from budget.errors import BudgetError
from budget.models import families
from budget.models.arch import Architecture
from budget.planner.request import PlanRequest
from budget.scaling import laws
from budget.scaling.calibrated import VERY_LONG_EXTRAPOLATION_DECADES, Calibration


@dataclass(frozen=True)
class Allocations:
    """Every law's allocation at C, the recommended law and why, and the one the plan sizes for."""

    rows: tuple[laws.Allocation, ...]
    recommended: str
    reason: str
    chosen_id: str
    chosen: laws.Allocation


def allocate(req: PlanRequest, C: float, extra: Sequence[laws.Allocation],
             calibration: Calibration | None, recommend: tuple[str, str] | None) -> Allocations:
    """All allocations at C; the recommendation (a calibrated fit's unless it extrapolates too
    far); the chosen law (--law, else the recommended one)."""
    rows = tuple(laws.all_allocations(C)) + tuple(extra)
    if calibration is not None:
        rows += (calibration.allocation(C),)
        recommend = recommend or calibrated_recommendation(calibration, C)
    law, reason = recommend or (laws.RECOMMENDED_LAW, laws.RECOMMENDED_REASON)
    chosen_id = req.law or law
    if chosen_id not in {a.law for a in rows}:
        raise BudgetError(f"unknown law {chosen_id!r}; choose one of "
                          f"{', '.join(a.law for a in rows)}")
    return Allocations(rows, law, reason, chosen_id, next(a for a in rows if a.law == chosen_id))


def law_shape(req: PlanRequest, alloc: Allocations) -> tuple[float, float, str, Architecture, str]:
    """(tokens, N, how N is counted, the family shape for it, where the shape came from)."""
    chosen = alloc.chosen
    shape = families.shape_for_params(chosen.params, req.family, count=chosen.params_count,
                                      n_ctx=req.seq_len, vocab_size=req.vocab_size, **dict(req.block))
    return (chosen.tokens, chosen.params, chosen.params_count, shape,
            f"{req.family} family shape for {alloc.chosen_id}'s N")


def sweep_setup(req: PlanRequest, calibration: Calibration) -> tuple[PlanRequest, list[str]]:
    """A calibrated shape in the sweep's own vocabulary and context: the law's N counts that
    vocabulary's embeddings and was fitted at that context (--vocab / --seq-len keep theirs)."""
    u = calibration.units
    if u is None:
        return req, []
    changes: dict[str, Any] = {}
    if req.vocab_size is None and u.vocab_size:
        changes["vocab_size"] = u.vocab_size
    if not req.seq_len_given and u.n_ctx:
        changes["seq_len"] = u.n_ctx
    if not changes:
        return req, []
    said = " and ".join(f"{'vocabulary' if k == 'vocab_size' else 'context'} {v:,}"
                        for k, v in changes.items())
    return replace(req, **changes), [
        f"shape: the sweep's own {said} (the calibrated N counts its embeddings and its loss is "
        f"{u.loss_unit}); --vocab / --seq-len set your own"]


def recommend_law(recommend: tuple[str, str] | None) -> str:
    """The published law the plan sizes with when --law is not given (the band note's law)."""
    return recommend[0] if recommend else laws.RECOMMENDED_LAW


def calibrated_recommendation(calibration: Calibration, compute_flops: float) -> tuple[str, str] | None:
    """Recommend the team's own law unless the budget is more than 1,000x beyond its evidence."""
    decades = calibration.extrapolation_decades(compute_flops)
    if decades > VERY_LONG_EXTRAPOLATION_DECADES:
        return None
    return ("calibrated", f"calibrated: fitted to your own sweep ({calibration.source}); the budget is "
                          f"{decades:.1f} orders of magnitude from the largest swept budget")
