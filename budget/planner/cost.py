"""Time and cost of the plan: the MFU it is priced at, and the beyond-compute-optimal part priced
at the plan's GPU, peak, MFU and $/hour."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from budget.hardware.catalog import Accelerator
from budget.planner.request import PlanRequest, ResolvedBudget
from budget.scaling import laws
from budget.scaling.calibrated import Calibration
from budget.training import time as costing

if TYPE_CHECKING:  # beyond needs numpy: imported only when a beyond option is given
    from budget.scaling.beyond import BeyondPlan


def plan_mfu(req: PlanRequest, gpu: Accelerator) -> tuple[float, str, tuple[float, float]]:
    """(MFU, its source, the band): --mfu as given, else the device's published default."""
    if req.mfu_from_catalog:
        mfu, source = costing.device_mfu(gpu)
        return mfu, source, costing.band_including(mfu, req.mfu_band)
    return costing.check_mfu(req.mfu), costing.MFU_SOURCE, req.mfu_band


def plan_beyond(req: PlanRequest, budget: ResolvedBudget, allocations: Sequence[laws.Allocation],
                chosen: str, cost: costing.CostEstimate,
                calibration: Calibration | None = None) -> BeyondPlan | None:
    """The beyond-compute-optimal part, FLOPs priced at the plan's GPU, peak, MFU and $/hour;
    a calibrated fit joins the parametric laws."""
    params_tokens = (req.budget.params, req.budget.tokens) \
        if req.budget.params is not None and req.budget.tokens is not None else None
    if all(x is None for x in (req.inference_tokens, req.target_loss, req.unique_tokens,
                               params_tokens)):
        return None
    from budget.scaling import beyond

    price = cost.price_usd_per_hour
    usd_per_flop = None if price is None else \
        price / (costing.SECONDS_PER_HOUR * cost.peak_flops * cost.mfu)
    pricing = (f"{cost.gpu} {cost.precision} peak {cost.peak_flops / 1e12:g} TFLOP/s x MFU "
               f"{cost.mfu:g}" + ("" if price is None else f" at ${price:.2f}/GPU-hour"))
    return beyond.beyond_plan(
        compute_flops=budget.compute_flops, allocations=allocations, chosen_law=chosen,
        inference_tokens=req.inference_tokens, target_loss=req.target_loss,
        unique_tokens=req.unique_tokens, params_tokens=params_tokens, seq_len=req.seq_len,
        usd_per_flop=usd_per_flop, pricing=pricing,
        extra_laws=None if calibration is None else {"calibrated": calibration.law})
