"""`budget report`: a pre-project cost proposal (Markdown + self-contained HTML with plots).

`build_report` makes the plan (the same `make_plan` call as `budget plan`), the same run costed on
each compared accelerator, the risks and the sources of every constant; `write_report` renders it
into a folder (`figures` draws the figures, `html` writes Markdown and HTML; the types live in `sections`);
`report_params`/`report_metrics` flatten it for a tracking run; `budget report --experiment`
hands them to `experiments.tracking.writer` (budget/ itself never talks to MLflow).

A calibrated law (issue 5, `--calibrate EXP`) plugs in as a `CalibrationSection`: its allocation
joins the literature laws (and may become the recommendation), its text and figures become a
section of the proposal, and its fitted compute range drives the extrapolation risk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from budget.errors import BudgetError
from budget.hardware.catalog import Catalog, load_catalog
from budget.planner import (
    BudgetInput,
    Plan,
    PlanRequest,
    gpu_summary,
    make_plan,
    plan_memory,
)
from budget.report.beyond import beyond_sections
from budget.report.interval import interval_sections
from budget.report.sections import (
    CalibrationSection,
    CompareRow,
    Report,
    WrittenReport,
)
from budget.scaling import laws
from budget.training import time as costing

# Hoffmann et al. 2022 §3.2 (Approach 2): 9 IsoFLOP budgets from 6e18 to 3e21 FLOPs.
CHINCHILLA_ISOFLOP_RANGE_FLOPS = (6e18, 3e21)
# DeepSeek-AI 2024 (arXiv:2401.02954) §3.1: batch size and learning rate fitted on 1e17 to 2e19 FLOPs.
DEEPSEEK_FIT_RANGE_FLOPS = (1e17, 2e19)
MARKDOWN_NAME, HTML_NAME, PLAN_JSON_NAME, FIGURE_DIR = ("proposal.md", "proposal.html",
                                                        "plan.json", "figures")


def build_report(req: PlanRequest, compare: Sequence[str] = (), *,
                 calibration: CalibrationSection | None = None, catalog: Catalog | None = None,
                 title: str | None = None, frontier: bool = False) -> Report:
    """The plan for `req` (as `budget plan`), the same C on each of `compare`, risks, sources."""
    catalog = catalog or load_catalog(req.catalog_paths)
    extra: tuple[laws.Allocation, ...] = ()
    recommend = None
    if calibration is not None and calibration.law is None and calibration.allocation is not None:
        extra = (calibration.allocation,)
        if calibration.recommend_reason:
            recommend = (calibration.allocation.law, calibration.recommend_reason)

    def plan_for(request: PlanRequest) -> Plan:  # the plan's laws, recommendation and calibration
        return make_plan(request, catalog=catalog, extra_allocations=extra, recommend=recommend,
                         calibration=None if calibration is None else calibration.law)

    plan = plan_for(req)
    rows = [compare_row(req, plan, req.gpu, catalog, keep_price=True, plan_for=plan_for)]
    seen = {rows[0].gpu.id}
    for name in compare:
        try:
            row = compare_row(req, plan, name, catalog, keep_price=False, plan_for=plan_for)
        except BudgetError as exc:
            raise BudgetError(f"--compare {name}: {exc}") from None
        if row.gpu.id not in seen:
            seen.add(row.gpu.id)
            rows.append(row)
    title = title or f"Training compute proposal: {plan.compute_flops:.2e} FLOPs"
    beyond = beyond_sections(plan, with_frontier=frontier, usd_per_flop=usd_per_flop(rows[0]))
    interval = interval_sections(plan, catalog)  # P10/P50/P90, tornado, price table (issue 23)
    return Report(request=req, plan=plan, compare=tuple(rows),
                  risks=tuple(risks(plan, rows, calibration)),
                  sources=tuple(sources(plan, rows, catalog, calibration, req))
                  + tuple(s for b in interval + beyond for s in b.sources), title=title,
                  calibration=calibration, beyond=beyond, interval=interval)


def usd_per_flop(row: CompareRow) -> float | None:
    """Dollars per FLOP on the plan's accelerator at its MFU (None without a price)."""
    c = row.cost
    if c.price_usd_per_hour is None:
        return None
    return c.price_usd_per_hour / (costing.SECONDS_PER_HOUR * c.peak_flops * c.mfu)


def compare_row(req: PlanRequest, plan: Plan, name: str, catalog: Catalog,
                keep_price: bool, plan_for: Callable[[PlanRequest], Plan]) -> CompareRow:
    """The plan's C on `name`: --num-gpus GPUs, or the fewest that fit when that is more.
    The shape is the plan's; --price-per-hour applies to --gpu only (keep_price). A plan timed by
    its layout is re-planned on that GPU by `plan_for` (the plan's own laws and calibration: its
    layout and step time, as `budget plan` would); on the plan's own GPU and count its cost is
    the plan's."""
    gpu = catalog.get(name)
    mfu = costing.device_mfu(gpu)[0] if req.mfu_from_catalog else costing.check_mfu(req.mfu)
    band = costing.band_including(mfu, req.mfu_band) if req.mfu_from_catalog else req.mfu_band
    price = req.price_per_hour if keep_price else None
    fixed_n = plan.memory.params  # the plan's model-state N (a plan for a given N keeps it)
    probe = plan_memory(replace(req, gpu=gpu.id), plan.shape, gpu, params=fixed_n)
    n, reason = req.num_gpus, "--num-gpus"
    if probe.min_gpus is None:
        reason = "does not fit at any GPU count"
    elif probe.min_gpus > req.num_gpus:
        n, reason = probe.min_gpus, f"fewest that fit (more than --num-gpus {req.num_gpus})"
    memory = plan_memory(replace(req, gpu=gpu.id, num_gpus=n), plan.shape, gpu, params=fixed_n)
    if plan.time_source != "mfu" and keep_price and gpu.id == plan.gpu.id and n == req.num_gpus:
        cost = plan.cost  # the plan itself: no second layout search
    elif plan.time_source != "mfu":  # one time model: that GPU's own layout and step time
        cost = plan_for(replace(req, gpu=gpu.id, num_gpus=n, price_per_hour=price)).cost
    else:
        cost = costing.estimate_cost(plan.training_flops, gpu, precision=req.precision, mfu=mfu,
                                     num_gpus=n, price_per_hour=price, mfu_band=band)
    return CompareRow(gpu=gpu_summary(gpu, name, req.precision), num_gpus=n, count_reason=reason,
                      cost=cost, memory=memory, fits=bool(memory.fits))


def same_run_request(req: PlanRequest, plan: Plan, row: CompareRow) -> PlanRequest:
    """The `budget plan` request that reproduces `row` (same C, that GPU and GPU count)."""
    return replace(req, budget=BudgetInput(flops=plan.compute_flops), gpu=row.gpu.id,
                   num_gpus=row.num_gpus,
                   price_per_hour=row.cost.price_usd_per_hour
                   if row.cost.price_source.startswith("given") else None)


def orders_of_magnitude(compute_flops: float, fitted: tuple[float, float]) -> float:
    """log10 distance of C outside the fitted range [low, high]; 0 inside it."""
    low, high = fitted
    if compute_flops > high:
        return math.log10(compute_flops / high)
    if compute_flops < low:
        return -math.log10(low / compute_flops)
    return 0.0


def _distance_text(compute_flops: float, fitted: tuple[float, float]) -> str:
    d = orders_of_magnitude(compute_flops, fitted)
    span = f"{fitted[0]:.1e}-{fitted[1]:.1e} FLOPs"
    if d == 0:
        return f"inside the fitted range {span}"
    side = "above" if d > 0 else "below"
    return f"{abs(d):.1f} orders of magnitude {side} the fitted range {span}"


def risks(plan: Plan, rows: Sequence[CompareRow],
          calibration: CalibrationSection | None) -> list[str]:
    """What could move the numbers: MFU, extrapolation distance, prices and their dates, memory."""
    c, C = plan.cost, plan.compute_flops
    lo, hi = c.mfu_band
    out = [f"MFU: the plan assumes {plan.mfu:.0%} of the dense {plan.precision} peak; over the "
           f"band {lo:.0%}-{hi:.0%} the run takes {c.gpu_hours_range[0]:,.0f}-"
           f"{c.gpu_hours_range[1]:,.0f} GPU-hours on {c.gpu}"
           + ("" if c.cost_usd_range is None else
              f" and costs ${c.cost_usd_range[0]:,.0f}-${c.cost_usd_range[1]:,.0f}")
           + ". Measure MFU on a short run of the real setup before committing."]
    if calibration is not None and calibration.fitted_compute_range is not None:
        out.append(f"Extrapolation of the calibrated law: the budget is "
                   f"{_distance_text(C, calibration.fitted_compute_range)} of the sweep.")
    out.append(f"Extrapolation of the literature laws: the budget is "
               f"{_distance_text(C, CHINCHILLA_ISOFLOP_RANGE_FLOPS)} of Chinchilla's IsoFLOP "
               f"profiles (Hoffmann et al. 2022 §3.2).")
    out.append(f"Batch size and learning rate come from DeepSeek LLM eq. 1; the budget is "
               f"{_distance_text(C, DEEPSEEK_FIT_RANGE_FLOPS)} they were fitted on.")
    priced = [f"{r.gpu.id} ${r.cost.price_usd_per_hour:.2f}/GPU-hour ({r.cost.price_source})"
              for r in rows if r.cost.price_usd_per_hour is not None]
    unpriced = [r.gpu.id for r in rows if r.cost.price_usd_per_hour is None]
    if priced:
        out.append("Prices: " + "; ".join(priced) + ". On-demand prices move monthly and reserved "
                   "capacity is usually cheaper: get a quote before committing.")
    if unpriced:
        out.append(f"No on-demand price in the catalog for {', '.join(unpriced)}: no cost given "
                   f"(--price-per-hour sets one for --gpu).")
    if plan.memory.min_gpus is not None and plan.memory.min_gpus > c.num_gpus:
        out.append(f"Memory: the model does not fit on {c.num_gpus} {c.gpu} GPU(s) (--num-gpus); "
                   f"the headline figures keep {c.num_gpus} for wall clock, the comparison table "
                   f"uses the {plan.memory.min_gpus} it needs.")
    out += [f"Memory on {r.gpu.id}: {r.memory.min_gpus_note}." for r in rows if not r.fits]
    if plan.energy is not None:  # energy hook (budget.hardware.energy, helper serve)
        e = plan.energy
        co2 = "" if e.tco2e is None else f", {e.tco2e:,.1f} tCO2e at {e.grid_gco2_per_kwh:g} gCO2e/kWh"
        out.append(f"Energy: {e.kwh:,.0f} kWh{co2} ({c.gpu_hours:,.0f} GPU-hours x "
                   f"{e.avg_power_w:,.0f} W average board power = TDP x {e.power_fraction:.3g} "
                   f"({e.power_source}) x PUE {e.pue:g}); measured draw and PUE move it.")
    return out


def mfu_sources(req: PlanRequest, rows: Sequence[CompareRow],
                catalog: Catalog, timed: bool = False) -> list[tuple[str, str]]:
    """The MFU each accelerator of the proposal was priced at, with where it comes from: the one
    --mfu given for all, or each device's own published training MFU (or the global default)."""
    if not req.mfu_from_catalog:
        lo, hi = req.mfu_band
        return [(f"MFU {req.mfu:g} on every accelerator, band {lo:g}-{hi:g}",
                 f"given with --mfu and --mfu-band (for scale: {costing.MFU_SOURCE})")]
    out = []
    for row in rows:
        lo, hi = row.cost.mfu_band
        if timed:  # one time model: each device's own layout and step time
            out.append((f"MFU {row.cost.mfu:.3g} on {row.gpu.id}, band {lo:.3g}-{hi:.3g}",
                        "the step-time model of that device's chosen layout, x goodput; its "
                        "efficiency constants are fitted on published runs (budget validate)"))
            continue
        mfu, source = costing.device_mfu(catalog.get(row.gpu.id))
        out.append((f"MFU {mfu:g} on {row.gpu.id}, band {lo:g}-{hi:g}", source))
    return out


def sources(plan: Plan, rows: Sequence[CompareRow], catalog: Catalog,
            calibration: CalibrationSection | None, req: PlanRequest) -> list[tuple[str, str]]:
    """(constant, source) for every number the proposal uses."""
    out = [
        ("energy kWh = GPU-hours x TDP x power fraction x PUE; tCO2e = kWh x grid intensity",
         "Patterson et al. 2021, arXiv:2104.10350, §2.5 and Table 4"),
        ("C = 6 N D (2 forward + 4 backward FLOPs per parameter per token)",
         "Kaplan et al. 2020, arXiv:2001.08361, §2.1"),
        ("1 PF-day = 8.64e19 FLOPs", "Kaplan et al. 2020, arXiv:2001.08361, §1.3"),
    ]
    out += [law_constants(law) for law in laws.LAWS.values()]
    out += [
        ("Chinchilla IsoFLOP budgets 6e18-3e21 FLOPs", "Hoffmann et al. 2022, arXiv:2203.15556, §3.2"),
        *mfu_sources(req, rows, catalog, plan.time_source == "layout"),
        ("16 bytes/parameter of mixed-precision Adam state; ZeRO stages 1-3",
         "Rajbhandari et al. 2020, arXiv:1910.02054, §3.1 and Fig. 1"),
        ("activations s b h (34 + 5 a s / h) bytes per layer; selective/full recomputation",
         "Korthikanti et al. 2022, arXiv:2205.05198, §4"),
        (f"{plan.memory.usable_fraction:.0%} of device memory usable",
         "our assumption (CUDA context, allocator and buffers)"),
        ("batch size 0.2920 C^0.3271 tokens, learning rate 0.3118 C^-0.125",
         plan.hyperparameters.source),
        ("shape: GPT-2-style decoder, d_model/n_layer near GPT-3's ratios",
         "Brown et al. 2020, arXiv:2005.14165, Table 2.1; Kaplan et al. 2020 Fig. 5"),
    ]
    for row in rows:
        acc = catalog.get(row.gpu.id)
        out.append((f"{acc.id} dense {plan.precision} peak {row.gpu.peak_flops / 1e12:g} TFLOP/s",
                    acc.sources.get("peak", "")))
        out.append((f"{acc.id} memory {acc.memory_gb:g} GB", acc.sources.get("memory", "")))
        price = row.cost
        if price.price_usd_per_hour is not None:
            where = "--price-per-hour" if price.price_source.startswith("given") else \
                f"{acc.sources.get('price', '')} ({acc.price_provider}, read {acc.price_date})"
            out.append((f"{acc.id} ${price.price_usd_per_hour:.2f}/GPU-hour", where))
    if calibration is not None:
        out += list(calibration.sources)
    return out


def law_constants(law: laws.Law) -> tuple[str, str]:
    """(constant, source) of one registered law: its reading and every constant it uses."""
    values = ", ".join(f"{c.name} {c.value:.6g}" for c in law.constants)
    cited = "; ".join(dict.fromkeys(c.source for c in law.constants))
    return (f"{law.id} ({law.title}): {values}", f"{law.source}; constants: {cited}")


def write_report(report: Report, out_dir: str | Path,
                 plan_json: dict[str, Any] | None = None) -> WrittenReport:
    """Render the figures, proposal.md, proposal.html and plan.json into `out_dir`."""
    from budget.report.figures import make_figures
    from budget.report.html import render_html, render_markdown
    from budget.report.safe_write import write_files

    figures = make_figures(report)
    if report.calibration is not None:
        figures += report.calibration.figures
    figures += tuple(f for b in report.interval + report.beyond for f in b.figures)
    payload = plan_json if plan_json is not None else report.plan.to_dict()
    plan_text = json.dumps(payload, indent=2, allow_nan=False)
    files = {f"{FIGURE_DIR}/{fig.name}.png": fig.png for fig in figures}
    files[PLAN_JSON_NAME] = (plan_text + "\n").encode("utf-8")
    files[MARKDOWN_NAME] = render_markdown(report, figures, FIGURE_DIR).encode("utf-8")
    files[HTML_NAME] = render_html(report, figures, plan_text).encode("utf-8")
    out = write_files(Path(out_dir), files, folders=(FIGURE_DIR,))
    return WrittenReport(report=report, out_dir=str(out), markdown=str(out / MARKDOWN_NAME),
                         html=str(out / HTML_NAME), plan_json=str(out / PLAN_JSON_NAME),
                         figures=tuple(str(out / FIGURE_DIR / f"{fig.name}.png") for fig in figures))


def report_params(report: Report) -> dict[str, str]:
    """The assumptions, flattened for MLflow params."""
    req, plan = report.request, report.plan
    return {"compute_flops": f"{plan.compute_flops:.6g}", "budget_given_as": plan.budget.given_as,
            "gpu": plan.gpu.id, "precision": plan.precision, "mfu": f"{plan.mfu:g}",
            "mfu_band": f"{req.mfu_band[0]:g},{req.mfu_band[1]:g}", "num_gpus": str(req.num_gpus),
            "recommended": plan.recommended,
            "compare": ",".join(r.gpu.id for r in report.compare[1:])}


def report_metrics(plan: Plan) -> dict[str, float]:
    """The headline figures, as MLflow metrics."""
    rec = plan.allocation(plan.recommended)
    out = {"params": rec.params, "tokens": rec.tokens, "gpu_hours": plan.cost.gpu_hours,
           "wall_clock_hours": plan.cost.wall_clock_hours}
    if plan.cost.cost_usd is not None:
        out["cost_usd"] = plan.cost.cost_usd
    return out
