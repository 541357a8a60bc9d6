"""Parallel layouts (TP, PP with virtual stages, DP with ZeRO 0-3, CP, EP) and memory per GPU.

A `Layout` places one training run on tp x pp x cp x dp GPUs (expert parallelism folds into the
data-parallel group, as Megatron-LM's MoE layers do: ep must divide dp x cp). Memory is that of
the most loaded GPU, the first pipeline stage (Korthikanti et al. 2022, arXiv:2205.05198, §4.2.3):

- model states (Rajbhandari et al. 2020, ZeRO, §3.1, §5): 16-bit weights and gradients plus an
  fp32 master copy and Adam moments; dense weights are split by tp and pp, routed experts also by
  ep; ZeRO stage 1/2/3 shards optimizer / +gradients / +weights over the dp x cp ranks that hold
  the same shard (dp x cp / ep for experts).
- activations (Korthikanti et al. 2022 Table 2, Eq. 1, 2, 4): per layer 10sbh bytes that TP
  replicates (norm inputs, block inputs, dropout masks; SP shards them by t), the linear-layer
  inputs that TP shards (8sbh for MHA, written here for GQA as sb(4q + 4kv)), the MLP's (4sbf,
  16sbh at f = 4h; a gated MLP keeps three f-wide tensors: 6sbf, our accounting), routed experts
  x top-k, and the 5as^2b attention interior, stored only with recompute none and FlashAttention
  off (FlashAttention keeps O(s) per head: Dao et al. 2022 Thm 1). CP divides s by c. Full
  recomputation keeps 2sbh per layer plus one layer's working set (Korthikanti §4, §5).
- pipeline: the first stage holds min(p, m) micro-batches of its L/p layers (1F1B; Narayanan et
  al. 2021 §2.2.1), i.e. L layers' worth when m >= p (Korthikanti Eq. 5), x (1 + (p-1)/(p v)) when
  interleaved (Korthikanti §4.2.3), plus the embedding dropout mask sbhp/t; with p = 1 also the
  final norm, logits input and fp32 logits 4sbV/t (Korthikanti §4.3).
- buffers (our accounting): ZeRO-3's two prefetched layers of gathered 16-bit weights, and one
  gathered 2sbh layer input for SP/CP all-gathers. Allocator slack and the CUDA context are what
  `USABLE_FRACTION` leaves free.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from budget.errors import BudgetError
from budget.models.arch import Architecture
from budget.training.memory import (
    RECOMPUTE,
    REPLICATED_SBH,
    SCORES_COEFF,
    USABLE_FRACTION,
    bytes_per_param,
)

LAYOUT_KEYS = ("tp", "pp", "dp", "cp", "ep", "vp", "sp", "zero", "mb", "ga", "recompute", "flash")


@dataclass(frozen=True)
class Layout:
    """Parallel sizes, ZeRO stage, micro-batch (mb) and micro-batches per step (ga), recompute."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    cp: int = 1
    ep: int = 1
    vp: int = 1  # virtual pipeline stages (interleaved chunks) per PP rank
    sp: bool = True  # sequence parallelism (only changes anything when tp > 1)
    zero: int = 1  # ZeRO stage over dp (FSDP FULL_SHARD = 3)
    mb: int = 1  # micro-batch, sequences
    ga: int = 1  # micro-batches per pipeline per step (gradient accumulation), m
    recompute: str = "selective"
    flash: bool = True

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "cp", "ep", "vp", "mb", "ga"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BudgetError(f"layout {name}={value!r} must be a whole number >= 1")
        if self.zero not in (0, 1, 2, 3):
            raise BudgetError(f"layout zero={self.zero!r} must be 0, 1, 2 or 3")
        if self.recompute not in RECOMPUTE:
            raise BudgetError(f"layout recompute={self.recompute!r} is not one of {', '.join(RECOMPUTE)}")
        if (self.dp * self.cp) % self.ep:
            raise BudgetError(f"layout ep={self.ep} must divide dp x cp = {self.dp * self.cp} "
                              "(experts are spread over the data-parallel ranks)")
        if self.vp > 1 and self.pp == 1:
            raise BudgetError("layout vp > 1 needs pp > 1 (virtual stages interleave a pipeline)")

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp * self.cp * self.dp

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step: dp x mb x ga (Narayanan et al. 2021 §3.1)."""
        return self.dp * self.mb * self.ga

    def describe(self) -> str:
        parts = [f"tp={self.tp}", f"pp={self.pp}"] + ([f"vp={self.vp}"] if self.vp > 1 else [])
        parts += [f"dp={self.dp}"] + ([f"cp={self.cp}"] if self.cp > 1 else [])
        parts += ([f"ep={self.ep}"] if self.ep > 1 else [])
        parts += [f"sp={'on' if self.sp and self.tp > 1 else 'off'}", f"zero={self.zero}",
                  f"mb={self.mb}", f"ga={self.ga}", f"recompute={self.recompute}",
                  f"flash={'on' if self.flash else 'off'}"]
        return ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["num_gpus"] = self.num_gpus
        out["global_batch_sequences"] = self.global_batch
        return out


def parse_layout(text: str, base: Layout | None = None) -> Layout:
    """'tp=8,pp=4,dp=8,zero=1,sp=on' -> Layout; keys not given keep `base`'s (or the defaults)."""
    changes: dict[str, Any] = {}
    for item in (x.strip() for x in text.split(",") if x.strip()):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in LAYOUT_KEYS:
            raise BudgetError(f"layout item {item!r} must be KEY=VALUE with KEY one of "
                              f"{', '.join(LAYOUT_KEYS)}")
        value = value.strip().lower()
        if key in changes:
            raise BudgetError(f"layout {text!r} gives {key} twice; give each key once")
        if key in ("sp", "flash"):
            if value not in ("on", "off", "1", "0", "true", "false"):
                raise BudgetError(f"layout {key}={value!r} must be on or off")
            changes[key] = value in ("on", "1", "true")
        elif key == "recompute":
            changes[key] = value
        else:
            try:
                changes[key] = int(value)
            except ValueError:
                raise BudgetError(f"layout {key}={value!r} must be a whole number") from None
    return replace(base or Layout(), **changes)


def check_fits_model(arch: Architecture, layout: Layout) -> None:
    """Sizes the model can be split by: tp divides the heads, pp at most the layers, ep the experts."""
    if arch.n_head % layout.tp:
        raise BudgetError(f"tp={layout.tp} must divide the {arch.n_head} attention heads")
    if layout.pp > arch.n_layer:
        raise BudgetError(f"pp={layout.pp} exceeds the {arch.n_layer} layers")
    if layout.vp > 1 and layout.pp * layout.vp > arch.n_layer:
        raise BudgetError(f"pp x vp = {layout.pp * layout.vp} exceeds the {arch.n_layer} layers")
    if layout.ep > 1 and (not arch.is_moe or arch.n_experts % layout.ep):
        raise BudgetError(f"ep={layout.ep} must divide the number of experts "
                          f"({arch.n_experts}; dense models take ep=1)")


# ---- activations ---------------------------------------------------------------------------
def layer_activation_bytes(arch: Architecture, layout: Layout, seq_len: int, *,
                           moe: bool | None = None) -> float:
    """Bytes one layer keeps for backward, one micro-batch (Korthikanti et al. 2022 Table 2),
    the parts' widths (`Architecture.activation_widths`): the mean layer, or the mean dense
    (moe False) or MoE (moe True) layer."""
    t, c = layout.tp, layout.cp
    s, b, h = seq_len / c, layout.mb, arch.d_model
    mixer_width, mlp_width = arch.activation_widths(moe if arch.is_moe else None)
    replicated = REPLICATED_SBH * s * b * h / (t if layout.sp else 1)
    attention = s * b * mixer_width / t
    mlp = s * b * mlp_width / t
    scores = 0.0
    if layout.recompute == "none" and not layout.flash:  # local queries x the keys they attend
        scores = SCORES_COEFF * arch.score_positions(seq_len, moe if arch.is_moe else None) \
            * s * b / t
    working = replicated + attention + mlp + scores
    if layout.recompute == "full":  # only the layer input stays (Korthikanti §4: 2sbh); Megatron-LM
        return 2.0 * s * b * h / (t if layout.sp else 1)  # with SP checkpoints the s/t shard
    return working


def first_stage_activation_bytes(arch: Architecture, layout: Layout, seq_len: int) -> float:
    """The first pipeline stage's activations: in-flight micro-batches x its layers + outside terms."""
    p, v, m, t = layout.pp, layout.vp, layout.ga, layout.tp
    s, b, h = seq_len / layout.cp, layout.mb, arch.d_model
    per_layer = _mean_layer_bytes(arch, layout, seq_len)
    layers = math.ceil(arch.n_layer / p)
    in_flight = min(p, m)
    interleave = 1 + (p - 1) / (p * v) if v > 1 else 1.0
    kept = in_flight * layers * per_layer * interleave
    if layout.recompute == "full":  # one layer's working set during its recompute
        kept += layer_activation_bytes(arch, replace(layout, recompute="selective"), seq_len)
    split = t if layout.sp else 1  # SP shards what TP alone replicates
    outside = s * b * h * in_flight / split  # embedding dropout mask (1 byte) per in-flight micro-batch
    if p == 1:  # final norm and logits inputs (2 + 2 bytes), fp32 logits split over the vocabulary
        outside += 4 * s * b * h / split + 4 * s * b * arch.vocab_size / t
    return kept + outside


def _mean_layer_bytes(arch: Architecture, layout: Layout, seq_len: int) -> float:
    dense = layer_activation_bytes(arch, layout, seq_len, moe=False)
    if not arch.is_moe:
        return dense
    moe = layer_activation_bytes(arch, layout, seq_len, moe=True)
    return (arch.dense_layers * dense + arch.moe_layers * moe) / arch.n_layer


# ---- model states --------------------------------------------------------------------------
@dataclass(frozen=True)
class StageParams:
    """Parameters on one GPU of the first stage: dense (split by tp) and routed experts (tp x ep)."""

    dense: float
    experts: float
    layer_dense: float  # one layer's dense params on this GPU (for ZeRO-3 prefetch)
    layer_experts: float


def stage_params(arch: Architecture, layout: Layout) -> StageParams:
    """First stage: ceil(L/p) layers + the token embedding (and the head too when p = 1)."""
    p, t, e = layout.pp, layout.tp, layout.ep
    share = math.ceil(arch.n_layer / p) / arch.n_layer
    experts_total = arch.moe_layers * arch.n_experts * arch.mlp_params(arch.routed_d_ff)
    blocks_total = arch.params_non_embedding() - experts_total
    embed = arch.vocab_size * arch.d_model + (arch.n_ctx * arch.d_model if arch.positions == "learned" else 0)
    if p == 1 and not arch.tied_embeddings:
        embed += arch.vocab_size * arch.d_model
    dense = (blocks_total * share + embed) / t
    experts = experts_total * share / (t * e)
    layer_experts = arch.n_experts * arch.mlp_params(arch.routed_d_ff) / (t * e) if arch.is_moe else 0.0
    layer_dense = arch.layer_params(moe=arch.is_moe) / t - layer_experts * e
    return StageParams(dense, experts, max(layer_dense, 0.0), layer_experts)


def model_state_bytes_per_gpu(params: float, precision: str, optimizer: str, zero: int,
                              shards: int) -> tuple[float, float, float]:
    """(weights, grads, optimizer) bytes of `params` with ZeRO `zero` over `shards` ranks (ZeRO §5)."""
    w, g, o = bytes_per_param(precision, optimizer)
    n = max(shards, 1)
    return (params * w / (n if zero >= 3 else 1), params * g / (n if zero >= 2 else 1),
            params * o / (n if zero >= 1 else 1))


@dataclass(frozen=True)
class LayoutMemory:
    """Bytes per GPU on the first pipeline stage, and whether they fit the usable memory."""

    weights_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    buffers_bytes: float
    total_bytes: float
    gpu_memory_bytes: float
    usable_fraction: float
    fits: bool

    @property
    def usable_bytes(self) -> float:
        return self.gpu_memory_bytes * self.usable_fraction

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["usable_bytes"] = self.usable_bytes
        return out


def layout_memory(arch: Architecture, layout: Layout, seq_len: int, gpu_memory_bytes: float, *,
                  precision: str = "bf16", optimizer: str = "adam",
                  usable_fraction: float = USABLE_FRACTION) -> LayoutMemory:
    """Memory of the most loaded GPU (first stage) for `layout`; see the module docstring."""
    sp = stage_params(arch, layout)
    dense_shards = layout.dp * layout.cp
    expert_shards = dense_shards // layout.ep
    wd, gd, od = model_state_bytes_per_gpu(sp.dense, precision, optimizer, layout.zero, dense_shards)
    we, ge, oe = model_state_bytes_per_gpu(sp.experts, precision, optimizer, layout.zero, expert_shards)
    acts = first_stage_activation_bytes(arch, layout, seq_len)
    w_bytes = bytes_per_param(precision, optimizer)[0]
    buffers = 0.0
    if layout.zero == 3:
        buffers += 2 * (sp.layer_dense + sp.layer_experts) * w_bytes
    if (layout.sp and layout.tp > 1) or layout.cp > 1:
        buffers += 2.0 * seq_len * layout.mb * arch.d_model
    total = wd + gd + od + we + ge + oe + acts + buffers
    return LayoutMemory(weights_bytes=wd + we, grads_bytes=gd + ge, optimizer_bytes=od + oe,
                        activations_bytes=acts, buffers_bytes=buffers, total_bytes=total,
                        gpu_memory_bytes=gpu_memory_bytes, usable_fraction=usable_fraction,
                        fits=total <= gpu_memory_bytes * usable_fraction)
