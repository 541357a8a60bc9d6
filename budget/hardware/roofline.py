"""Roofline analysis: FLOPs, bytes moved, arithmetic intensity and the bound of every layer.

Model (Williams, Waterman & Patterson 2009, CACM 52(4)): attainable FLOP/s = min(peak, AI x
bandwidth) with AI = FLOPs / bytes moved to and from DRAM/HBM; the ridge point AI* = peak /
bandwidth separates memory-bound (AI < AI*) from compute-bound layers. A layer's time is
max(FLOPs / peak, bytes / bandwidth): the perfect-overlap bound, a lower bound on real time (the
no-overlap bound is the sum). Matmuls use the dense tensor peak at the chosen precision; norms,
activations and residual adds use the fp32 vector peak where the catalog has one.

Traffic rules (minimum traffic: every operand read once, every output written once):
- linear layer, m tokens, d_in -> d_out: 2 m d_in d_out FLOPs; weights d_in d_out b_w plus
  activations m (d_in + d_out) b_a bytes. m = batch x sequence in training and prefill, the batch
  in decode.
- attention (fused, FlashAttention-style: the S x S scores never reach HBM): 4 S T h hd FLOPs per
  sequence (QK^T and AV, unhalved like `Architecture`'s default convention); prefill reads Q, K, V
  and writes O; decode reads the whole KV cache of every sequence, so AI ~ 2 g / b_kv.
- element-wise ops read their inputs and write their output once (no fusion); `fusion` in
  budget.serving.techniques says what fusing them saves.
- training: FLOPs and bytes x 3 (the backward pass runs two GEMMs of each forward shape; Kaplan
  et al. 2020 §2.1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from budget.errors import BudgetError
from budget.hardware.catalog import Accelerator
from budget.models.arch import Architecture

PHASES = ("training", "prefill", "decode")
# Bytes per element of weights and activations at each precision (IEEE/OCP formats).
PRECISION_BYTES = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}
ELEMENTWISE_MIN_BYTES = 2.0  # norms, softmax, activations stay 16-bit in fp8/int8 pipelines
TRAIN_FACTOR = 3.0  # forward + backward = 3 x forward (Kaplan et al. 2020 §2.1)
LAYERNORM_FLOPS = 7  # per element: mean, subtract, square, add, normalise, scale, shift (our count)
RMSNORM_FLOPS = 4  # per element: square, add, multiply by 1/rms, multiply by weight (our count)
SILU_FLOPS = 5  # x * sigmoid(x): negate, exp, add, divide, multiply (budget.models.layers)
GELU_FLOPS = 9  # tanh approximation (Hendrycks & Gimpel 2016 §2; budget.models.layers)
ROTARY_FLOPS = 3  # per rotated element: two multiplies and an add (Su et al. 2021 eq. 34)
KINDS = ("matmul", "attention", "norm", "elementwise")


@dataclass(frozen=True)
class Op:
    """One operation of one layer: FLOPs and bytes per instance, `count` instances in the model."""

    name: str
    kind: str
    flops: float
    bytes: float
    count: int = 1
    d_in: int = 0  # linear layers: the crossover batch needs the weight shape
    d_out: int = 0
    weight_bytes_per_elt: float = 0.0
    act_bytes_per_elt: float = 0.0

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else math.inf


@dataclass(frozen=True)
class OpResult:
    """An Op placed on the roofline of one accelerator (times for all `count` instances)."""

    name: str
    kind: str
    count: int
    flops: float
    bytes: float
    intensity: float
    peak_flops: float
    ridge: float
    bound: str
    attainable_flops: float
    time_s: float
    crossover_tokens: float | None
    crossover_batch: float | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if math.isinf(self.intensity):
            out["intensity"] = None
        return out


@dataclass(frozen=True)
class Roofline:
    """Every op of a model on one accelerator, the totals and the time shares by kind."""

    model: str
    accelerator: str
    precision: str
    phase: str
    batch: int
    seq_len: int
    peak_flops: float
    vector_peak_flops: float
    bandwidth_bytes_per_s: float
    ridge: float
    ops: tuple[OpResult, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def total_time_s(self) -> float:
        return sum(o.time_s for o in self.ops)

    @property
    def total_flops(self) -> float:
        return sum(o.flops for o in self.ops)

    @property
    def total_bytes(self) -> float:
        return sum(o.bytes for o in self.ops)

    def time_share(self, kinds: Sequence[str]) -> float:
        total = self.total_time_s
        return sum(o.time_s for o in self.ops if o.kind in kinds) / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "accelerator": self.accelerator, "precision": self.precision,
            "phase": self.phase, "batch": self.batch, "seq_len": self.seq_len,
            "peak_flops": self.peak_flops, "vector_peak_flops": self.vector_peak_flops,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s, "ridge_flops_per_byte": self.ridge,
            "total_flops": self.total_flops, "total_bytes": self.total_bytes,
            "total_time_s": self.total_time_s,
            "time_share": {"matmul": self.time_share(("matmul", "attention")),
                           "elementwise_and_norm": self.time_share(("norm", "elementwise"))},
            "ops": [o.to_dict() for o in self.ops], "notes": list(self.notes)}


# ---- formulas ---------------------------------------------------------------------------------
def ridge_point(peak_flops: float, bandwidth_bytes_per_s: float) -> float:
    """AI* = peak FLOP/s / memory bandwidth in bytes/s (Williams et al. 2009)."""
    if peak_flops <= 0 or bandwidth_bytes_per_s <= 0:
        raise BudgetError("peak and bandwidth must be > 0 for a ridge point")
    return peak_flops / bandwidth_bytes_per_s


def gemm_intensity(m: float, k: float, n: float, bytes_per_element: float) -> float:
    """(m x k)(k x n): 2mkn / (b (mk + kn + mn)) FLOP/byte, each operand moved once."""
    return 2.0 * m * k * n / (bytes_per_element * (m * k + k * n + m * n))


def linear_intensity(tokens: float, d_in: int, d_out: int, act_bytes: float,
                     weight_bytes: float | None = None) -> float:
    """A linear layer over `tokens` rows: 2 B d_in d_out / (b_w d_in d_out + b_a B (d_in + d_out)).

    With d_in = d_out = d and b_w = b_a = b this is 2Bd^2 / (b(2Bd + d^2)) ~ 2B/b for B << d
    (B/2 in fp32) and d/b for B >> d (seed 000 §19.5 as corrected in the errata)."""
    bw = act_bytes if weight_bytes is None else weight_bytes
    flops = 2.0 * tokens * d_in * d_out
    return flops / (bw * d_in * d_out + act_bytes * tokens * (d_in + d_out))


def crossover_tokens(d_in: int, d_out: int, ridge: float, act_bytes: float,
                     weight_bytes: float) -> float | None:
    """Tokens m at which a linear layer's AI reaches the ridge; None when it never does.

    Solves 2 m d_in d_out = AI* (b_w d_in d_out + b_a m (d_in + d_out)) for m."""
    room = 2.0 * d_in * d_out - ridge * act_bytes * (d_in + d_out)
    if room <= 0:
        return None
    return ridge * weight_bytes * d_in * d_out / room


def roofline_time(flops: float, nbytes: float, peak_flops: float, bandwidth: float) -> float:
    """max(FLOPs / peak, bytes / bandwidth): compute and memory traffic overlap perfectly."""
    return max(flops / peak_flops, nbytes / bandwidth)


# ---- a transformer's ops ------------------------------------------------------------------------
def linear_op(name: str, tokens: float, d_in: int, d_out: int, b_w: float, b_a: float,
              count: int, weights_touched: float = 1.0) -> Op:
    """A weight GEMM; `weights_touched` < 1 when only some experts' weights are read (MoE)."""
    return Op(name, "matmul", 2.0 * tokens * d_in * d_out,
              b_w * d_in * d_out * weights_touched + b_a * tokens * (d_in + d_out), count,
              d_in, d_out, b_w, b_a)


def elementwise_op(name: str, kind: str, elements: float, flops_per_elt: float, reads: int,
                   b: float, count: int) -> Op:
    """`reads` input tensors read and one output written, each of `elements` values."""
    return Op(name, kind, flops_per_elt * elements, (reads + 1) * b * elements, count)


def transformer_ops(arch: Architecture, phase: str, batch: int, seq_len: int, precision: str,
                    weight_bytes: float | None = None, kv_bytes: float | None = None) -> list[Op]:
    """The ops of one forward (training: forward + backward) of `batch` sequences.

    training/prefill: `seq_len` tokens per sequence; decode: one new token per sequence with a
    context of `seq_len` cached tokens. `weight_bytes` / `kv_bytes` override the precision's
    bytes per weight / per KV value (int4 weights, fp8 KV cache)."""
    if phase not in PHASES:
        raise BudgetError(f"phase {phase!r} is unknown; choose one of {', '.join(PHASES)}")
    if precision not in PRECISION_BYTES:
        raise BudgetError(f"precision {precision!r} is unknown; choose one of "
                          f"{', '.join(PRECISION_BYTES)}")
    b_a = PRECISION_BYTES[precision]
    b_w = b_a if weight_bytes is None else weight_bytes
    b_kv = max(b_a, ELEMENTWISE_MIN_BYTES) if kv_bytes is None else kv_bytes
    b_e = max(b_a, ELEMENTWISE_MIN_BYTES)
    per_seq = 1 if phase == "decode" else seq_len
    m = float(batch * per_seq)
    d, L, q, kv = arch.d_model, arch.n_layer, arch.q_dim, arch.kv_dim
    gated = arch.mlp == "gated"
    # the projections' widths as the attention part counts them (MLA: its low-rank matrices)
    parts = arch.mixer("G").flops_terms(1, "unhalved")
    qkv_out, o_in = _width(parts["qkv"] / (2 * d)), _width(parts["attention_output"] / (2 * d))
    ops = [Op("embedding", "elementwise", 0.0, 2 * b_e * m * d, 1),
           linear_op("qkv", m, d, qkv_out, b_w, b_a, L)]
    if arch.positions == "rotary":
        ops.append(elementwise_op("rotary", "elementwise", m * (q + kv), ROTARY_FLOPS, 1, b_e, L))
    ops.append(_attention_op(arch, phase, batch, seq_len, b_a, b_kv))
    ops.append(linear_op("attn_out", m, o_in, d, b_w, b_a, L))
    norm_flops = LAYERNORM_FLOPS if arch.norm == "layernorm" else RMSNORM_FLOPS
    ops.append(elementwise_op("norms", "norm", m * d, norm_flops, 1, b_e, 2 * L))
    ops.append(elementwise_op("residual_adds", "elementwise", m * d, 1, 2, b_e, 2 * L))
    ops += _mlp_ops(arch, m, b_w, b_a, b_e, gated)
    head_tokens = m if phase == "training" else float(batch)  # serving needs the last position only
    ops.append(elementwise_op("final_norm", "norm", head_tokens * d, norm_flops, 1, b_e, 1))
    ops.append(linear_op("logits", head_tokens, d, arch.vocab_size, b_w, b_a, 1))
    if phase == "training":
        ops = [Op(o.name, o.kind, o.flops * TRAIN_FACTOR, o.bytes * TRAIN_FACTOR, o.count, o.d_in,
                  o.d_out, o.weight_bytes_per_elt, o.act_bytes_per_elt) for o in ops]
    return ops


def _width(x: float) -> Any:
    """A projection width: whole when it is (multi-head), else the effective mean (MLA)."""
    return int(x) if x == int(x) else x


def _attention_op(arch: Architecture, phase: str, batch: int, seq_len: int, b_a: float,
                  b_kv: float) -> Op:
    q, kv, L = arch.q_dim, arch.kv_dim, arch.n_layer
    # per layer, averaged over the layers' parts: a window caps the context, MLA reads its latent
    terms = arch.forward_flops_terms(seq_len, "unhalved")
    context_flops = (terms["attention_scores"] + terms["attention_values"]) / L
    cached = arch.kv_cache_bytes_per_token(b_kv, seq_len) * seq_len / L
    if phase == "decode":  # one query per sequence against seq_len cached keys and values
        flops = batch * context_flops
        nbytes = batch * (cached + 2 * q * b_a + 2 * kv * b_kv)
    else:  # fused: read Q, K, V and write O once per sequence
        flops = batch * seq_len * context_flops
        nbytes = batch * seq_len * (2 * q * b_a + 2 * kv * b_kv)
    return Op("attention", "attention", flops, nbytes, L)


def experts_touched(n_experts: int, top_k: int, tokens: float) -> float:
    """Expected distinct experts hit by `tokens` tokens routed uniformly to top-k of E (derived):
    E (1 - (1 - k/E)^tokens)."""
    return n_experts * (1.0 - (1.0 - top_k / n_experts) ** tokens)


def _mlp_ops(arch: Architecture, m: float, b_w: float, b_a: float, b_e: float,
             gated: bool) -> list[Op]:
    d = arch.d_model
    up = 2 if gated else 1
    act_flops = (GELU_FLOPS if arch.activation == "gelu" else SILU_FLOPS) + (1 if gated else 0)
    ops: list[Op] = []
    if arch.dense_layers:
        f = arch.d_ff
        ops += [linear_op("mlp_up", m, d, up * f, b_w, b_a, arch.dense_layers),
                elementwise_op("mlp_act", "elementwise", m * f, act_flops, up, b_e,
                               arch.dense_layers),
                linear_op("mlp_down", m, f, d, b_w, b_a, arch.dense_layers)]
    if arch.moe_layers:
        E, k, f = arch.n_experts, arch.experts_per_token, arch.routed_d_ff
        routed = m * k  # token-expert pairs
        touched = experts_touched(E, k, m)  # of E experts' weights are read
        ops += [linear_op("router", m, d, E, b_w, b_a, arch.moe_layers),
                linear_op("experts_up", routed, d, up * f, b_w, b_a, arch.moe_layers,
                          touched),
                elementwise_op("experts_act", "elementwise", routed * f, act_flops, up, b_e,
                               arch.moe_layers),
                linear_op("experts_down", routed, f, d, b_w, b_a, arch.moe_layers, touched)]
        if arch.n_shared_experts:
            fs = arch.shared_d_ff * arch.n_shared_experts
            ops += [linear_op("shared_up", m, d, up * fs, b_w, b_a, arch.moe_layers),
                    linear_op("shared_down", m, fs, d, b_w, b_a, arch.moe_layers)]
    return ops


# ---- placing ops on an accelerator -------------------------------------------------------------
def vector_peak(acc: Accelerator, matmul_peak: float) -> float:
    """Element-wise ops run on the vector units: the fp32 non-tensor peak when the catalog has it."""
    return acc.peak_flops("fp32") if "fp32" in acc.peak_tflops else matmul_peak


def analyse(ops: Sequence[Op], acc: Accelerator, precision: str, *, model: str, phase: str,
            batch: int, seq_len: int, compute_precision: str | None = None,
            notes: Sequence[str] = ()) -> Roofline:
    """Place every op on `acc`'s roofline at `precision` (matmul peak of `compute_precision`)."""
    peak = acc.peak_flops(compute_precision or precision)
    bw = acc.memory_bandwidth_gbs * 1e9
    vpeak = vector_peak(acc, peak)
    per_seq = 1 if phase == "decode" else seq_len
    rows = []
    for op in ops:
        p = peak if op.kind in ("matmul", "attention") else vpeak
        ridge = ridge_point(p, bw)
        ai = op.intensity
        cross_m = crossover_tokens(op.d_in, op.d_out, ridge, op.act_bytes_per_elt,
                                   op.weight_bytes_per_elt) if op.d_in and op.kind == "matmul" \
            else None
        rows.append(OpResult(
            name=op.name, kind=op.kind, count=op.count, flops=op.flops * op.count,
            bytes=op.bytes * op.count, intensity=ai, peak_flops=p, ridge=ridge,
            bound="compute" if ai >= ridge else "memory", attainable_flops=min(p, ai * bw),
            time_s=op.count * roofline_time(op.flops, op.bytes, p, bw),
            crossover_tokens=cross_m,
            crossover_batch=None if cross_m is None else cross_m / per_seq))
    return Roofline(model, acc.id, precision, phase, batch, seq_len, peak, vpeak, bw,
                    ridge_point(peak, bw), tuple(rows), tuple(notes))


def roofline_for(arch: Architecture, acc: Accelerator, *, phase: str = "decode", batch: int = 1,
                 seq_len: int = 2048, precision: str = "bf16", model: str = "") -> Roofline:
    """`transformer_ops` of `arch` placed on `acc` (the library call behind `budget roofline`)."""
    for name, value in (("batch", batch), ("sequence length", seq_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BudgetError(f"{name} {value!r} must be a whole number >= 1")
    ops = transformer_ops(arch, phase, batch, seq_len, precision)
    notes = ["time = max(FLOPs/peak, bytes/bandwidth) per op (perfect overlap: a lower bound)",
             "attention is fused (FlashAttention-style); element-wise ops are not fused"]
    return analyse(ops, acc, precision, model=model or arch.name or "model", phase=phase,
                   batch=batch, seq_len=seq_len, notes=notes)


def cnn_ops(network: Any, batch: int, precision: str, training: bool = False) -> list[Op]:
    """Every leaf layer of an evaluated CNN (`budget.models.cnn.evaluate`) for `batch` images.

    Bytes = weights once + the layer's input and output activations; a layer's input is taken as
    the previous layer's output (exact for a chain, approximate at residual branches). Residual
    adds read two inputs. `training`: FLOPs and bytes x 3 (evaluate the network with bn="train")."""
    b = PRECISION_BYTES[precision]
    ops: list[Op] = []
    prev = math.prod(network.input_shape)
    for _, layer in network.rows(detail=True):
        out = math.prod(layer.output_shape)
        reads = 2 if layer.kind == "residual_add" else 1
        kind = "matmul" if layer.kind in ("conv", "linear") else \
            "norm" if layer.kind == "batch_norm" else "elementwise"
        nbytes = b * (layer.params + batch * (reads * prev + out))
        factor = TRAIN_FACTOR if training else 1.0
        ops.append(Op(layer.name, kind, factor * batch * layer.flops, factor * nbytes, 1))
        prev = out
    return ops


def sparse_peaks(acc: Accelerator) -> dict[str, float]:
    """The 2:4-sparse peaks (TFLOP/s, TOPS) a catalog row lists under `sparse_peak_tflops`; {} when
    it lists none (NVIDIA's sparse figure is otherwise 2x the dense one)."""
    return dict(acc.sparse_peak_tflops)
