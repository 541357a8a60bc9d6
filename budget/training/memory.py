"""Training memory: parameters, gradients, optimizer state, activations, ZeRO sharding, GPU count.

Model states follow Rajbhandari et al. 2020 (ZeRO, arXiv:1910.02054) §3.1: mixed-precision Adam
keeps 16-bit weights (2 B) and gradients (2 B) plus an fp32 master copy, momentum and variance
(12 B): 16 bytes per parameter. ZeRO stage 1 shards the optimizer state over the data-parallel
GPUs, stage 2 also the gradients, stage 3 also the weights (ZeRO Fig. 1).

Activations follow Korthikanti et al. 2022 (arXiv:2205.05198) §4: per transformer layer
s b h (34 + 5 a s / h) bytes with 16-bit activations and d_ff = 4h, written for any block as
10 s b h + s b (what the layer's parts keep: `Architecture.activation_widths`, e.g. 8h for
multi-head attention and 4 d_ff for a plain MLP) + 5 s b (n_head x keys attended), the same
per-layer formula `budget.training.parallel` splits over tensor parallelism. Selective recomputation (or FlashAttention) drops the
5 a s^2 b attention-score term; full recomputation keeps only each layer's 16-bit input (2 s b h)
plus one layer's working set. Outside the layers we add 5 s b h (embedding dropout mask, final
LayerNorm and output-projection inputs) and 4 s b V for fp32 logits (our accounting in the same
convention). The formula counts dropout masks; with dropout off the true figure is slightly lower.
Tensor and pipeline parallelism are not modelled: every GPU holds a whole micro-batch's activations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from budget.errors import BudgetError
from budget.models.arch import Architecture

OPTIMIZERS = ("adam", "momentum", "sgd")
RECOMPUTE = ("none", "selective", "full")
MIXED_PRECISIONS = ("bf16", "fp16", "fp8")  # 16-bit (or lower) weights with an fp32 master copy
FULL_PRECISIONS = ("fp32", "tf32")  # fp32 weights, gradients and optimizer state
# Optimizer bytes per parameter: fp32 master copy (mixed precision only) + 4 B per fp32 state tensor.
_STATE_TENSORS = {"adam": 2, "momentum": 1, "sgd": 0}
REPLICATED_SBH = 10  # norm inputs 4, attention and MLP block inputs 2 + 2, dropout masks 1 + 1 (Korthikanti §4.1)
SCORES_COEFF = 5  # 5as^2b: softmax output 2, its dropout mask 1, dropout output 2 (Korthikanti §4.1)
USABLE_FRACTION = 0.9  # our assumption: 10% of device memory left for context, allocator, buffers


@dataclass(frozen=True)
class MemoryBreakdown:
    """Per-GPU training memory in bytes at `num_gpus` with ZeRO `zero_stage`, and the GPU count."""

    params: float
    precision: str
    optimizer: str
    zero_stage: int
    num_gpus: int
    micro_batch: int
    seq_len: int
    recompute: str
    params_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    total_bytes: float
    model_states_bytes_unsharded: float
    bytes_per_param: float
    gpu: str | None = None
    gpu_memory_bytes: float | None = None
    usable_fraction: float = USABLE_FRACTION
    fits: bool | None = None
    min_gpus: int | None = None
    min_gpus_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bytes_per_param(precision: str, optimizer: str) -> tuple[float, float, float]:
    """(weights, gradients, optimizer) bytes per parameter (Rajbhandari et al. 2020 §3.1)."""
    if optimizer not in OPTIMIZERS:
        raise BudgetError(f"optimizer {optimizer!r} is unknown; choose one of {', '.join(OPTIMIZERS)}")
    states = 4.0 * _STATE_TENSORS[optimizer]
    if precision in MIXED_PRECISIONS:
        return 2.0, 2.0, 4.0 + states  # fp32 master copy + fp32 states
    if precision in FULL_PRECISIONS:
        return 4.0, 4.0, states
    raise BudgetError(f"precision {precision!r} cannot train; choose one of "
                      f"{', '.join(MIXED_PRECISIONS + FULL_PRECISIONS)}")


def activation_bytes(shape: Architecture, micro_batch: int, seq_len: int, recompute: str,
                     precision: str = "bf16") -> float:
    """Activation memory of one micro-batch on one GPU (Korthikanti et al. 2022 §4; see module
    docstring): `budget.training.parallel.layer_activation_bytes` at tp = pp = 1, one formula."""
    if recompute not in RECOMPUTE:
        raise BudgetError(f"recompute {recompute!r} is unknown; choose one of {', '.join(RECOMPUTE)}")
    arch = shape
    s, b, h = seq_len, micro_batch, arch.d_model
    mixer_width, mlp_width = arch.activation_widths()
    per_layer_kept = s * b * (REPLICATED_SBH * h + mixer_width + mlp_width)  # 34 sbh at GPT-2's
    scores = SCORES_COEFF * arch.score_positions(s) * s * b
    if recompute == "none":
        layers = arch.n_layer * (per_layer_kept + scores)
    elif recompute == "selective":
        layers = arch.n_layer * per_layer_kept
    else:  # full: each layer's input, plus one layer's working set during its recompute
        layers = arch.n_layer * 2 * s * b * h + per_layer_kept
    outside = 5 * s * b * h + 4 * s * b * arch.vocab_size
    scale = 2.0 if precision in FULL_PRECISIONS else 1.0  # the formula assumes 16-bit activations
    return float(scale * layers + outside)


def training_memory(shape: Architecture, *, micro_batch: int = 1, seq_len: int | None = None,
                    precision: str = "bf16", optimizer: str = "adam", recompute: str = "selective",
                    zero_stage: int = 0, num_gpus: int = 1, gpu_memory_bytes: float | None = None,
                    gpu: str | None = None, usable_fraction: float = USABLE_FRACTION,
                    params: float | None = None) -> MemoryBreakdown:
    """Per-GPU memory at `num_gpus` and, given a device size, the fewest GPUs that hold it.

    `params` overrides the shape's count for the model states (a plan for a given N keeps N
    exactly; the shape then only sizes the activations)."""
    if zero_stage not in (0, 1, 2, 3):
        raise BudgetError(f"ZeRO stage {zero_stage!r} must be 0, 1, 2 or 3")
    for name, value in (("micro-batch", micro_batch), ("number of GPUs", num_gpus)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BudgetError(f"{name} {value!r} must be a whole number >= 1")
    seq = shape.n_ctx if seq_len is None else seq_len
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise BudgetError(f"sequence length {seq!r} must be a whole number >= 1")
    if params is not None and (not math.isfinite(params) or params <= 0):
        raise BudgetError(f"parameter count {params!r} must be a finite number > 0")
    n = params if params is not None else shape.params_total()
    w, g, o = model_state_bytes(n, precision, optimizer)
    acts = activation_bytes(shape, micro_batch, seq, recompute, precision)
    sharded = zero_sharded(w, g, o, zero_stage, num_gpus)
    total = sum(sharded) + acts
    fits = min_gpus = None
    note = ""
    if gpu_memory_bytes is not None:
        usable = gpu_memory_bytes * usable_fraction
        fits = total <= usable
        min_gpus, note = fewest_gpus(w, g, o, acts, zero_stage, usable, micro_batch=micro_batch,
                                     recompute=recompute)
    return MemoryBreakdown(
        params=float(n), precision=precision, optimizer=optimizer, zero_stage=zero_stage,
        num_gpus=num_gpus, micro_batch=micro_batch, seq_len=seq, recompute=recompute,
        params_bytes=sharded[0], grads_bytes=sharded[1], optimizer_bytes=sharded[2],
        activations_bytes=acts, total_bytes=total, model_states_bytes_unsharded=w + g + o,
        bytes_per_param=(w + g + o) / n, gpu=gpu, gpu_memory_bytes=gpu_memory_bytes,
        usable_fraction=usable_fraction, fits=fits, min_gpus=min_gpus, min_gpus_note=note)


def model_state_bytes(params: float, precision: str, optimizer: str) -> tuple[float, float, float]:
    """(weights, gradients, optimizer state) bytes for `params` parameters, unsharded."""
    w, g, o = bytes_per_param(precision, optimizer)
    return params * w, params * g, params * o


def zero_sharded(w: float, g: float, o: float, stage: int, n: int) -> tuple[float, float, float]:
    """ZeRO stage s divides the optimizer (s>=1), gradients (s>=2), weights (s=3) by n."""
    return (w / n if stage >= 3 else w, g / n if stage >= 2 else g, o / n if stage >= 1 else o)


def fewest_gpus(w: float, g: float, o: float, acts: float, stage: int,
                usable_bytes: float, *, micro_batch: int | None = None,
                recompute: str | None = None) -> tuple[int | None, str]:
    """Smallest data-parallel n with (unsharded + sharded / n + activations) <= usable bytes."""
    shard = zero_sharded(1.0, 1.0, 1.0, stage, 2)  # 0.5 marks a term that ZeRO shards at this stage
    fixed = acts + sum(x for x, f in zip((w, g, o), shard) if f == 1.0)
    split = sum(x for x, f in zip((w, g, o), shard) if f != 1.0)
    room = usable_bytes - fixed
    if room <= 0:
        what = "activations alone" if acts >= usable_bytes else "unsharded model states"
        hint = _activation_hint(micro_batch, recompute) if acts >= usable_bytes \
            else "use a higher ZeRO stage" if stage < 3 else "ZeRO-3 shards everything it can"
        return None, f"does not fit at any GPU count with ZeRO-{stage}: {what} exceed one GPU ({hint})"
    if split == 0:
        return 1, f"fits on one GPU with ZeRO-{stage}"
    n = max(1, math.ceil(split / room))
    return n, f"ZeRO-{stage} over {n} data-parallel GPU(s)"


def _activation_hint(micro_batch: int | None, recompute: str | None) -> str:
    """What could still shrink activations, never advice already taken (micro-batch 1, full recompute)."""
    steps = []
    if micro_batch is None or micro_batch > 1:
        steps.append("lower the micro-batch")
    if recompute != "full":
        steps.append("use --recompute full")
    if steps:
        return " or ".join(steps)
    return ("already at micro-batch 1 with full recomputation: ZeRO does not shard activations; "
            "split the model with tensor or pipeline parallelism, or use a shorter context")
