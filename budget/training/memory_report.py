"""`budget memory` in one call: `memory_report(MemoryRequest) -> MemoryReport`.

The same defaults as `budget plan` (ZeRO-3 over 8 GPUs, recompute auto = selective, or full when
selective fits at no GPU count), and with a GPU the layout search of `budget.training.cluster_plan`
(the fewest GPUs over every layout, and the layout on `num_gpus`). The CLI and `budget.memory()`
both call this, so they print and return the same object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from budget.hardware.catalog import load_catalog
from budget.models.arch import Architecture
from budget.models.families import DEFAULT_N_CTX
from budget.training.memory import MemoryBreakdown, training_memory

DEFAULT_ZERO_STAGE = 3  # as `budget plan`: ZeRO-3 / FSDP over the data-parallel GPUs
DEFAULT_NUM_GPUS = 8  # one 8-GPU node, the unit clouds rent: plan and memory both start here
DEFAULT_RECOMPUTE = "auto"
RECOMPUTE_CHOICES = ("auto", "none", "selective", "full")
MICRO_BATCHES_PER_GPU = 4  # memory has no budget: the layout search's batch is 4 micro-batches per GPU


@dataclass(frozen=True)
class MemoryRequest:
    """What `budget memory` takes, parsed: a shape and how it is trained."""

    shape: Architecture
    micro_batch: int = 1
    seq_len: int = DEFAULT_N_CTX
    precision: str = "bf16"
    optimizer: str = "adam"
    recompute: str = DEFAULT_RECOMPUTE
    zero_stage: int = DEFAULT_ZERO_STAGE
    num_gpus: int = DEFAULT_NUM_GPUS
    gpu: str | None = None
    catalog_paths: tuple[str, ...] = ()
    cluster: Any = None  # budget.training.cluster_plan.ClusterRequest; None: the default search
    params: float | None = None  # N for the model states, exactly (the shape sizes activations)
    model: Any = None  # budget.models.choice.ModelChoice: how the model was given


@dataclass(frozen=True)
class MemoryReport:
    """A MemoryBreakdown, the shape it was computed for, and (with a GPU) the layout search."""

    memory: MemoryBreakdown
    shape: Architecture
    layouts: Any = None  # ClusterPlan: the fewest GPUs over all layouts, and the layout on num_gpus
    model: Any = None  # budget.models.choice.ModelChoice

    def to_dict(self) -> dict[str, Any]:
        out = {**self.memory.to_dict(), "shape": self.shape.to_dict()}
        if self.model is not None:
            out["model"] = self.model.to_dict()
        if self.layouts is not None:
            s = self.layouts.search
            out["layouts"] = {"fewest_gpus": s.fewest_gpus,
                              "fewest_layout": None if s.fewest_layout is None
                              else s.fewest_layout.to_dict(),
                              **{k: v for k, v in self.layouts.to_dict().items()
                                 if k in ("layout", "memory_per_gpu_bytes", "warnings", "search")}}
        return out


def memory_report(req: MemoryRequest) -> MemoryReport:
    """Memory per GPU for `req`; with a GPU, whether it fits, min_gpus and the layout search."""
    memory_bytes, gpu_id, gpu = None, None, None
    if req.gpu:
        gpu = load_catalog(req.catalog_paths).get(req.gpu)
        memory_bytes, gpu_id = gpu.memory_bytes, gpu.id

    def at(recompute: str) -> MemoryBreakdown:
        return training_memory(req.shape, micro_batch=req.micro_batch, seq_len=req.seq_len,
                               precision=req.precision, optimizer=req.optimizer,
                               recompute=recompute, zero_stage=req.zero_stage,
                               num_gpus=req.num_gpus, gpu_memory_bytes=memory_bytes, gpu=gpu_id,
                               params=req.params)

    result = at("selective" if req.recompute == "auto" else req.recompute)
    if req.recompute == "auto" and gpu is not None and result.min_gpus is None:
        result = at("full")
    layouts = None
    if gpu is not None:
        from budget.training.cluster_plan import ClusterRequest, plan_cluster

        cluster = req.cluster or ClusterRequest(num_gpus=req.num_gpus, recompute=req.recompute)
        batch = MICRO_BATCHES_PER_GPU * req.num_gpus * req.micro_batch
        layouts = plan_cluster(req.shape, gpu, cluster, seq_len=req.seq_len,
                               tokens=0.0, useful_batch=batch, precision=req.precision,
                               optimizer=req.optimizer,
                               batch_source=f"{MICRO_BATCHES_PER_GPU} micro-batches per GPU "
                                            "(memory has no budget)")
    return MemoryReport(result, req.shape, layouts, req.model)
