"""The plan's request and its budget: whichever form the user gave (FLOPs, PF-days, GPU-hours,
dollars, N and D, a network's forward FLOPs x samples x epochs, a target loss, or a fixed model's
compute-optimal D) as C in FLOPs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from budget.errors import BudgetError
from budget.hardware import energy as energy_model
from budget.hardware.catalog import Accelerator
from budget.models import families
from budget.models.arch import DEFAULT_ATTENTION_CONVENTION, Architecture
from budget.models.families import DEFAULT_N_CTX
from budget.scaling import laws
from budget.training import time as costing
from budget.training.memory_report import DEFAULT_NUM_GPUS  # one 8-GPU node: declared once

# Budgets outside this range get a warning: the laws were fitted on 6e18-3e21 FLOPs (Hoffmann et al.
# 2022 Figure 3) and the largest reported runs are ~4e25 (Llama 3.1 405B: 3.8e25, Meta 2024 §3.1).
SANE_COMPUTE_FLOPS = (1e15, 1e28)
REFERENCE_GPU = "h100-sxm-80gb"  # "H100-hours" are quoted on the H100 SXM dense BF16 peak


@dataclass(frozen=True)
class BudgetInput:
    """Exactly one way of giving the budget; the others stay None."""

    flops: float | None = None
    pf_days: float | None = None
    gpu_hours: float | None = None
    budget_usd: float | None = None
    params: float | None = None
    tokens: float | None = None
    forward_flops: float | None = None
    samples: float | None = None
    epochs: float | None = None


@dataclass(frozen=True)
class ResolvedBudget:
    """C in FLOPs and how it was derived."""

    compute_flops: float
    given_as: str
    formula: str
    mfu_band_effect: str = ""  # a budget fixed in money or hours: what the MFU band moves instead

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_budget(b: BudgetInput, gpu: Accelerator, precision: str, mfu: float,
                   price_per_hour: float | None = None) -> ResolvedBudget:
    """Turn exactly one budget form into FLOPs; BudgetError names conflicts or missing partners."""
    forms = {
        "--flops": b.flops is not None, "--pf-days": b.pf_days is not None,
        "--gpu-hours": b.gpu_hours is not None, "--budget-usd": b.budget_usd is not None,
        "--params/--tokens": b.params is not None or b.tokens is not None,
        "--forward-flops/--samples/--epochs": any(
            x is not None for x in (b.forward_flops, b.samples, b.epochs)),
    }
    given = [name for name, present in forms.items() if present]
    if not given:
        raise BudgetError("no budget given; give exactly one of --flops, --pf-days, --gpu-hours, "
                          "--budget-usd, --params with --tokens, or --forward-flops with "
                          "--samples and --epochs")
    if len(given) > 1:
        raise BudgetError(f"conflicting budgets {' and '.join(given)}; give exactly one")
    if b.flops is not None:
        return ResolvedBudget(laws.check_compute(b.flops), "flops", "C given in FLOPs")
    if b.pf_days is not None:
        return ResolvedBudget(laws.check_compute(b.pf_days * laws.PF_DAY_FLOPS), "pf-days",
                              f"C = {b.pf_days:g} PF-days x 8.64e19 FLOPs/PF-day")
    if b.gpu_hours is not None:
        c = costing.compute_from_gpu_hours(b.gpu_hours, gpu, precision, mfu)
        return ResolvedBudget(laws.check_compute(c), "gpu-hours",
                              f"C = {b.gpu_hours:g} {gpu.id}-hours x 3600 s x {precision} peak x MFU {mfu:g}")
    if b.budget_usd is not None:
        c = costing.compute_from_usd(b.budget_usd, gpu, precision, mfu, price_per_hour)
        return ResolvedBudget(laws.check_compute(c), "usd",
                              f"C = ${b.budget_usd:g} / price per {gpu.id}-hour x 3600 s x peak x MFU {mfu:g}")
    if b.params is not None or b.tokens is not None:
        if b.params is None or b.tokens is None:
            raise BudgetError("--params and --tokens go together (C = 6 N D); give both")
        return ResolvedBudget(laws.check_compute(6.0 * b.params * b.tokens), "params-tokens",
                              f"C = 6 N D with N = {b.params:g}, D = {b.tokens:g}")
    if b.forward_flops is None or b.samples is None or b.epochs is None:
        raise BudgetError("--forward-flops, --samples and --epochs go together (C = 3 F S E); give all three")
    return ResolvedBudget(laws.check_compute(3.0 * b.forward_flops * b.samples * b.epochs),
                          "forward-flops", "C = 3 x forward FLOPs x samples x epochs")


@dataclass(frozen=True)
class PlanRequest:
    """Everything `budget plan` takes, already parsed."""

    budget: BudgetInput
    gpu: str = "h100"
    precision: str = "bf16"
    mfu: float = costing.DEFAULT_MFU
    mfu_band: tuple[float, float] = costing.DEFAULT_MFU_BAND
    num_gpus: int = DEFAULT_NUM_GPUS
    price_per_hour: float | None = None
    law: str | None = None  # the law whose N sizes the shape and memory; default: recommended
    seq_len: int = DEFAULT_N_CTX
    seq_len_given: bool = False  # --seq-len given: a calibrated shape keeps it (else the sweep's)
    vocab_size: int | None = None  # None: the family's (llama 32000, gpt2 50257)
    micro_batch: int = 1
    zero_stage: int = 3
    recompute: str = "auto"  # selective, or full when selective does not fit at any GPU count
    optimizer: str = "adam"
    catalog_paths: tuple[str, ...] = ()
    # beyond compute-optimal (budget.scaling.beyond): None = not asked
    inference_tokens: float | None = None  # lifetime tokens served (Sardana & Frankle 2023)
    target_loss: float | None = None  # the loss to reach as cheaply as possible
    unique_tokens: float | None = None  # cap on unique training tokens (Muennighoff et al. 2023)
    serving: Any = None  # budget.serving.lifetime.ServingTarget: price inference as served
    pue: float = energy_model.DEFAULT_PUE  # energy hook (budget.hardware.energy)
    power_fraction: float | None = None
    grid_gco2_per_kwh: float | None = None
    mfu_from_catalog: bool = False  # use the GPU's published default MFU (else the global one)
    cluster: Any = None  # budget.training.cluster_plan.ClusterRequest (layout options); default: search
    family: str = families.DEFAULT_FAMILY  # the family of the proposed shape
    attention: str = DEFAULT_ATTENTION_CONVENTION  # attention-FLOP convention of the real FLOPs
    model: Architecture | None = None  # a fixed model (--model, --config): N is its count
    model_source: str = ""
    block: tuple[tuple[str, Any], ...] = ()  # block options for the proposed shape (--mlp, ...)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "PlanRequest":
        """The one place options (the command's or the API's) become a request
        (budget.plan_options: the option table and the rule)."""
        from budget.plan_options import plan_request_from_options

        request: PlanRequest = plan_request_from_options(options)
        return request
    finetune: str | None = None  # full | lora | qlora: fine-tune a given model (budget.training.finetune)
    finetune_rank: int = 16
    reliability: Any = None  # budget.training.interval.Reliability (failures, checkpoints, price tier)


def target_loss_budget(req: PlanRequest) -> ResolvedBudget | None:
    """With --target-loss and no other budget: C = the compute-optimal C reaching that loss."""
    if req.target_loss is None or any(v is not None for v in asdict(req.budget).values()):
        return None
    from budget.scaling import beyond

    law = req.law or laws.RECOMMENDED_LAW
    C = beyond.budget_for_target_loss(req.target_loss, law)
    return ResolvedBudget(C, "target-loss", f"C = 6 N D of the compute-optimal model reaching "
                                            f"loss {req.target_loss:g} under {law}")

