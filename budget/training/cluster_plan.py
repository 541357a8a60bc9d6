"""The plan's cluster section: a layout for the plan's model on real GPUs, its memory, step time,
predicted MFU, wall clock with goodput, and the warnings a reviewer would raise.

Goodput: billed hours = steady-state hours / goodput, the goodput of the plan's failure and
checkpoint model (budget.training.goodput) or --goodput.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from budget.errors import BudgetError
from budget.hardware.catalog import Accelerator
from budget.models.arch import Architecture
from budget.training.communication import Cluster, Overlap, cluster_for
from budget.training.layout_search import (
    SearchResult,
    Setting,
    fixed_completed,
    search,
    steps_for,
    summary_fields,
)
from budget.training.parallel import Layout, parse_layout


@dataclass(frozen=True)
class ClusterRequest:
    """The layout options of `budget plan` and `budget memory`."""

    num_gpus: int
    layout: str | None = None  # 'tp=8,pp=4,...' fixes one
    global_batch: int | None = None  # sequences; default: the plan's useful (DeepSeek) batch
    gpus_per_node: int | None = None
    goodput: float | None = None  # None: the planner's failure model (budget.training.goodput)
    goodput_source: str = "--goodput"
    flash: bool = True
    recompute: str = "auto"
    days: float | None = None  # the deadline, when the budget was given as days
    overlap: Overlap = field(default_factory=Overlap)


@dataclass(frozen=True)
class ClusterPlan:
    """A layout on the plan's GPUs, or the reason there is none, with time and warnings."""

    search: SearchResult
    cluster: Cluster
    gpu: str
    num_gpus: int
    global_batch_sequences: int
    global_batch_source: str
    goodput: float
    goodput_source: str
    tokens: float
    steps: float | None
    wall_clock_hours: float | None  # steps x step time / goodput
    billed_gpu_hours: float | None
    assumed_mfu: float | None
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"search": self.search.to_dict(), "cluster": self.cluster.to_dict(),
                "gpu": self.gpu, "num_gpus": self.num_gpus, "global_batch_sequences": self.global_batch_sequences,
                "global_batch_source": self.global_batch_source, "goodput": self.goodput,
                "goodput_source": self.goodput_source, "tokens": self.tokens, "steps": self.steps,
                "wall_clock_hours": self.wall_clock_hours, "billed_gpu_hours": self.billed_gpu_hours,
                "assumed_mfu": self.assumed_mfu, "warnings": list(self.warnings),
                **summary_fields(self.search)}




def check_goodput(goodput: float) -> float:
    if not 0 < goodput <= 1:
        raise BudgetError(f"goodput {goodput!r} must be in (0, 1], e.g. 0.9 for 90% of hours training")
    return goodput


def plan_cluster(arch: Architecture, gpu: Accelerator, req: ClusterRequest, *, seq_len: int,
                 tokens: float, useful_batch: float, precision: str = "bf16",
                 optimizer: str = "adam", assumed_mfu: float | None = None,
                 batch_source: str = "the plan's useful batch (DeepSeek LLM eq. 1)") -> ClusterPlan:
    """Search (or evaluate `req.layout`) and turn the step time into wall clock and warnings."""
    # no goodput: no run to price (the memory command's layouts): steady state only
    goodput = 1.0 if req.goodput is None else check_goodput(req.goodput)
    cluster = cluster_for(gpu, precision, gpus_per_node=req.gpus_per_node)
    batch = req.global_batch or max(1, round(useful_batch))
    source = "--global-batch" if req.global_batch else batch_source
    setting = Setting(arch=arch, seq_len=seq_len, gpu_memory_bytes=gpu.memory_bytes, cluster=cluster,
                      precision=precision, optimizer=optimizer, recompute=req.recompute,
                      flash=req.flash, overlap=req.overlap)
    fixed, why = None, ""
    if req.layout:
        fixed = parse_layout(req.layout, Layout(flash=req.flash))
        if "dp=" not in req.layout.replace(" ", ""):  # dp fills the GPUs left over
            rest = fixed.tp * fixed.pp * fixed.cp
            if req.num_gpus % rest:
                raise BudgetError(f"--layout {req.layout}: tp x pp x cp = {rest} does not divide "
                                  f"--num-gpus {req.num_gpus}; give dp= too")
            fixed = parse_layout(f"dp={req.num_gpus // rest}", fixed)
        given = fixed
        fixed = fixed_completed(setting, fixed, req.layout, batch)
        chosen = [f"{k}={getattr(fixed, k)}" for k in ("mb", "ga", "recompute")
                  if f"{k}=" not in req.layout.replace(" ", "")]
        if chosen and (fixed.mb, fixed.recompute) != (given.mb, given.recompute):
            why = f"--layout completed with the fastest fitting {', '.join(chosen)}"
        else:
            why = f"--layout completed with {', '.join(chosen)}" if chosen else ""
    result = search(setting, req.num_gpus, batch, fixed, why)
    warnings = _warnings(req, result, batch, assumed_mfu, cluster)
    steps = wall = billed = None
    if result.best is not None:
        best = result.best
        steps = steps_for(tokens, best.layout, seq_len)
        wall = steps * best.step.step_time_s / goodput / 3600.0
        billed = wall * best.layout.num_gpus
        if req.days is not None and wall > req.days * 24.0 * 1.005:
            warnings.append(f"at the predicted step time the run takes {wall / 24:,.1f} days, over "
                            f"--days {req.days:g}: the plan's C assumes MFU {assumed_mfu or 0:.0%}; "
                            "re-plan with --mfu near the predicted MFU to fit the deadline")
    return ClusterPlan(search=result, cluster=cluster, gpu=gpu.id, num_gpus=req.num_gpus,
                       global_batch_sequences=batch, global_batch_source=source, goodput=goodput,
                       goodput_source=req.goodput_source if req.goodput is not None else "none (no run)",
                       tokens=tokens, steps=steps, wall_clock_hours=wall, billed_gpu_hours=billed,
                       assumed_mfu=assumed_mfu, warnings=tuple(warnings))


def _warnings(req: ClusterRequest, result: SearchResult, batch: int, assumed_mfu: float | None,
              cluster: Cluster) -> list[str]:
    out = [f"assumed: {a}" for a in cluster.assumed]
    if req.num_gpus > batch:
        out.append(f"{req.num_gpus} GPUs x micro-batch 1 = {req.num_gpus} sequences per step exceed "
                   f"the useful batch of {batch}: data parallelism alone cannot use them, so the "
                   "layout needs tensor, pipeline or context parallelism (or fewer GPUs)")
    best = result.best
    if best is None:
        return out
    lay = best.layout
    if lay.num_gpus < req.num_gpus:
        out.append(f"the layout uses {lay.num_gpus} of {req.num_gpus} GPUs: "
                   f"{req.num_gpus - lay.num_gpus} idle")
    elif lay.num_gpus > req.num_gpus:
        out.append(f"the layout needs {lay.num_gpus} GPUs, more than --num-gpus {req.num_gpus}")
    if lay.global_batch > batch:
        out.append(f"the layout's global batch {lay.global_batch} sequences exceeds the useful "
                   f"batch of {batch}")
    if not best.memory.fits:
        out.append(f"the layout does not fit: {best.memory.total_bytes / 2**30:,.1f} GiB per GPU "
                   f"of {best.memory.usable_bytes / 2**30:,.1f} GiB usable")
    gap = 0.0 if assumed_mfu is None else best.step.predicted_mfu - assumed_mfu
    if assumed_mfu is not None and abs(gap) > 0.10:
        out.append(f"predicted MFU {best.step.predicted_mfu:.0%} differs from the assumed "
                   f"{assumed_mfu:.0%} by {gap:+.0%}: the cost above uses the assumed MFU")
    if lay.tp > cluster.gpus_per_node:
        out.append(f"tp={lay.tp} spans nodes ({cluster.gpus_per_node} GPUs per node): TP traffic "
                   "goes over the NIC")
    return out
