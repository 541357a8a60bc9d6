"""Model families and the one rule that turns a partial shape (or a size N) into an Architecture.

Families (their defaults; every one can be overridden):
- `llama` (the default): SwiGLU MLP with d_ff = 8/3 d rounded up to a multiple of 256, RMSNorm,
  rotary positions, untied head, no biases, 128-dimensional heads, vocabulary 32,000 (Touvron et
  al. 2023, arXiv:2307.09288 §2.2; meta-llama/llama `model.py` ModelArgs multiple_of=256).
  Proposed shapes use grouped-query attention with 8 KV heads (Llama 3, Dubey et al. 2024 §3.2).
- `gpt2`: 4x GELU MLP, LayerNorm, learned positions, tied head, biases everywhere, 64-dimensional
  heads, GPT-2 BPE vocabulary 50,257 (Radford et al. 2019; Brown et al. 2020 Table 2.1).

The rule for an explicit shape (n_layer and d_model given): heads come from what was given: a
head count that divides d_model, a head_dim that divides it, both (free head_dim), or neither
(the family's head_dim, which must then divide d_model). KV heads default to the query heads
(multi-head attention, as Llama 2 7B/13B); d_ff to the family's rule.
"""

from __future__ import annotations

import math
from typing import Any

from budget.errors import BudgetError
from budget.models.arch import Architecture

DEFAULT_N_CTX = 2048  # GPT-3 and Chinchilla context length (Brown et al. 2020 §2.1; Hoffmann et al. 2022 §4)
FAMILIES = ("llama", "gpt2")
DEFAULT_FAMILY = "llama"
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {"mlp": "gated", "activation": "silu", "norm": "rmsnorm", "positions": "rotary",
                  "tied_embeddings": False, "bias": "none"},
    "gpt2": {"mlp": "plain", "activation": "gelu", "norm": "layernorm", "positions": "learned",
                 "tied_embeddings": True, "bias": "all"},
}
FAMILY_HEAD_DIM = {"llama": 128, "gpt2": 64}  # Llama 2/3 heads; GPT-2 and GPT-3 small..6.7B
FAMILY_VOCAB = {"llama": 32000, "gpt2": 50257}  # Llama 2 SentencePiece (§2.2); GPT-2 BPE
LLAMA_FFN_MULTIPLE = 256  # meta-llama/llama model.py: hidden_dim rounded up to multiple_of=256
GPT2_FFN_MULT = 4  # d_ff = 4 d_model (Vaswani et al. 2017 §3.3; GPT-2/3)
PROPOSED_KV_HEADS = 8  # GQA with 8 KV heads (Llama 2 70B, Llama 3 all sizes)
TP_MULTIPLE = 8  # head counts that split over 8-way tensor parallelism (one 8-GPU node)
WIDTH_STEP = 64  # d_model granularity of proposed shapes


def target_aspect_ratio(n_params: float) -> float:
    """House heuristic for d_model / n_layer: 64 at 1e8 params, x1.26 per decade, in [32, 128].

    Chosen to track published shapes (GPT-3 Table 2.1: 125M 64, 1.3B 85, 6.7B-175B 128;
    Chinchilla 70B 102); loss is insensitive to it over a wide range (Kaplan et al. 2020 Fig. 5).
    """
    return min(128.0, max(32.0, 64.0 * (n_params / 1e8) ** 0.1))


def check_family(family: str) -> str:
    if family not in FAMILIES:
        raise BudgetError(f"family {family!r} is not one of {', '.join(FAMILIES)}")
    return family


def family_d_ff(family: str, d_model: int) -> int:
    """llama: 256 ceil(int(8 d / 3) / 256) (11008 at d 4096); gpt2: 4 d."""
    if check_family(family) == "gpt2":
        return GPT2_FFN_MULT * d_model
    hidden = int(2 * 4 * d_model / 3)
    return LLAMA_FFN_MULTIPLE * -(-hidden // LLAMA_FFN_MULTIPLE)


def family_of(arch: Architecture) -> str:
    """'llama' or 'gpt2' when the block matches that family's defaults, else 'custom'."""
    for family, defaults in FAMILY_DEFAULTS.items():
        if all(getattr(arch, k) == v for k, v in defaults.items() if k != "activation"):
            return family
    return "custom"


def build(family: str, n_layer: int, d_model: int, *, n_head: int | None = None,
          n_kv_head: int | None = None, head_dim: int | None = None, d_ff: int | None = None,
          vocab_size: int | None = None, n_ctx: int = 2048, **overrides: Any) -> Architecture:
    """An Architecture from the given fields and the family's defaults (see the module rule)."""
    check_family(family)
    if n_head is None:
        hd = head_dim or FAMILY_HEAD_DIM[family]
        if d_model % hd:
            what = f"head_dim {hd}" if head_dim else f"the {family} family's head_dim {hd}"
            raise BudgetError(f"d_model {d_model} is not a multiple of {what}; give n_head "
                              "(--n-head)")
        n_head = d_model // hd
    elif head_dim is None and d_model % n_head:
        raise BudgetError(f"n_head {n_head} does not divide d_model {d_model}; give head_dim too "
                          "(--head-dim; heads x head_dim need not equal d_model)")
    hd = head_dim or d_model // n_head
    fields = {**FAMILY_DEFAULTS[family], **{k: v for k, v in overrides.items() if v is not None}}
    return Architecture(n_layer, d_model, n_head, n_kv_head or n_head, hd,
                        family_d_ff(family, d_model) if d_ff is None else d_ff,
                        FAMILY_VOCAB[family] if vocab_size is None else vocab_size, n_ctx,
                        **fields)


def _proposed_heads(family: str, d_model: int, head_dim: int | None,
                    tp_multiple: int) -> tuple[int, int, int, bool]:
    """(n_head, n_kv_head, head_dim, splits over tp_multiple) for a proposed width. A gpt2
    shape with a given head_dim takes round(d / head_dim) heads, fewer until they divide d
    (the sweeps' GPT-2 rule: about head_dim per head at any width)."""
    if family == "gpt2" and head_dim:
        heads = max(1, round(d_model / head_dim))
        while d_model % heads:
            heads -= 1
        return heads, heads, d_model // heads, heads % tp_multiple == 0
    dims = (head_dim,) if head_dim else (128, 64) if family == "llama" else (64, 128)
    options = [(d_model // hd, hd) for hd in dims if d_model % hd == 0] or [(1, d_model)]
    heads, hd = next(((h, hd) for h, hd in options if h % tp_multiple == 0), options[0])
    kv = PROPOSED_KV_HEADS if family == "llama" and heads % PROPOSED_KV_HEADS == 0 else heads
    return heads, kv, hd, heads % tp_multiple == 0


def count_of(arch: Architecture, count: str) -> int:
    if count == "total":
        return arch.params_total()
    if count == "non_embedding":
        return arch.params_non_embedding()
    raise BudgetError(f"count={count!r} must be 'total' or 'non_embedding'")


# The width scan stops once a tensor-parallel-friendly shape within tolerance is found and a
# tensor-parallel-friendly width's deepest stack is already wider than the target aspect ratio
# by more than the best shape's gap plus this margin (log units): d / n_layer only grows with d
# from there on among such widths (up to the 64/128 head-size alternation the margin covers),
# and the other widths (odd head counts, one full-width head) cannot beat a friendly one.
ASPECT_PRUNE_MARGIN = 0.1
# Only shapes whose aspect ratio is within this factor of the target compete (unless none is):
# without the band, 67 layers of width 64 won at 6.7M GPT-2-family params (aspect 1, 3.8x the
# activation memory of the 1 x 128 shape at 0.5% more parameters).
ASPECT_BAND = 16.0


def shape_for_params(n_params: float, family: str = DEFAULT_FAMILY, *, count: str = "total",
                     n_ctx: int = 2048, vocab_size: int | None = None,
                     tolerance: float = 0.02, max_layers: int = 256,
                     max_width: int = 65536, width_step: int = WIDTH_STEP,
                     head_dim: int | None = None, tp_multiple: int = TP_MULTIPLE,
                     depth: int | None = None, **overrides: Any) -> Architecture:
    """The family's shape whose `count` parameters are nearest N.

    Widths step by 64; heads are 128- (llama) or 64-dimensional (gpt2), preferring head counts
    that are multiples of 8 (8-way tensor parallelism), with 8 KV heads in the llama family.
    Each width at the depth whose count is nearest N (at one width the depth never falls as N
    grows). Shapes with d_model / n_layer within ASPECT_BAND of `target_aspect_ratio(N)` first;
    among those within `tolerance` of N: tensor-parallel-friendly first, then the aspect ratio
    nearest the target; else the closest count. With `depth`, every shape has that many layers
    and the width whose count is nearest N wins (a width-only family keeps loss(N) smooth in
    tiny sweeps, where a change of depth moves the loss more than the size does). Sweeps of tiny
    models pass a finer `width_step`, their own `head_dim` and `tp_multiple=1`.
    """
    check_family(family)
    if not math.isfinite(n_params) or n_params <= 0:
        raise BudgetError(f"parameter count {n_params!r} must be a finite number > 0")
    aspect = target_aspect_ratio(n_params)
    best: tuple[tuple[Any, ...], Architecture, int] | None = None  # (key, 1-layer shape, layers)
    for d in range(width_step, max_width + 1, width_step):
        heads, kv, hd, tp_ok = _proposed_heads(family, d, head_dim, tp_multiple)
        one = build(family, 1, d, n_head=heads, n_kv_head=kv, head_dim=hd, vocab_size=vocab_size,
                    n_ctx=n_ctx, **overrides)
        one_layer = count_of(one, count)
        per_layer = one.layer_params(moe=one.is_moe) if not one.first_dense_layers else \
            count_of(one.with_(n_layer=2), count) - one_layer  # one more block
        fixed = one_layer - per_layer
        if depth:
            total = fixed + depth * per_layer
            key: tuple[Any, ...] = (abs(math.log(total / n_params)),)
            if best is None or key < best[0]:
                best = (key, one, depth)
            if total > n_params:
                break  # wider shapes only grow
            continue
        if one_layer > n_params * (1 + tolerance) and best is not None and not best[0][0]:
            break  # wider shapes only grow (once a shape within the aspect band is found)
        ideal = (n_params - fixed) / per_layer
        deepest = max(1, min(max_layers, math.ceil(ideal)))
        if tp_ok and best is not None and best[0][:3] == (False, 0, False) and \
                d / deepest > aspect and \
                math.log((d / deepest) / aspect) > best[0][3] + ASPECT_PRUNE_MARGIN:
            break  # past the aspect ratio: wider shapes only stray further from it
        # one depth per width, the count nearest N (round(ideal)): it never falls as N grows,
        # where choosing between floor and ceil by the aspect ratio did (42 -> 41 layers of
        # 4096 at 7.6e9, the target ratio rising with N)
        n_layer = max(1, min(max_layers, math.floor(ideal + 0.5)))
        err = abs((fixed + n_layer * per_layer) / n_params - 1.0)
        gap = abs(math.log((d / n_layer) / aspect))
        key = (gap > math.log(ASPECT_BAND),) + (
            (0, not tp_ok, gap, err) if err <= tolerance else (1, err, gap, not tp_ok))
        if best is None or key < best[0]:
            best = (key, one, n_layer)  # built once, at the end
    assert best is not None  # the first width is always scored
    return best[1].with_(n_layer=best[2], name=f"proposed {family}-family shape")
