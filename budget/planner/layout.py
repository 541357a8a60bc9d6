"""Memory and layout of the plan's model: the ZeRO memory block and the cluster layout section."""

from __future__ import annotations

from typing import Any

from budget.hardware.catalog import Accelerator
from budget.models.arch import Architecture
from budget.planner.request import PlanRequest, ResolvedBudget
from budget.scaling import laws
from budget.training.memory import MemoryBreakdown, training_memory


def plan_memory(req: PlanRequest, shape: Architecture, gpu: Accelerator,
                params: float | None = None) -> MemoryBreakdown:
    """Memory at the request's settings; recompute 'auto' is selective, or full when selective
    activations leave no GPU count that fits. `params` (a fixed N) sizes the model states."""
    def at(recompute: str) -> MemoryBreakdown:
        return training_memory(shape, micro_batch=req.micro_batch, seq_len=req.seq_len,
                               precision=req.precision, optimizer=req.optimizer,
                               recompute=recompute, zero_stage=req.zero_stage,
                               num_gpus=req.num_gpus, gpu_memory_bytes=gpu.memory_bytes,
                               gpu=gpu.id, params=params)
    if req.recompute != "auto":
        return at(req.recompute)
    memory = at("selective")
    return memory if memory.min_gpus is not None else at("full")


def plan_layout(req: PlanRequest, shape: Architecture, gpu: Accelerator, budget: ResolvedBudget,
                tokens: float, mfu: float, probe: bool) -> Any:
    """The cluster section (budget.training.cluster_plan.ClusterPlan), or None for a CNN budget
    (no transformer to lay out), for fine-tuning (one replica, priced at the MFU) and for
    make_plan's probe passes."""
    if budget.given_as == "forward-flops" or probe or req.finetune:
        return None
    from budget.training.cluster_plan import ClusterRequest, plan_cluster

    cluster = req.cluster or ClusterRequest(num_gpus=req.num_gpus, recompute=(
        req.recompute if req.recompute in ("none", "selective", "full") else "auto"))
    hyper = laws.deepseek_hyperparameters(budget.compute_flops, req.seq_len)
    return plan_cluster(shape, gpu, cluster, seq_len=req.seq_len, tokens=tokens,
                        useful_batch=hyper.batch_sequences, precision=req.precision,
                        optimizer=req.optimizer,
                        assumed_mfu=None if req.mfu_from_catalog and budget.given_as not in
                        ("gpu-hours", "usd") else mfu)
