"""--mtbf-hours, --checkpoint-gbps, --restart-minutes, --price-tier, --provider, --draws, --seed:
the failure, checkpoint and price options of plan and report (budget.training.interval)."""

from __future__ import annotations

from typing import Any, Callable

import click

from budget.cli.common import POSITIVE, POSITIVE_INT, Number
from budget.hardware.prices import TIERS
from budget.training.goodput import DEFAULT_RESTART_MINUTES
from budget.training.interval import DEFAULT_DRAWS, DEFAULT_SEED

KEYS = ("mtbf_hours", "checkpoint_gbps", "restart_minutes", "price_tier", "provider", "draws", "seed")


def interval_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--mtbf-hours", type=POSITIVE, default=None,
                     help="GPU-hours between interruptions per GPU [default: Llama 3 405B's "
                          "fleet, 50,677; the interval draws between OPT-175B's and it]."),
        click.option("--checkpoint-gbps", type=POSITIVE, default=None,
                     help="Aggregate checkpoint write bandwidth, GB/s [default: 0.122 per GPU, "
                          "Llama 3's 2 TB/s over 16,384 GPUs]."),
        click.option("--restart-minutes", type=Number(positive=False, low=0.0, high=10080.0),
                     default=DEFAULT_RESTART_MINUTES,
                     show_default=True,
                     help="Minutes from an interruption to training again, before reloading "
                          "the checkpoint (our assumption)."),
        click.option("--price-tier", type=click.Choice(TIERS), default=None,
                     help="Price tier from the catalog's dated rows ('budget gpus --prices'); "
                          "spot brings its preemption rate into goodput."),
        click.option("--provider", default=None,
                     help="Provider of the price row (e.g. AWS, Lambda, TensorWave)."),
        click.option("--draws", type=POSITIVE_INT, default=DEFAULT_DRAWS, show_default=True,
                     help="Monte Carlo draws for the P10/P50/P90 interval."),
        click.option("--seed", type=click.IntRange(0), default=DEFAULT_SEED, show_default=True,
                     help="Seed of the interval's draws (same seed, same interval)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def pop_reliability(kw: dict[str, Any]) -> Any:
    """The options as a budget.training.interval.Reliability (popped from kw)."""
    from budget.training.interval import Reliability

    o = {k: kw.pop(k) for k in KEYS if k in kw}
    names = {"mtbf_hours": "mtbf_gpu_hours"}  # the rest keep their option's name
    return Reliability(**{names.get(k, k): v for k, v in o.items() if v is not None})


def render_interval(plan: Any) -> list[str]:
    """The plan's interval block: P10/P50/P90, goodput with hours lost, inputs, the tornado."""
    import textwrap

    from budget.render import hours, money

    def wrap(text: str, rest: str = "                ") -> list[str]:
        return textwrap.wrap(text, 100, subsequent_indent=rest, break_on_hyphens=False)

    iv = getattr(plan, "interval", None)
    if iv is None:
        return []
    p, g = iv.percentiles, iv.goodput
    lines = ["", f"Interval ({iv.draws:,} seeded draws, seed {iv.seed}; P10 / P50 / P90 of billed "
                 "time, goodput included)",
             "  GPU-hours     " + " / ".join(hours(p["gpu_hours"][k]) for k in ("p10", "p50", "p90"))
             + f"  (point {hours(iv.point['gpu_hours'])})",
             "  wall clock    " + " / ".join(f"{p['wall_days'][k]:,.1f}" for k in ("p10", "p50", "p90"))
             + f" days on {g.num_gpus} GPU(s)  (point {iv.point['wall_days']:,.1f})"]
    if p["usd"] is not None:
        lines += wrap("  cost          " + " / ".join(money(p["usd"][k]) for k in ("p10", "p50", "p90"))
                      + f"  (point {money(iv.point['usd'])}"
                      + (f", {iv.price.label()}" if iv.price else "") + ")")
    lost = ", ".join(f"{k} {v:,.1f} h" for k, v in g.hours_lost.items())
    lines += wrap(f"  goodput       {g.goodput:.1%}: {iv.goodput_source()}; "
                  f"{g.expected_interruptions:,.1f} interruptions expected; wall-clock hours lost: "
                  f"{lost}") + ["  inputs"]
    lines += [f"    {i.name:<18}{i.to_dict()['distribution']}" for i in iv.inputs]
    unit = money if iv.tornado_unit == "USD" else hours
    lines += wrap("  moves the " + ("cost" if iv.tornado_unit == "USD" else "GPU-hours")
                  + " most (each input P10-P90, others at their points): "
                  + "; ".join(f"{b['input']} {unit(b['low'])}-{unit(b['high'])}"
                              for b in iv.tornado[:3]), "    ")
    lines += [f"  note: {n}" for n in iv.notes]
    return lines
