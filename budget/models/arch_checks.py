"""The checks every `budget.models.arch.Architecture` passes when it is made: whole numbers within
bounds (MAX_LAYERS, MAX_SIZE: a 10^12-layer description is refused at once), known kinds, heads
that group, experts that route, and parts that have the dimensions they need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from budget.errors import BudgetError

MLP_KINDS = ("plain", "gated")
NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("learned", "rotary", "none")
BIASES = ("none", "all", "qkv")
ATTENTION_KINDS = ("multi-head", "latent")
LAYER_KINDS = "GLS"  # global attention, local (sliding-window) attention, state-space
MAX_LAYERS = 100_000  # bounds on what a description may say (a 10^12-layer config is refused
MAX_SIZE = 2**31  # at once, not counted or searched); any one width, count or context

if TYPE_CHECKING:
    from budget.models.arch import Architecture


def check(arch: "Architecture") -> None:
    """BudgetError naming the first field that does not hold."""
    for f in ("n_layer", "d_model", "n_head", "n_kv_head", "head_dim", "d_ff",
              "vocab_size", "n_ctx", "ssm_groups", "ssm_conv", "norms_per_layer"):
        _whole(f, getattr(arch, f), minimum=1)
    for f in ("n_experts", "experts_per_token", "n_shared_experts", "expert_d_ff",
              "shared_expert_d_ff", "first_dense_layers", "q_lora_rank", "kv_lora_rank",
              "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "window", "ssm_d_inner",
              "ssm_d_state", "ssm_heads"):
        _whole(f, getattr(arch, f), minimum=0)
    for f, allowed in (("mlp", MLP_KINDS), ("norm", NORMS), ("positions", POSITIONS),
                       ("bias", BIASES), ("attention", ATTENTION_KINDS)):
        if getattr(arch, f) not in allowed:
            raise BudgetError(f"{f}={getattr(arch, f)!r} is not one of {', '.join(allowed)}")
    if arch.n_head % arch.n_kv_head:
        raise BudgetError(f"n_head={arch.n_head} must be a multiple of "
                          f"n_kv_head={arch.n_kv_head} (grouped-query attention)")
    if arch.n_experts:
        if not 1 <= arch.experts_per_token <= arch.n_experts:
            raise BudgetError(f"experts_per_token={arch.experts_per_token} must be between 1 "
                              f"and n_experts={arch.n_experts}")
        if arch.first_dense_layers > arch.n_layer:
            raise BudgetError(f"first_dense_layers={arch.first_dense_layers} exceeds "
                              f"n_layer={arch.n_layer}")
    elif arch.experts_per_token or arch.n_shared_experts:
        raise BudgetError("experts_per_token and n_shared_experts need n_experts >= 1")
    if arch.attention == "latent" and not (arch.kv_lora_rank and arch.v_head_dim
                                           and arch.qk_nope_head_dim + arch.qk_rope_head_dim):
        raise BudgetError("latent attention needs kv_lora_rank, v_head_dim and "
                          "qk_nope_head_dim + qk_rope_head_dim >= 1")
    bad = sorted(set(arch.layer_pattern) - set(LAYER_KINDS))
    if bad:
        raise BudgetError(f"layer_pattern={arch.layer_pattern!r}: {''.join(bad)!r} is not one "
                          f"of G (global), L (local), S (state-space)")
    if len(arch.layer_pattern) > arch.n_layer:
        raise BudgetError(f"layer_pattern has {len(arch.layer_pattern)} entries for "
                          f"n_layer={arch.n_layer}")
    if "L" in arch.pattern and not arch.window:
        raise BudgetError("local (L) layers need a window >= 1")
    if "S" in arch.pattern and not (arch.ssm_d_inner and arch.ssm_d_state and arch.ssm_heads):
        raise BudgetError("state-space (S) layers need ssm_d_inner, ssm_d_state, ssm_heads")


def _whole(name: str, value: object, *, minimum: int) -> None:
    limit = MAX_LAYERS if name == "n_layer" else MAX_SIZE
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= limit:
        raise BudgetError(f"{name}={value!r} must be a whole number from {minimum} to {limit:,}")
