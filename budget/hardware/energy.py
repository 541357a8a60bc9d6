"""Energy: per operation (Horowitz 2014), per training run and per served token (Patterson 2021).

Per training run (Patterson et al. 2021, arXiv:2104.10350, §2.5): kWh = accelerator-hours x
average power per accelerator (kW) x PUE, and tCO2e = kWh x grid kgCO2e/kWh / 1000. Average power
= TDP x a power fraction: measured draw over TDP where Patterson et al. Table 3 measured it, else 1
(the TDP itself, as Meta's Llama 2/3 model cards and Luccioni et al. 2022 for BLOOM count it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from budget.errors import BudgetError
from budget.hardware.catalog import Accelerator

DEFAULT_POWER_FRACTION = 1.0  # TDP: Llama 2 model card "peak power capacity per GPU device"
POWER_FRACTION_SOURCE = "TDP (Meta Llama 2 model card; Luccioni et al. 2022 for BLOOM)"
# Measured average draw / TDP, Patterson et al. 2021 Table 3: V100 325 W on a 300 W part.
MEASURED_POWER_FRACTION = {"v100-sxm2-32gb": (325 / 300, ("Patterson et al. 2021 Table 3: "
                                              "V100 325 W measured / 300 W TDP"))}
DEFAULT_PUE = 1.10  # Patterson et al. 2021 Table 4: GPT-3's Microsoft datacenter (Google Iowa 1.11)
PUE_SOURCE = "Patterson et al. 2021 Table 4 (GPT-3, 1.10); US average 1.59 (§2.3)"
US_GRID_GCO2_PER_KWH = 429.0  # US average mix, Patterson et al. 2021 §2.4
HOURS_TO_S = 3600.0


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy of `accelerator_hours` at `avg_power_w` per accelerator and `pue`."""

    accelerator_hours: float
    tdp_w: float
    power_fraction: float
    power_source: str
    avg_power_w: float
    pue: float
    kwh: float
    grid_gco2_per_kwh: float | None
    tco2e: float | None

    @property
    def mwh(self) -> float:
        return self.kwh / 1000.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mwh": self.mwh}


def power_fraction_for(acc_id: str, override: float | None = None) -> tuple[float, str]:
    """(average power / TDP, its source) for an accelerator id."""
    if override is not None:
        if not 0 < override <= 2:
            raise BudgetError(f"power fraction {override!r} must be in (0, 2] (average draw / TDP)")
        return override, "given"
    return MEASURED_POWER_FRACTION.get(acc_id, (DEFAULT_POWER_FRACTION, POWER_FRACTION_SOURCE))


def energy_kwh(accelerator_hours: float, avg_power_w: float, pue: float = DEFAULT_PUE) -> float:
    """kWh = hours x average power (kW) x PUE (Patterson et al. 2021 §2.5)."""
    return accelerator_hours * avg_power_w / 1000.0 * pue


def training_energy(accelerator_hours: float, tdp_w: float, *, acc_id: str = "",
                    power_fraction: float | None = None, pue: float = DEFAULT_PUE,
                    grid_gco2_per_kwh: float | None = None) -> EnergyEstimate:
    """Energy (and with a grid intensity, emissions) of a run of `accelerator_hours`."""
    if accelerator_hours < 0 or tdp_w <= 0:
        raise BudgetError("accelerator-hours must be >= 0 and TDP > 0 for an energy estimate")
    if not 1.0 <= pue <= 3.0:
        raise BudgetError(f"PUE {pue!r} must be between 1.0 and 3.0")
    if grid_gco2_per_kwh is not None and not 0 <= grid_gco2_per_kwh <= 2000:
        raise BudgetError(f"grid intensity {grid_gco2_per_kwh!r} gCO2e/kWh must be in [0, 2000]")
    fraction, source = power_fraction_for(acc_id, power_fraction)
    power = tdp_w * fraction
    kwh = energy_kwh(accelerator_hours, power, pue)
    tco2e = None if grid_gco2_per_kwh is None else kwh * grid_gco2_per_kwh / 1e6
    return EnergyEstimate(accelerator_hours, tdp_w, fraction, source, power, pue, kwh,
                          grid_gco2_per_kwh, tco2e)


def run_energy(gpu_hours: float, acc: Accelerator, *, power_fraction: float | None = None,
               pue: float = DEFAULT_PUE,
               grid_gco2_per_kwh: float | None = None) -> EnergyEstimate | None:
    """`training_energy` for a catalog accelerator; None when the catalog has no TDP for it."""
    if acc.tdp_w is None:
        return None
    return training_energy(gpu_hours, acc.tdp_w, acc_id=acc.id, power_fraction=power_fraction,
                           pue=pue, grid_gco2_per_kwh=grid_gco2_per_kwh)


# ---- per operation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OperationEnergy:
    operation: str
    picojoules: float
    picojoules_high: float | None = None  # a range: DRAM 1.3-2.6 nJ

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


HOROWITZ_SOURCE = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
                   "ISSCC 2014, 45 nm, 0.9 V; memory rows are 64-bit accesses")
OPERATIONS: tuple[OperationEnergy, ...] = (
    OperationEnergy("int add 8-bit", 0.03), OperationEnergy("int add 32-bit", 0.1),
    OperationEnergy("fp add 16-bit", 0.4), OperationEnergy("fp add 32-bit", 0.9),
    OperationEnergy("int multiply 8-bit", 0.2), OperationEnergy("int multiply 32-bit", 3.1),
    OperationEnergy("fp multiply 16-bit", 1.1), OperationEnergy("fp multiply 32-bit", 3.7),
    OperationEnergy("SRAM read 8 KB (64-bit)", 10.0), OperationEnergy("SRAM read 32 KB (64-bit)", 20.0),
    OperationEnergy("SRAM read 1 MB (64-bit)", 100.0),
    OperationEnergy("DRAM read (64-bit)", 1300.0, 2600.0),
)


def operation(name: str) -> OperationEnergy:
    for op in OPERATIONS:
        if op.operation == name:
            return op
    raise BudgetError(f"no operation {name!r} in the energy table")


@dataclass(frozen=True)
class EnergyTable:
    operations: tuple[OperationEnergy, ...]
    source: str
    ratios: dict[str, tuple[float, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"operations": [o.to_dict() for o in self.operations], "source": self.source,
                "ratios": {k: list(v) for k, v in self.ratios.items()}}


def energy_table() -> EnergyTable:
    """The Horowitz table and how much more a DRAM access costs than arithmetic (derived)."""
    dram = operation("DRAM read (64-bit)")
    lo, hi = dram.picojoules, dram.picojoules_high or dram.picojoules
    ratios = {f"DRAM read / {name}": (lo / operation(name).picojoules, hi / operation(name).picojoules)
              for name in ("SRAM read 8 KB (64-bit)", "fp add 32-bit", "int add 32-bit",
                           "fp multiply 16-bit")}
    return EnergyTable(OPERATIONS, HOROWITZ_SOURCE, ratios)
