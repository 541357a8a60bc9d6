"""make_plan: the one call `budget plan` makes, step by step through the planner's modules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from budget.hardware import energy as energy_model
from budget.hardware.catalog import Catalog, load_catalog
from budget.models import families
from budget.planner.allocation import allocate, law_shape, recommend_law, sweep_setup
from budget.planner.cost import is_timed, plan_beyond, plan_cost, plan_mfu
from budget.planner.fixed import finetuning, fixed_params, fixed_report, fixed_shape, plan_budget
from budget.planner.layout import plan_layout, plan_memory
from budget.planner.notes import fixed_budget_notes, flop_notes, plan_notes
from budget.planner.request import REFERENCE_GPU, PlanRequest
from budget.planner.result import Plan, gpu_summary
from budget.scaling import laws
from budget.scaling.calibrated import Calibration, PlanCalibration
from budget.training import interval as interval_model
from budget.training import time as costing


def make_plan(req: PlanRequest, *, catalog: Catalog | None = None,
              extra_allocations: Sequence[laws.Allocation] = (),
              recommend: tuple[str, str] | None = None,
              calibration: Calibration | None = None) -> Plan:
    """Build the plan. `extra_allocations` join the literature laws; `recommend` = (law id,
    reason) overrides the default recommendation. A `calibration` (the team's fitted law) adds
    the `calibrated` allocation and is recommended unless the budget lies more than 1,000x
    beyond its largest swept budget.

    A budget of hours or dollars (--gpu-hours, --budget-usd, --days) buys real training FLOPs, not
    6ND: C is the FLOPs those hours deliver divided by the planned model's real-FLOP ratio, so the
    run fits the hours given. The ratio is found with probe passes (no layout search, no
    beyond-optimal part: neither moves the FLOPs), then the chosen C is planned once in full."""
    catalog = catalog or load_catalog(req.catalog_paths)
    hours_budget = (req.budget.gpu_hours is not None or req.budget.budget_usd is not None) \
        and req.model is None
    plan = _make_plan(req, catalog, extra_allocations, recommend, calibration, 1.0,
                      probe=hours_budget)
    if not hours_budget:
        return plan
    deliverable = plan.compute_flops  # what the hours deliver at the MFU: real FLOPs to spend
    ratio, tried = plan.ratio_to_6nd, []
    for _ in range(6):  # the shape is discrete in C, so its ratio can jump: correct and keep the best
        probe = _make_plan(req, catalog, extra_allocations, recommend, calibration, ratio,
                           probe=True)
        tried.append((probe.training_flops, ratio))
        if 0.995 * deliverable <= probe.training_flops <= deliverable:
            break
        ratio *= probe.training_flops / (0.998 * deliverable)  # aim just inside the hours
    within = [t for t in tried if t[0] <= deliverable * (1 + 1e-9)]
    best = max(within) if within else min(tried)
    return _make_plan(req, catalog, extra_allocations, recommend, calibration, best[1])


def _make_plan(req: PlanRequest, catalog: Catalog, extra_allocations: Sequence[laws.Allocation],
               recommend: tuple[str, str] | None, calibration: Calibration | None,
               flop_ratio: float, probe: bool = False) -> Plan:
    """One pass of make_plan; an hours or money budget's C is divided by `flop_ratio`. A `probe`
    pass (make_plan's search for that ratio) skips the layout search and the beyond part."""
    gpu = catalog.get(req.gpu)
    mfu, mfu_source, band = plan_mfu(req, gpu)
    fixed_n = fixed_params(req)
    fixed = fixed_shape(req, fixed_n) if fixed_n else None
    law_for_d = req.law or (recommend or (laws.RECOMMENDED_LAW, ""))[0]
    budget, only_n = plan_budget(req, gpu, mfu, flop_ratio, fixed_n,
                                 None if fixed is None else fixed[0], law_for_d)
    C = budget.compute_flops
    effect = fixed_budget_notes(budget, req.law or recommend_law(recommend), mfu, band)
    if effect:
        budget = replace(budget, mfu_band_effect=effect[0])
    alloc = allocate(req, C, extra_allocations, calibration, recommend)
    setup_notes: list[str] = []
    if alloc.chosen_id == "calibrated" and calibration is not None and not fixed_n:
        req, setup_notes = sweep_setup(req, calibration)
    if fixed_n and fixed:
        b = req.budget
        tokens = b.tokens if b.tokens is not None else C / (laws.FLOPS_PER_PARAM_TOKEN * fixed_n)
        (shape, source), size, count = fixed, fixed_n, "total"
    else:
        tokens, size, count, shape, source = law_shape(req, alloc)
    counted = float(fixed_n) if req.model is not None and fixed_n else \
        float(families.count_of(shape, count))
    # model states: --params N exactly; a named model's own total (all experts of an MoE)
    memory = plan_memory(req, shape, gpu, params=fixed_n if req.model is None else None)
    # the price tier and the modelled goodput (budget.training.interval), before the layout bills
    rel = req.reliability or interval_model.Reliability()
    prices = catalog.prices_for(gpu.id)
    tier = interval_model.tier_row(prices, gpu.id, rel, req.price_per_hour)
    if tier is not None:
        req = replace(req, price_per_hour=tier.usd_per_hour)
    run_goodput = None
    if not probe and (req.cluster is None or req.cluster.goodput is None):
        row = tier or (None if req.price_per_hour is not None else
                       interval_model.choose_price(prices, gpu.id, rel))
        run_goodput = interval_model.run_goodput(counted, req.num_gpus, 1.0, row, rel)
        req = replace(req, cluster=replace(
            req.cluster or default_cluster(req), goodput=run_goodput.goodput,
            goodput_source=interval_model.goodput_source(run_goodput)))
    parallel = plan_layout(req, shape, gpu, budget, tokens, mfu, probe)
    timed = is_timed(budget, parallel)
    tuning = None
    if budget.given_as == "forward-flops":  # a network's own FLOPs: no language-model ratio
        per_token, training_flops = C / tokens, C
    elif req.finetune:
        tuning, per_token = finetuning(req, shape, gpu, fixed_n)
        training_flops = per_token * tokens
    else:  # timed: model FLOPs, the layout's recomputation is in its step time
        per_token = shape.training_flops_per_token(
            req.seq_len, req.attention, recompute=memory.recompute == "full" and not timed)
        training_flops = per_token * tokens
    cost, mfu, mfu_source = plan_cost(req, gpu, training_flops, mfu, mfu_source, band, parallel, timed)
    if tier is not None:
        cost = replace(cost, price_source=tier.label())
    run_interval = None if probe else plan_interval(req, cost, alloc.rows, counted, prices, rel,
                                                   bool(fixed_n), timed, parallel)
    report = fixed_report(req, shape, fixed_n, tokens, not only_n, C, alloc.chosen, gpu, mfu,
                          per_token) if fixed_n else None
    reference = catalog.get(REFERENCE_GPU)
    return Plan(
        compute_flops=C, compute_pf_days=C / laws.PF_DAY_FLOPS,
        h100_hours=costing.gpu_hours_for(C, reference.peak_flops("bf16"), mfu),
        budget=budget, gpu=gpu_summary(gpu, req.gpu, req.precision), precision=req.precision,
        mfu=mfu, mfu_source=mfu_source, allocations=alloc.rows, recommended=alloc.recommended,
        recommended_reason=alloc.reason, cost=cost, memory=memory, shape=shape,
        shape_params=float(counted), shape_params_count=count,
        shape_error=counted / size - 1.0,
        hyperparameters=laws.deepseek_hyperparameters(C, req.seq_len),
        notes=tuple(setup_notes + plan_notes(req, budget, memory, counted / size - 1.0, calibration, C)
                    + flop_notes(req, memory, training_flops / C, fixed_n, timed, parallel)),
        calibration=None if calibration is None else PlanCalibration(calibration, C),
        tokens=tokens, training_flops_per_token=per_token, training_flops=training_flops,
        attention_convention=req.attention, fixed=report, shape_source=source,
        energy=energy_model.run_energy(cost.gpu_hours, gpu, power_fraction=req.power_fraction,
                                       pue=req.pue, grid_gco2_per_kwh=req.grid_gco2_per_kwh),
        beyond=None if probe else plan_beyond(req, budget, alloc.rows, alloc.chosen_id, cost,
                                              calibration),
        parallel=parallel, shape_law=alloc.chosen_id,
        time_source="mfu" if not timed else "layout" if req.mfu_from_catalog else "mfu-override",
        finetune=tuning, interval=run_interval)


def plan_interval(req: PlanRequest, cost: costing.CostEstimate, allocations: Sequence[laws.Allocation],
                  params: float, prices: Sequence[Any], rel: Any, fixed: bool, timed: bool,
                  parallel: Any) -> Any:
    """P10/P50/P90 of the plan's hours, days and dollars (budget.training.interval). A timed plan's
    MFU is billed hours' (goodput included): the interval draws the step time's own MFU and its
    goodput apart, so it is handed the steady-state MFU (billed MFU / goodput)."""
    if timed and parallel is not None and not req.mfu_from_catalog:
        timed = False  # --mfu overrides the step time: the MFU is the steady-state one as given
    residuals: tuple[float, ...] = ()
    if timed and parallel is not None and parallel.goodput:
        from budget.hardware.efficiency import efficiency

        steady = cost.mfu / parallel.goodput
        cost = replace(cost, mfu=steady, mfu_band=costing.band_including(steady, cost.mfu_band))
        residuals = efficiency().loo_log_ratios
    return interval_model.plan_interval(cost, allocations, params, prices, rel, req.price_per_hour,
                                        fixed=fixed, step_residuals=residuals)


def default_cluster(req: PlanRequest) -> Any:
    """The layout request when no layout option was given: search on the plan's GPUs."""
    from budget.training.cluster_plan import ClusterRequest

    return ClusterRequest(num_gpus=req.num_gpus, recompute=(
        req.recompute if req.recompute in ("none", "selective", "full") else "auto"))
