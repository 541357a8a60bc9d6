"""Memory trade-offs as numbers (`budget memory --compare`) and inference weight sizes
(`budget memory --precision int8|int4|fp8 --inference`).

Rows, one model and micro-batch (memory from budget.training.memory; FLOPs per step):
- recomputation none / selective / full (Korthikanti et al. 2022 §4-5): full adds one forward
  pass, 4F instead of 3F (+33%); selective recomputes only the attention core.
- sqrt(L) checkpoint segments (Chen et al. 2016, arXiv:1604.06174): keep k = round(sqrt(L))
  segment inputs and one segment's activations: O(sqrt L) memory for one extra forward (4F).
- gradient accumulation: K micro-batches hold one micro-batch's activations and cost the FLOPs
  of the effective batch K x micro-batch (seed 000 §18.5).
- fp32 against mixed precision (Micikevicius et al. 2018): Adam is 16 bytes/param either way
  (4+4+8 against 2+2+12, ZeRO §3.1); 16-bit activations are half the fp32 ones.
Forward FLOPs per step = 2 N tokens + 4 L b s^2 d (attention unhalved, PaLM App. B).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from budget.models.arch import Architecture
from budget.serving.quantization import SizeRow, quant_format, size_table
from budget.training.memory import USABLE_FRACTION, activation_bytes, training_memory

TRAIN, RECOMPUTE = 3.0, 4.0  # x forward (Kaplan et al. 2020 §2.1; + one forward when recomputing)


@dataclass(frozen=True)
class TradeoffRow:
    setting: str
    activations_bytes: float
    total_bytes: float
    flops_per_step: float
    flops_vs_baseline: float
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Tradeoffs:
    params: float
    micro_batch: int
    seq_len: int
    accumulation: int
    rows: tuple[TradeoffRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": [r.to_dict() for r in self.rows]}


def forward_flops(shape: Architecture, batch: int, seq_len: int) -> float:
    """2 N b s + 4 L b s^2 d (matmuls plus QK^T and AV, unhalved)."""
    return 2.0 * _count(shape) * batch * seq_len + attention_flops(shape, batch, seq_len)


def attention_flops(shape: Architecture, batch: int, seq_len: int) -> float:
    """QK^T and AV over the sequence, each layer as its parts attend (a window caps it)."""
    terms = shape.forward_flops_terms(seq_len, "unhalved")
    return (terms["attention_scores"] + terms["attention_values"]) * batch * seq_len


def sqrt_checkpoint_bytes(shape: Architecture, micro_batch: int, seq_len: int,
                          precision: str) -> tuple[float, int]:
    """k = round(sqrt(L)) segment inputs (2 s b h each) + one segment's full activations."""
    k = max(1, round(math.sqrt(shape.n_layer)))
    per_segment = math.ceil(shape.n_layer / k)
    one_segment = activation_bytes(replace(shape, n_layer=per_segment), micro_batch, seq_len,
                                   "none", precision)
    scale = 2.0 if precision in ("fp32", "tf32") else 1.0
    return one_segment + scale * k * 2 * seq_len * micro_batch * shape.d_model, k


def memory_tradeoffs(shape: Architecture, *, micro_batch: int = 1, seq_len: int = 2048,
                     precision: str = "bf16", optimizer: str = "adam", zero_stage: int = 0,
                     num_gpus: int = 1, accumulation: int = 4) -> Tradeoffs:
    """Memory per GPU and FLOPs per step of each way to trade one for the other."""
    def mem(recompute: str, batch: int = micro_batch, prec: str = precision) -> Any:
        return training_memory(shape, micro_batch=batch, seq_len=seq_len, precision=prec,
                               optimizer=optimizer, recompute=recompute, zero_stage=zero_stage,
                               num_gpus=num_gpus)

    f = forward_flops(shape, micro_batch, seq_len)
    base = TRAIN * f
    none, sel, full = mem("none"), mem("selective"), mem("full")
    states = none.total_bytes - none.activations_bytes
    sq, k = sqrt_checkpoint_bytes(shape, micro_batch, seq_len, precision)
    K = accumulation
    big = mem("none", micro_batch * K)
    fp32, mixed = mem("none", prec="fp32"), mem("none", prec="bf16")
    rows = [
        TradeoffRow("no recomputation", none.activations_bytes, none.total_bytes, base, 1.0,
                    "3F: forward + backward"),
        TradeoffRow("selective recomputation", sel.activations_bytes, sel.total_bytes,
                    base + attention_flops(shape, micro_batch, seq_len),
                    1 + attention_flops(shape, micro_batch, seq_len) / base,
                    "recompute the attention core only (Korthikanti et al. 2022 §5)"),
        TradeoffRow("full recomputation", full.activations_bytes, full.total_bytes,
                    RECOMPUTE * f, RECOMPUTE / TRAIN, "one extra forward: 4F (+33%)"),
        TradeoffRow(f"sqrt(L) checkpoints ({k} segments)", sq, states + sq, RECOMPUTE * f,
                    RECOMPUTE / TRAIN, "O(sqrt L) activations, one extra forward (Chen et al. 2016)"),
        TradeoffRow(f"batch {micro_batch * K} at once", big.activations_bytes, big.total_bytes,
                    K * base, float(K), "the effective batch in one step"),
        TradeoffRow(f"gradient accumulation {K} x {micro_batch}", none.activations_bytes,
                    none.total_bytes, K * base, float(K),
                    "activations of the micro-batch, FLOPs of the effective batch"),
        TradeoffRow("fp32 (Adam)", fp32.activations_bytes, fp32.total_bytes, base, 1.0,
                    f"{fp32.bytes_per_param:g} bytes/param, fp32 activations"),
        TradeoffRow("mixed precision bf16 (Adam)", mixed.activations_bytes, mixed.total_bytes,
                    base, 1.0, f"{mixed.bytes_per_param:g} bytes/param, activations halved "
                    "(Micikevicius et al. 2018)"),
    ]
    return Tradeoffs(_count(shape), micro_batch, seq_len, K, tuple(rows))


@dataclass(frozen=True)
class InferenceWeights:
    """Weights of a model at an inference precision, every format's size, and the GPU count."""

    params: float
    precision: str
    bits_per_weight: float
    layout: str
    weight_bytes: float
    sizes: tuple[SizeRow, ...]
    gpu: str | None = None
    gpu_memory_bytes: float | None = None
    min_gpus: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sizes": [s.to_dict() for s in self.sizes]}


def inference_weights(shape: Architecture, precision: str, *,
                      group_size: int | None = None, gpu_memory_bytes: float | None = None,
                      gpu: str | None = None, params: float | None = None) -> InferenceWeights:
    """N x bits per weight / 8 (budget.serving.quantization), and ceil(weights / usable memory);
    `params` (a given N) overrides the shape's count."""
    n = float(params) if params is not None else _count(shape)
    fmt = quant_format(precision, group_size)
    w = n * fmt.bytes_per_weight
    need = None if gpu_memory_bytes is None else \
        max(1, math.ceil(w / (gpu_memory_bytes * USABLE_FRACTION)))
    return InferenceWeights(n, precision, fmt.bits_per_weight, fmt.layout, w,
                            size_table(n, group_size), gpu, gpu_memory_bytes, need)


def _count(shape: Architecture) -> float:
    """Every stored parameter of either description."""
    return float(shape.params_total())
