"""The proposal's parts as frozen dataclasses: figures, the calibration section, comparison rows,
the report and the written files. `build` fills them, `html` and `figures` render them; all three
import this module and never each other, so the report package has no import circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from budget.planner import Plan, PlanRequest
from budget.scaling import laws
from budget.scaling.calibrated import Calibration
from budget.training import time as costing
from budget.training.memory import MemoryBreakdown


@dataclass(frozen=True)
class Figure:
    """One PNG figure of the proposal: `name` is the file stem, `png` its bytes."""

    name: str
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class CalibrationSection:
    """What `--calibrate EXP` adds: a law of the team's own, its evidence, figures and sources.

    `allocation` joins the literature laws; `recommend_reason` (if set) makes it the
    recommendation; `allocate` (C -> Allocation) lets the plots draw the calibrated frontier;
    `fitted_compute_range` (FLOPs) gives the extrapolation distance of the budget."""

    title: str
    paragraphs: tuple[str, ...] = ()
    figures: tuple[Figure, ...] = ()
    allocation: laws.Allocation | None = None
    recommend_reason: str | None = None
    allocate: Callable[[float], laws.Allocation] | None = field(default=None, compare=False)
    fitted_compute_range: tuple[float, float] | None = None
    table: tuple[tuple[str, ...], ...] = ()  # first row = headers
    sources: tuple[tuple[str, str], ...] = ()
    # the fitted law itself: when set, the plan is made exactly as `budget plan --calibrate`
    law: Calibration | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "paragraphs": list(self.paragraphs),
                "figures": [f.name for f in self.figures],
                "allocation": None if self.allocation is None else self.allocation.to_dict(),
                "recommend_reason": self.recommend_reason,
                "fitted_compute_range": None if self.fitted_compute_range is None
                else list(self.fitted_compute_range),
                "table": [list(r) for r in self.table], "sources": [list(s) for s in self.sources]}


@dataclass(frozen=True)
class BeyondSection:
    """One beyond-compute-optimal part of the proposal (inference-aware sizing, capped unique data,
    the loss you buy), built by `budget.report.beyond`. `parts` are ("text", str),
    ("table", rows with the headers first), ("bullets", items) or ("figure", name)."""

    title: str
    parts: tuple[tuple[str, Any], ...]
    figures: tuple[Figure, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "parts": [[kind, value] for kind, value in self.parts],
                "figures": [f.name for f in self.figures], "sources": [list(s) for s in self.sources]}


@dataclass(frozen=True)
class CompareRow:
    """The plan's run (same C) on one accelerator: GPU count, time, dollars, memory fit."""

    gpu: Any  # budget.planner.result.GpuSummary
    num_gpus: int
    count_reason: str
    cost: costing.CostEstimate
    memory: MemoryBreakdown
    fits: bool

    def to_dict(self) -> dict[str, Any]:
        return {"gpu": self.gpu.to_dict(), "num_gpus": self.num_gpus, "count_reason": self.count_reason,
                "cost": self.cost.to_dict(), "memory": self.memory.to_dict(), "fits": self.fits}


@dataclass(frozen=True)
class Report:
    """Everything the proposal says: the plan, the comparison, risks and sources."""

    request: PlanRequest
    plan: Plan
    compare: tuple[CompareRow, ...]  # the chosen accelerator first
    risks: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]  # (constant, source)
    title: str
    calibration: CalibrationSection | None = None
    beyond: tuple[BeyondSection, ...] = ()  # only when asked (budget.report.beyond)
    interval: tuple[BeyondSection, ...] = ()  # P10/P50/P90 and price table (budget.report.interval)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "plan": self.plan.to_dict(),
                "compare": [r.to_dict() for r in self.compare], "risks": list(self.risks),
                "sources": [{"constant": c, "source": s} for c, s in self.sources],
                "calibration": None if self.calibration is None else self.calibration.to_dict(),
                "beyond": [b.to_dict() for b in self.beyond],
                "interval": [b.to_dict() for b in self.interval]}


@dataclass(frozen=True)
class WrittenReport:
    """The files written (absolute paths), the report, and the MLflow run if one was logged."""

    report: Report
    out_dir: str
    markdown: str
    html: str
    plan_json: str
    figures: tuple[str, ...]
    mlflow: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": self.out_dir, "markdown": self.markdown, "html": self.html,
                "plan_json": self.plan_json, "figures": list(self.figures),
                "mlflow": self.mlflow, "plan": self.report.plan.to_dict(),
                "compare": [r.to_dict() for r in self.report.compare]}
