"""`budget energy`: energy per operation (Horowitz 2014) and, with --gpu-hours, per training run."""

from __future__ import annotations

from typing import Any

import click

from budget.cli.common import ACCELERATOR, GRID_GCO2_PER_KWH, POSITIVE, POWER_FRACTION, PUE, emit, json_option
from budget.hardware.energy import DEFAULT_PUE


@click.command(name="energy")
@click.option("--gpu-hours", type=POSITIVE, help="Also the energy of a run of this many GPU-hours.")
@click.option("--gpu", type=ACCELERATOR, default="h100", show_default=True, help="Accelerator (its TDP).")
@click.option("--pue", type=PUE, default=DEFAULT_PUE, show_default=True, help="Datacenter PUE.")
@click.option("--power-fraction", type=POWER_FRACTION, default=None,
              help="Average board power / TDP (default: measured where known, else 1).")
@click.option("--grid-gco2-per-kwh", type=GRID_GCO2_PER_KWH, default=None,
              help="Grid carbon intensity (US average 429; Patterson et al. 2021 §2.4).")
@click.option("--catalog", "catalog_paths", multiple=True, type=click.Path(dir_okay=False))
@json_option
def command(as_json: bool, **kw: Any) -> None:
    """Why moving data costs more than computing on it: picojoules per operation, 45 nm.

    Integer and float add/multiply, SRAM and DRAM reads (Horowitz, ISSCC 2014), the DRAM-to-
    arithmetic ratios, and with --gpu-hours the kWh (and tCO2e) of a run: GPU-hours x TDP x
    power fraction x PUE (Patterson et al. 2021 §2.5).

    Example: budget energy --gpu-hours 1.3e6 --gpu h100 --grid-gco2-per-kwh 429
    """
    from budget.hardware.energy import energy_table, run_energy

    table = energy_table()
    run = None
    if kw["gpu_hours"] is not None:
        from budget.hardware.catalog import load_catalog

        gpu = load_catalog(kw["catalog_paths"]).get(kw["gpu"])
        run = run_energy(kw["gpu_hours"], gpu, power_fraction=kw["power_fraction"],
                         pue=kw["pue"], grid_gco2_per_kwh=kw["grid_gco2_per_kwh"])
        if run is None:
            raise click.UsageError(f"{gpu.id} has no TDP in the catalog; choose another --gpu")
    emit(_Result(table, run), as_json, render)


class _Result:
    def __init__(self, table: Any, run: Any) -> None:
        self.table, self.run = table, run

    def to_dict(self) -> dict[str, Any]:
        return {**self.table.to_dict(), "run": None if self.run is None else self.run.to_dict()}


def render(result: _Result) -> str:
    from budget.render import table

    t = result.table
    rows = [[o.operation, f"{o.picojoules:g}" if o.picojoules_high is None
             else f"{o.picojoules:g}-{o.picojoules_high:g}"] for o in t.operations]
    lines = ["Energy per operation (pJ)", table(["operation", "pJ"], rows), f"  source: {t.source}",
             "", "A DRAM read costs"]
    lines += [f"  {lo:,.0f}-{hi:,.0f}x {name.split(' / ')[1]}" for name, (lo, hi) in t.ratios.items()]
    r = result.run
    if r is not None:
        co2 = "" if r.tco2e is None else f" = {r.tco2e:,.1f} tCO2e at {r.grid_gco2_per_kwh:g} g/kWh"
        lines += ["", (f"Run: {r.accelerator_hours:,.0f} GPU-hours x {r.avg_power_w:,.0f} W "
                      f"(TDP {r.tdp_w:g} W x {r.power_fraction:.3g}: {r.power_source}) x PUE "
                      f"{r.pue:g} = {r.mwh:,.1f} MWh{co2}")]
    return "\n".join(lines)
