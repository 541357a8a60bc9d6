"""Time and cost of the plan: the MFU it is priced at, and the beyond-compute-optimal part priced
at the plan's GPU, peak, MFU and $/hour."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from budget.hardware.catalog import Accelerator, load_catalog
from budget.planner.request import PlanRequest, ResolvedBudget
from budget.scaling import laws
from budget.scaling.calibrated import Calibration
from budget.training import time as costing

if TYPE_CHECKING:  # beyond needs numpy: imported only when a beyond option is given
    from budget.scaling.beyond import BeyondPlan
    from budget.training.cluster_plan import ClusterPlan

HOURS_GIVEN = ("gpu-hours", "usd")  # budgets that fix the hours: C follows from them at an MFU


def plan_mfu(req: PlanRequest, gpu: Accelerator) -> tuple[float, str, tuple[float, float]]:
    """(MFU, its source, the band): --mfu as given, else the device's published default."""
    if req.mfu_from_catalog:
        mfu, source = costing.device_mfu(gpu)
        return mfu, source, costing.band_including(mfu, req.mfu_band)
    return costing.check_mfu(req.mfu), costing.MFU_SOURCE, req.mfu_band


def is_timed(budget: ResolvedBudget, parallel: ClusterPlan | None) -> bool:
    """The headline comes from the chosen layout's step time: a layout was found and the budget
    did not fix the hours (then C is what the hours buy, at the MFU)."""
    return parallel is not None and parallel.search.best is not None \
        and budget.given_as not in HOURS_GIVEN


def plan_cost(req: PlanRequest, gpu: Accelerator, training_flops: float, mfu: float, source: str,
              band: tuple[float, float], parallel: ClusterPlan | None,
              timed: bool) -> tuple[costing.CostEstimate, float, str]:
    """(cost, MFU, its source). Timed: GPU-hours = steps x step time of the chosen layout / goodput
    x its GPUs, unless --mfu overrides it (labelled, with the prediction beside it). Otherwise the
    FLOPs at the MFU."""
    if timed and parallel is not None and parallel.search.best is not None:
        best = parallel.search.best
        predicted = best.step.predicted_mfu
        if req.mfu_from_catalog and parallel.billed_gpu_hours:
            peak = gpu.peak_flops(req.precision)
            mfu = training_flops / (peak * parallel.billed_gpu_hours * costing.SECONDS_PER_HOUR)
            source = (f"the step-time model of the chosen layout ({best.layout.describe()}): predicted "
                      f"MFU {predicted:.1%} x goodput {parallel.goodput:.0%} of billed hours; its "
                      "efficiency constants are fitted on published runs (budget validate)")
            band = costing.band_including(mfu, band)
            return (costing.estimate_cost(training_flops, gpu, precision=req.precision, mfu=mfu,
                                          num_gpus=best.layout.num_gpus,
                                          price_per_hour=req.price_per_hour, mfu_band=band),
                    mfu, source)
        source = (f"--mfu {mfu:g}, an override: the chosen layout's step-time model predicts "
                  f"{predicted:.1%} (x goodput {parallel.goodput:.0%})")
    return (costing.estimate_cost(training_flops, gpu, precision=req.precision, mfu=mfu,
                                  num_gpus=req.num_gpus, price_per_hour=req.price_per_hour,
                                  mfu_band=band), mfu, source)


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
    # -- serving price of inference (budget.serving.lifetime, `--serving`) --
    serving = None
    if req.serving is not None and req.inference_tokens:
        from budget.serving.lifetime import pricer

        serving = pricer(req.serving, load_catalog(req.catalog_paths).get(req.gpu), req.family,
                         req.seq_len, req.price_per_hour)
    # -- end serving price --
    return beyond.beyond_plan(
        compute_flops=budget.compute_flops, allocations=allocations, chosen_law=chosen,
        inference_tokens=req.inference_tokens, target_loss=req.target_loss,
        unique_tokens=req.unique_tokens, params_tokens=params_tokens, seq_len=req.seq_len,
        usd_per_flop=usd_per_flop, pricing=pricing,
        extra_laws=None if calibration is None else {"calibrated": calibration.law},
        serving=serving, serving_text="" if serving is None else req.serving.describe())
