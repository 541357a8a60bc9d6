"""`budget gpus`: list the accelerator catalog (dense peaks, memory, interconnect, price, sources)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from budget.cli.common import ACCELERATOR, emit, json_option
from budget.hardware.catalog import PRECISIONS


@click.command(name="gpus")
@click.option("--catalog", "catalog_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Extra catalog TOML adding or overriding accelerators (repeatable; also BUDGET_CATALOG).")
@click.option("--sources", is_flag=True, help="Also print each row's sources.")
@click.option("--prices", is_flag=True,
              help="Print the dated price rows instead: every provider and tier (on-demand, spot, "
                   "reserved-1y, reserved-3y) per device.")
@click.option("--gpu", "gpu_names", multiple=True, type=ACCELERATOR,
              help="With --prices: only these accelerators (repeatable).")
@json_option
def command(catalog_paths: tuple[str, ...], sources: bool, prices: bool,
            gpu_names: tuple[str, ...], as_json: bool) -> None:
    """List the accelerator catalog: dense peak TFLOP/s per precision, memory, price.

    Peaks are dense (no 2:4 sparsity); BF16/FP16 with FP32 accumulate; int8 in TOPS. Prices are
    on-demand USD per accelerator-hour with provider and date: anchors, not quotes.

    Example: budget gpus --prices --gpu h100 --gpu mi300x
    """
    from budget.hardware.catalog import load_catalog

    catalog = load_catalog(catalog_paths)
    if gpu_names and not prices:
        raise click.UsageError("--gpu chooses the rows of --prices; give --prices too")
    if prices:
        names = tuple(catalog.get(n).id for n in gpu_names) or tuple(a.id for a in catalog.accelerators)
        emit(PriceTable(tuple(r for n in names for r in catalog.prices_for(n))), as_json,
             render_prices)
        return
    emit(catalog, as_json, lambda c: render_catalog(c, sources))


@dataclass(frozen=True)
class PriceTable:
    """The price rows `budget gpus --prices` prints (each device's default row first)."""

    rows: tuple[Any, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"prices": [r.to_dict() for r in self.rows]}


def render_prices(t: PriceTable) -> str:
    """One line per dated price: device, tier, provider, region, $/h, date, spot interruptions."""
    from budget.hardware.prices import TIERS
    from budget.render import table

    rows = [[r.device + (" *" if r.default else ""), r.tier, r.provider, r.region or "-",
             f"{r.usd_per_hour:.2f}", r.date, "yes" if r.verified else "no",
             f"{r.preemptions_per_gpu_hour * 1e6:.0f}" if r.tier == "spot" else "-"]
            for r in sorted(t.rows, key=lambda r: (r.device, TIERS.index(r.tier), r.usd_per_hour))]
    return "\n".join([
        table(["device", "tier", "provider", "region", "$/h", "read", "verified",
               "spot preempt/1e6 GPU-h"], rows),
        "  $/h per accelerator; * the device's default price (plan without --price-tier/--provider);",
        "  verified no: a secondary or aggregated quote, not checked on the provider's own page;",
        "  spot preemptions from the provider's interruption band per 8-GPU instance-month, or the",
        "  AWS p5 band where none is published; sources: budget gpus --prices --json"])


def render_clusters(catalog: Any) -> str:
    """Memory as the device reports it, cluster links, the default MFU and the price tier."""
    from budget.render import table
    from budget.training.memory import USABLE_FRACTION
    from budget.training.time import DEFAULT_MFU

    def num(x: Any, fmt: str = "g") -> str:
        return "-" if x is None else format(x, fmt)

    rows = []
    for acc in catalog.accelerators:
        memory = f"{acc.memory_mib:,.0f} MiB" if acc.memory_mib else f"{acc.memory_gb:g} GB"
        if acc.devices_per_package > 1:
            memory += f" ({acc.devices_per_package} devices)"
        mfu = f"{acc.default_mfu:.1%}" if acc.default_mfu else f"{DEFAULT_MFU:.0%} global"
        rows.append([acc.id, memory, num(acc.gpus_per_node), num(acc.scale_up_gbs_per_dir),
                     num(acc.scale_out_gbs_per_dir), mfu, acc.price_tier or "-"])
    return "\n".join([
        table(["id", "memory (as reported)", "per node", "up GB/s/dir", "out GB/s/dir",
               "default MFU", "price tier"], rows),
        f"  memory: nvidia-smi MiB where the catalog has it, else the vendor's decimal GB; "
        f"{USABLE_FRACTION:.0%} of it is treated as usable",
        "  up: scale-up link (NVLink, Infinity Fabric, ICI) per device and direction; out: the NIC",
        "  per device; default MFU: a published training run on that device (--sources), else the",
        "  global default; a price outside the tier is left out (see notes) so that rows compare"])


def render_catalog(catalog: Any, sources: bool = False) -> str:
    from budget.render import table

    rows = []
    for acc in catalog.accelerators:
        peaks = [f"{acc.peak_tflops[p]:g}" if p in acc.peak_tflops else "-" for p in PRECISIONS]
        price = "-" if acc.price_usd_per_hour is None else f"{acc.price_usd_per_hour:.2f}"
        rows.append([acc.id, ",".join(acc.aliases) or "-", *peaks, f"{acc.memory_gb:g}",
                     f"{acc.memory_bandwidth_gbs:g}", "-" if acc.interconnect_gbs_bidir is None
                     else f"{acc.interconnect_gbs_bidir:g}", price, acc.price_date or "-"])
    headers = ["id", "aliases", *PRECISIONS, "mem GB", "GB/s", "link GB/s", "$/h", "price date"]
    out = [table(headers, rows),
           "  dense TFLOP/s (int8: TOPS); link = scale-up interconnect, bidirectional per device",
           "", render_clusters(catalog)]
    if sources:
        for acc in catalog.accelerators:
            out.append(f"\n{acc.id}: {acc.name}")
            out += [f"  {k}: {v}" for k, v in acc.sources.items()]
            if acc.notes:
                out.append(f"  notes: {acc.notes}")
    return "\n".join(out)
