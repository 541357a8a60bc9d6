"""The plan as a result: C, one allocation per law, the chosen one, time, dollars, memory, shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from budget import fixed_plan
from budget.hardware import energy as energy_model
from budget.hardware.catalog import Accelerator
from budget.models.arch import DEFAULT_ATTENTION_CONVENTION, Architecture
from budget.planner.request import ResolvedBudget
from budget.scaling import laws
from budget.training import time as costing
from budget.training.memory import MemoryBreakdown

if TYPE_CHECKING:
    from budget.scaling.beyond import BeyondPlan


@dataclass(frozen=True)
class Plan:
    """The answer: C, one allocation per law, the chosen one, time, dollars, memory and a shape."""

    compute_flops: float
    compute_pf_days: float
    h100_hours: float
    budget: ResolvedBudget
    gpu: GpuSummary
    precision: str
    mfu: float
    mfu_source: str
    allocations: tuple[laws.Allocation, ...]
    recommended: str
    recommended_reason: str
    cost: costing.CostEstimate
    memory: MemoryBreakdown
    shape: Architecture
    shape_params: float
    shape_params_count: str
    shape_error: float
    hyperparameters: laws.Hyperparameters
    notes: tuple[str, ...] = field(default=())
    calibration: Any = None  # budget.scaling.calibrated.PlanCalibration with --calibrate
    beyond: BeyondPlan | None = None  # only when asked (--inference-tokens, --target-loss, ...)
    energy: energy_model.EnergyEstimate | None = None  # None: no TDP in the catalog
    parallel: Any = None  # budget.training.cluster_plan.ClusterPlan when a cluster was asked for
    shape_law: str = ""  # the law whose N the shape and memory are sized for
    tokens: float = 0.0  # D the time is priced for (the chosen law's D*, or the fixed model's D)
    training_flops_per_token: float = 0.0  # the shape's real training FLOPs per token
    training_flops: float = 0.0  # per token x D: what GPU-hours and wall clock are priced on
    attention_convention: str = DEFAULT_ATTENTION_CONVENTION
    fixed: fixed_plan.FixedModel | None = None  # a plan for a given N (--model, --params)
    shape_source: str = ""
    time_source: str = "mfu"  # layout: the chosen layout's step time; mfu-override: --mfu over it; mfu
    finetune: Any = None  # budget.training.finetune.FinetuneMemory with --finetune
    interval: Any = None  # budget.training.interval.Interval: P10/P50/P90, goodput, tornado

    @property
    def ratio_to_6nd(self) -> float:
        """Real training FLOPs / C (C = 6ND as the laws count it)."""
        return self.training_flops / self.compute_flops

    def allocation(self, law: str) -> laws.Allocation:
        return next(a for a in self.allocations if a.law == law)

    def to_dict(self) -> dict[str, Any]:
        c = self.cost
        return {
            "compute_flops": self.compute_flops, "compute_pf_days": self.compute_pf_days,
            "h100_hours": self.h100_hours, "budget": self.budget.to_dict(), "gpu": self.gpu.to_dict(),
            "precision": self.precision, "mfu": self.mfu, "mfu_band": list(c.mfu_band),
            "mfu_source": self.mfu_source,
            "allocations": [a.to_dict() for a in self.allocations],
            "recommended": self.recommended, "recommended_reason": self.recommended_reason,
            "gpu_hours": c.gpu_hours, "gpu_hours_range": list(c.gpu_hours_range),
            "wall_clock_hours": c.wall_clock_hours,
            "wall_clock_hours_range": list(c.wall_clock_hours_range),
            "wall_clock_days": c.wall_clock_days, "num_gpus": c.num_gpus,
            "cost_usd": c.cost_usd, "cost_usd_range": None if c.cost_usd_range is None
            else list(c.cost_usd_range), "price_usd_per_hour": c.price_usd_per_hour,
            "price_source": c.price_source, "memory": self.memory.to_dict(),
            "min_gpus": self.memory.min_gpus,
            "shape": {**self.shape.to_dict(), "params": self.shape_params,
                      "params_count": self.shape_params_count,
                      "relative_error": self.shape_error, "law": self.shape_law or self.recommended,
                      "description": self.shape.describe(), "source": self.shape_source},
            "hyperparameters": self.hyperparameters.to_dict(), "notes": list(self.notes),
            "calibration": None if self.calibration is None else self.calibration.to_dict(), "tokens": self.tokens,
            "training_flops_per_token": self.training_flops_per_token,
            "training_flops": self.training_flops, "ratio_to_6nd": self.ratio_to_6nd,
            "attention_convention": self.attention_convention, "time_source": self.time_source,
            **({} if self.finetune is None else {"finetune": self.finetune.to_dict()}),
            "fixed_model": None if self.fixed is None else self.fixed.to_dict(),
            "energy": None if self.energy is None else self.energy.to_dict(),
            **_parallel_keys(self.parallel),
            "interval": None if self.interval is None else self.interval.to_dict(),
        } | ({} if self.beyond is None else {"beyond": self.beyond.to_dict()})


def _parallel_keys(parallel: Any) -> dict[str, Any]:
    """The layout section's JSON keys (units in the names), or nothing without one."""
    if parallel is None:
        return {}
    out = parallel.to_dict()
    best = parallel.search.best
    return {"parallel": out, "layout": None if best is None else best.layout.to_dict(),
            "memory_per_gpu_bytes": out["memory_per_gpu_bytes"], "step_time_s": out["step_time_s"],
            "compute_s": out["compute_s"], "communication_s": out["communication_s"],
            "bubble_s": out["bubble_s"], "predicted_mfu": out["predicted_mfu"],
            "goodput": parallel.goodput}


@dataclass(frozen=True)
class GpuSummary:
    """The GPU block of a plan: what the name resolved to, the peak used, memory and price."""

    id: str
    name: str
    requested: str
    alias_note: str
    peak_flops: float
    precision: str
    memory_bytes: float
    memory_basis: str
    price_tier: str | None
    price_usd_per_hour: float | None
    price_provider: str | None
    price_date: str | None
    peak_source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpu_summary(gpu: Accelerator, requested: str, precision: str) -> GpuSummary:
    """The GPU block of a plan: what the name resolved to and the peak used."""
    alias = "" if requested.strip().lower() == gpu.id.lower() else \
        f"'{requested}' means {gpu.name} ({gpu.id})"
    return GpuSummary(id=gpu.id, name=gpu.name, requested=requested, alias_note=alias,
                      peak_flops=gpu.peak_flops(precision), precision=precision,
                      memory_bytes=gpu.memory_bytes, memory_basis=gpu.memory_basis,
                      price_tier=gpu.price_tier, price_usd_per_hour=gpu.price_usd_per_hour,
                      price_provider=gpu.price_provider, price_date=gpu.price_date,
                      peak_source=gpu.sources.get("peak", ""))
