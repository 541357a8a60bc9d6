"""Fine-tuning modes: full, LoRA and QLoRA. Memory per GPU and FLOPs per token.

- LoRA (Hu et al. 2021, arXiv:2106.09685 §4.1): each adapted weight W (d_in x d_out) is frozen and
  learns B A with A (r x d_in), B (d_out x r): r (d_in + d_out) trainable parameters. Here every
  linear layer of every block is adapted (QLoRA's setting, Dettmers et al. 2023, arXiv:2305.14314
  §4: "LoRA on all linear transformer block layers"); embeddings and the head stay frozen.
- Frozen base weights: LoRA keeps them in 16 bits (2 B/param); QLoRA stores the block's linear
  weights in 4-bit NormalFloat with double quantization, 4 + 0.127 bits per parameter (QLoRA §3:
  blocksize 64 constants cost 32/64 = 0.5 bit, double quantized 8/64 + 32/(64 x 256) = 0.127 bit);
  embeddings, head and norms stay 16-bit (bitsandbytes quantizes nn.Linear layers only).
- Adapters: 16-bit weights and gradients and 32-bit Adam moments, no fp32 master copy: 2 + 2 + 8 =
  12 B/param (artidoro/qlora casts LoraLayer modules to bf16 and trains with paged 32-bit AdamW);
  full fine-tuning is pre-training's 16 B/param (ZeRO §3.1).
- Activations: the training formula of budget.training.memory (the frozen layers still pass
  activation gradients back; the adapters need their inputs).
- FLOPs per token: forward F, backward through activations F (no weight gradients for frozen
  weights, against 2F with them: Kaplan et al. 2020 §2.1's 2N forward, 4N backward), the adapters'
  own 6 r (d_in + d_out) per adapted layer, and F more under full recomputation (QLoRA trains with
  gradient checkpointing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from budget.errors import BudgetError
from budget.models.arch import Architecture
from budget.training.memory import USABLE_FRACTION, activation_bytes

MODES = ("full", "lora", "qlora")
NF4_BITS = 4.0 + 0.127  # 4-bit NormalFloat + double-quantized constants (QLoRA §3)
ADAPTER_BYTES = 2 + 2 + 8  # bf16 weight and gradient, fp32 Adam m and v
FULL_BYTES = 16  # mixed-precision Adam (ZeRO §3.1)


def check_rank(rank: int) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise BudgetError(f"LoRA rank {rank!r} must be a whole number >= 1 (QLoRA used 64)")
    return rank


def adapted_linears(arch: Architecture) -> list[tuple[int, int, int]]:
    """(d_in, d_out, count over the model) of every linear layer in the blocks."""
    d = arch.d_model
    f = arch.d_ff
    mlp = [(d, f), (d, f), (f, d)] if arch.mlp == "gated" else [(d, f), (f, d)]
    per_layer = [(d, arch.q_dim), (d, arch.kv_dim), (d, arch.kv_dim), (arch.q_dim, d)]
    out = [(i, o, arch.n_layer) for i, o in per_layer]
    if arch.is_moe:  # routed and shared experts each adapted, dense layers as they are
        ef, sf = arch.routed_d_ff, arch.shared_d_ff
        expert = [(d, ef), (d, ef), (ef, d)] if arch.mlp == "gated" else [(d, ef), (ef, d)]
        shared = [(d, sf), (d, sf), (sf, d)] if arch.mlp == "gated" else [(d, sf), (sf, d)]
        out += [(i, o, arch.moe_layers * arch.n_experts) for i, o in expert]
        out += [(i, o, arch.moe_layers * arch.n_shared_experts) for i, o in shared if arch.n_shared_experts]
        out += [(i, o, arch.dense_layers) for i, o in mlp]
    else:
        out += [(i, o, arch.n_layer) for i, o in mlp]
    return out


def adapter_params(arch: Architecture, rank: int) -> float:
    """Trainable LoRA parameters: r (d_in + d_out) per adapted linear layer (Hu et al. §4.1)."""
    check_rank(rank)
    return float(sum(rank * (i + o) * n for i, o, n in adapted_linears(arch)))


def linear_params(arch: Architecture) -> float:
    """Weights of the blocks' linear layers (the ones QLoRA quantizes)."""
    return float(sum(i * o * n for i, o, n in adapted_linears(arch)))


@dataclass(frozen=True)
class FinetuneMemory:
    """Bytes on one GPU for a fine-tuning mode (no sharding: the single-GPU case QLoRA targets)."""

    mode: str
    rank: int | None
    params: float
    trainable_params: float
    base_weights_bytes: float
    trainable_weights_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    total_bytes: float
    micro_batch: int
    seq_len: int
    recompute: str
    gpu: str | None = None
    gpu_memory_bytes: float | None = None
    usable_fraction: float = USABLE_FRACTION
    fits: bool | None = None
    fits_whole_device: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finetune_memory(arch: Architecture, mode: str, *, rank: int = 16, seq_len: int | None = None,
                    micro_batch: int = 1, recompute: str = "full", gpu: str | None = None,
                    gpu_memory_bytes: float | None = None,
                    usable_fraction: float = USABLE_FRACTION) -> FinetuneMemory:
    """Memory of one fine-tuning replica (module docstring)."""
    if mode not in MODES:
        raise BudgetError(f"fine-tuning mode {mode!r} is not one of {', '.join(MODES)}")
    seq = arch.n_ctx if seq_len is None else seq_len
    n = float(arch.params_total())
    acts = activation_bytes(arch, micro_batch, seq, recompute, "bf16")
    if mode == "full":
        trainable, base, weights = n, 0.0, 2.0 * n
        grads, opt = 2.0 * n, (FULL_BYTES - 4) * n
    else:
        trainable = adapter_params(arch, rank)
        linears = linear_params(arch)
        per_linear = NF4_BITS / 8 if mode == "qlora" else 2.0
        base = linears * per_linear + (n - linears) * 2.0
        weights, grads, opt = 2.0 * trainable, 2.0 * trainable, 8.0 * trainable
    total = base + weights + grads + opt + acts
    fits = whole = None
    if gpu_memory_bytes is not None:
        fits, whole = total <= gpu_memory_bytes * usable_fraction, total <= gpu_memory_bytes
    return FinetuneMemory(mode=mode, rank=None if mode == "full" else rank, params=n,
                          trainable_params=trainable, base_weights_bytes=base,
                          trainable_weights_bytes=weights, grads_bytes=grads, optimizer_bytes=opt,
                          activations_bytes=acts, total_bytes=total, micro_batch=micro_batch,
                          seq_len=seq, recompute=recompute, gpu=gpu,
                          gpu_memory_bytes=gpu_memory_bytes, usable_fraction=usable_fraction,
                          fits=fits, fits_whole_device=whole)


def finetune_flops_per_token(arch: Architecture, mode: str, *, rank: int = 16,
                             seq_len: int | None = None, recompute: str = "full",
                             attention: str = "unhalved") -> float:
    """Training FLOPs per token of a fine-tuning mode (module docstring)."""
    if mode not in MODES:
        raise BudgetError(f"fine-tuning mode {mode!r} is not one of {', '.join(MODES)}")
    forward = arch.forward_flops_per_token(seq_len, attention)
    redo = forward if recompute == "full" else 0.0
    if mode == "full":
        return 3.0 * forward + redo
    # active adapter parameters per token: an MoE token passes k routed experts, not all of them
    adapters = adapter_params(arch, rank)
    if arch.is_moe and arch.n_experts:
        routed = sum(rank * (i + o) * n for i, o, n in adapted_linears(arch)
                     if n == arch.moe_layers * arch.n_experts)
        adapters -= routed * (1 - arch.experts_per_token / arch.n_experts)
    return 2.0 * forward + 6.0 * adapters + redo
