"""config.json readers for the decoders beyond Llama-style blocks: Gemma 2/3 (local/global
layers, four norms per block), gpt-oss (sliding-window layers, attention sinks, MoE with biases)
and DeepSeek-V2/V3 (multi-head latent attention, DeepSeekMoE). Called by
`budget.models.hf_config.from_config`; each reads what sets the count and refuses what it does
not model.
"""

from __future__ import annotations

from collections.abc import Callable

from budget.errors import BudgetError
from budget.models.arch import Architecture
from budget.models.hf_config import _heads, _Reader

LAYER_TYPES = {"full_attention": "G", "sliding_attention": "L"}


def shortest_cycle(letters: str) -> str:
    """The shortest prefix whose repetition gives `letters` (e.g. 'LGLG...' -> 'LG')."""
    n = len(letters)
    for p in range(1, n + 1):
        if (letters[:p] * (n // p + 1))[:n] == letters:
            return letters[:p]
    return letters


def _layer_types(get: _Reader, n_layer: int, default: str) -> str:
    """`layer_types` (transformers >= 4.53) as a G/L cycle; `default` when the key is absent."""
    types = get.cfg.get("layer_types")
    if types is None:
        return default
    if not isinstance(types, list) or len(types) != n_layer or \
            any(t not in LAYER_TYPES for t in types):
        raise BudgetError(f"{get.where}: layer_types must list {n_layer} entries of "
                          f"{', '.join(LAYER_TYPES)}")
    return shortest_cycle("".join(LAYER_TYPES[t] for t in types))


def _gemma(get: _Reader, name: str, version: int) -> Architecture:
    """Gemma 2 (Gemma Team 2024, arXiv:2408.00118 Table 1) and Gemma 3 text (arXiv:2503.19786
    §2): GeGLU MLP, RMSNorm before and after each sub-layer (4 per block), tied head, heads of
    head_dim (256 for Gemma 2 9B, not d_model / heads). Gemma 2 alternates local (window 4096)
    and global layers starting with a local one (`Gemma2DecoderLayer.is_sliding = not
    layer_idx % 2`); Gemma 3 has `sliding_window_pattern` - 1 local layers per global one, and
    q/k RMSNorm (`Gemma3Attention.q_norm`, `k_norm`)."""
    if version == 3 and isinstance(get.cfg.get("text_config"), dict):
        get = _Reader(get.cfg["text_config"], f"{get.where} text_config")  # the text decoder only
    d = get.whole("hidden_size")
    heads, kv, head_dim = _heads(get, d, "num_attention_heads", "num_key_value_heads")
    if get.flag("attention_bias", False):
        raise BudgetError(f"{get.where}: attention_bias=true is not modelled for gemma")
    n_layer = get.whole("num_hidden_layers")
    every = get.whole("sliding_window_pattern", 6) if version == 3 else 2
    default = "LG" if version == 2 else "L" * (max(every, 1) - 1) + "G"
    pattern = _layer_types(get, n_layer, default)
    return Architecture(
        n_layer=n_layer, d_model=d, n_head=heads, n_kv_head=kv, head_dim=head_dim,
        d_ff=get.whole("intermediate_size"), vocab_size=get.whole("vocab_size"),
        n_ctx=get.whole("max_position_embeddings"), mlp="gated", activation="gelu",
        norm="rmsnorm", positions="rotary", tied_embeddings=get.flag("tie_word_embeddings", True),
        bias="none", name=name, window=get.whole("sliding_window"),
        layer_pattern="" if pattern == "L" else pattern, norms_per_layer=4,
        qk_norm=version == 3)


def _gpt_oss(get: _Reader, name: str) -> Architecture:
    """gpt-oss (OpenAI 2025, gpt-oss model card §2): alternating sliding-window (128) and full
    attention layers, GQA with head_dim 64, biases on q/k/v/o, a learned sink logit per head,
    MoE of `num_local_experts` SwiGLU experts with biases, a router with bias, untied head."""
    d = get.whole("hidden_size")
    heads, kv, head_dim = _heads(get, d, "num_attention_heads", "num_key_value_heads")
    if not get.flag("attention_bias", True):
        raise BudgetError(f"{get.where}: attention_bias=false is not modelled for gpt_oss")
    n_layer = get.whole("num_hidden_layers")
    experts, k = get.whole("num_local_experts"), get.whole("num_experts_per_tok")
    pattern = _layer_types(get, n_layer, "LG")
    return Architecture(
        n_layer=n_layer, d_model=d, n_head=heads, n_kv_head=kv, head_dim=head_dim,
        d_ff=get.whole("intermediate_size"), vocab_size=get.whole("vocab_size"),
        n_ctx=get.whole("max_position_embeddings"), mlp="gated", activation="silu",
        norm="rmsnorm", positions="rotary",
        tied_embeddings=get.flag("tie_word_embeddings", False), bias="all", n_experts=experts,
        experts_per_token=_top_k(get, k, experts), name=name,
        window=get.whole("sliding_window"), layer_pattern="" if pattern == "L" else pattern,
        attention_sinks=True, router_bias=True)


def _deepseek(get: _Reader, name: str, version: int) -> Architecture:
    """DeepSeek-V2 (arXiv:2405.04434 §2.1-2.2) and V3 (arXiv:2412.19437 §2.1): MLA with
    q_lora_rank (null: queries projected from d_model, V2-Lite), kv_lora_rank, rope and
    non-rope head dims, v_head_dim; DeepSeekMoE with `first_k_dense_replace` dense layers,
    n_routed_experts of moe_intermediate_size, n_shared_experts. V3's router keeps a
    bias per expert for its aux-loss-free balancing (`e_score_correction_bias`, topk_method
    noaux_tc). The multi-token-prediction module (`num_nextn_predict_layers`) is not counted:
    DeepSeek's 671B total excludes it (the hub checkpoint's 685B includes its 14B)."""
    d = get.whole("hidden_size")
    heads = get.whole("num_attention_heads")
    if heads < 1:
        raise BudgetError(f"{get.where}: num_attention_heads={heads} must be >= 1")
    get.absent_or("moe_layer_freq", 1)
    get.absent_or("attention_bias", False)
    n_layer = get.whole("num_hidden_layers")
    experts = get.whole("n_routed_experts")
    k = get.whole("num_experts_per_tok")
    rope, nope = get.whole("qk_rope_head_dim"), get.whole("qk_nope_head_dim")
    noaux = get.cfg.get("topk_method") == "noaux_tc"
    return Architecture(
        n_layer=n_layer, d_model=d, n_head=heads, n_kv_head=heads, head_dim=rope + nope,
        d_ff=get.whole("intermediate_size"), vocab_size=get.whole("vocab_size"),
        n_ctx=get.whole("max_position_embeddings"), mlp="gated", activation="silu",
        norm="rmsnorm", positions="rotary",
        tied_embeddings=get.flag("tie_word_embeddings", False), bias="none",
        n_experts=experts, experts_per_token=_top_k(get, k, experts),
        n_shared_experts=get.whole("n_shared_experts", 0),
        expert_d_ff=get.whole("moe_intermediate_size"),
        first_dense_layers=min(get.whole("first_k_dense_replace", 0), n_layer), name=name,
        attention="latent", q_lora_rank=get.optional("q_lora_rank"),
        kv_lora_rank=get.whole("kv_lora_rank"), qk_rope_head_dim=rope, qk_nope_head_dim=nope,
        v_head_dim=get.whole("v_head_dim"), router_bias=version == 3 or noaux)


def _top_k(get: _Reader, k: int, experts: int) -> int:
    if not 1 <= k <= experts:
        raise BudgetError(f"{get.where}: num_experts_per_tok={k} must be between 1 and the "
                          f"{experts} experts")
    return k


READERS: dict[str, Callable[[_Reader, str], Architecture]] = {
    "gemma2": lambda get, name: _gemma(get, name, 2),
    "gemma3": lambda get, name: _gemma(get, name, 3),
    "gemma3_text": lambda get, name: _gemma(get, name, 3),
    "gpt_oss": _gpt_oss,
    "deepseek_v2": lambda get, name: _deepseek(get, name, 2),
    "deepseek_v3": lambda get, name: _deepseek(get, name, 3),
}

