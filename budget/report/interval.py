"""The proposal's interval section: P10/P50/P90 of GPU-hours, days and dollars, the inputs and
their distributions, goodput with the hours lost to each cause, a tornado chart of which input
moves the cost most, and the cross-provider price table for the plan's device
(budget.training.interval, budget.training.goodput, budget.hardware.prices)."""

from __future__ import annotations

from typing import Any

from budget.hardware.catalog import Catalog
from budget.planner import Plan
from budget.render import hours, money
from budget.report.sections import BeyondSection, Figure
from budget.training import goodput as gp

TITLE = "Interval: P10 / P50 / P90"


def interval_sections(plan: Plan, catalog: Catalog) -> tuple[BeyondSection, ...]:
    """The section (none when the plan has no interval)."""
    iv = plan.interval
    if iv is None:
        return ()
    p, g = iv.percentiles, iv.goodput
    rows: list[tuple[str, ...]] = [("quantity", "P10", "P50", "P90", "point")]
    rows.append(("billed GPU-hours", *(hours(p["gpu_hours"][k]) for k in ("p10", "p50", "p90")),
                 hours(iv.point["gpu_hours"])))
    rows.append((f"wall clock (days, {g.num_gpus} GPUs)",
                 *(f"{p['wall_days'][k]:,.1f}" for k in ("p10", "p50", "p90")),
                 f"{iv.point['wall_days']:,.1f}"))
    if p["usd"] is not None:
        rows.append(("dollars", *(money(p["usd"][k]) for k in ("p10", "p50", "p90")),
                     money(iv.point["usd"])))
    inputs: list[tuple[str, ...]] = [("input", "distribution", "P10", "P90")]
    for i in iv.inputs:
        d = i.to_dict()
        inputs.append((i.name, d["distribution"], f"{d['p10']:.4g}", f"{d['p90']:.4g}"))
    lost = ", ".join(f"{k} {v:,.1f} h" for k, v in g.hours_lost.items())
    parts: list[tuple[str, Any]] = [
        ("text", f"{iv.draws:,} seeded draws (seed {iv.seed}; the same options give the same "
                 "interval). Billed time includes goodput; the point column is the single figure "
                 "with every input at its point."),
        ("table", tuple(rows)),
        ("text", f"Goodput {g.goodput:.1%} ({iv.goodput_source()}): "
                 f"{g.expected_interruptions:,.1f} interruptions expected; wall-clock hours lost: "
                 f"{lost}."),
        ("table", tuple(inputs)),
        ("figure", "tornado"),
    ]
    prices = price_table(plan, catalog)
    if len(prices) > 1:
        parts += [("text", "Price rows for this device (dated quotes; unverified = a secondary "
                           "quote not checked on the provider's page), each priced for the P50 "
                           "billed GPU-hours (a spot row's preemptions lower goodput further: "
                           "plan with --price-tier spot to include them):"), ("table", prices)]
    sources: tuple[tuple[str, str], ...] = (("goodput failure rates", "; ".join(s.source for s in gp.FAILURE_SOURCES.values())),
               ("checkpoint interval", "Young 1974 (CACM 17(9)); Daly 2006 (FGCS 22(3))"))
    sources += tuple((f"price {r.device} {r.tier} {r.provider}", f"{r.source} (read {r.date})")
                     for r in catalog.prices_for(plan.gpu.id) if not r.default)
    return (BeyondSection(TITLE, tuple(parts), figures=(tornado_figure(plan),), sources=sources),)


def price_table(plan: Plan, catalog: Catalog) -> tuple[tuple[str, ...], ...]:
    """Tier, provider, region, $/h, date, verified, and the P50 billed GPU-hours at that price."""
    from budget.hardware.prices import TIERS

    billed = plan.interval.percentiles["gpu_hours"]["p50"]
    rows: list[tuple[str, ...]] = [("tier", "provider", "region", "$/GPU-hour", "read", "verified",
                                    "cost at P50 GPU-hours")]
    for r in sorted(catalog.prices_for(plan.gpu.id),
                    key=lambda r: (TIERS.index(r.tier), r.usd_per_hour)):
        rows.append((r.tier, r.provider + (" (default)" if r.default else ""), r.region or "-",
                     f"${r.usd_per_hour:.2f}", r.date, "yes" if r.verified else "no",
                     money(billed * r.usd_per_hour)))
    return tuple(rows)


def tornado_figure(plan: Plan) -> Figure:
    """One bar per input: the cost (or GPU-hours) with that input at its P10 and at its P90."""
    from matplotlib import rc_context

    from budget.report.figures import _new, _png

    iv = plan.interval
    bars = list(iv.tornado)[::-1]  # widest on top
    base = iv.point["usd"] if iv.tornado_unit == "USD" else iv.point["gpu_hours"]
    fmt = money if iv.tornado_unit == "USD" else hours
    with rc_context({"text.parse_math": False}):
        fig, ax = _new(8, 1.0 + 0.5 * len(bars))
        for y, b in enumerate(bars):
            ax.barh(y, b["high"] - base, left=base, color="#c44e52")
            ax.barh(y, b["low"] - base, left=base, color="#4c72b0")
            ax.text(max(b["high"], base), y, f"  {fmt(b['low'])} - {fmt(b['high'])}",
                    va="center", fontsize=8)
        ax.axvline(base, color="black", linewidth=1)
        ax.set_yticks(range(len(bars)), [b["input"] for b in bars], fontsize=9)
        ax.set(xlabel="dollars" if iv.tornado_unit == "USD" else "billed GPU-hours",
               title="Which input moves the cost most (each from its P10 to its P90)")
        ax.margins(x=0.3)
        ax.grid(True, axis="x", alpha=0.3)
        png = _png(fig)
    return Figure("tornado", "Tornado: which input moves the cost most",
                  f"Each input from its P10 to its P90 with the others at their points; the line "
                  f"is the point figure ({fmt(base)}).", png)
