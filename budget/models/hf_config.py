"""Read a local Hugging Face `config.json` into an `Architecture` (disk only, never the network).

Model types read: llama, mistral (with `sliding_window`), mixtral, qwen2, qwen3, qwen3_moe,
phi3 (Llama-style blocks), gemma2, gemma3/gemma3_text, gpt_oss, deepseek_v2, deepseek_v3
(`budget.models.hf_readers`), gpt2, gpt_neox. Keys that set the parameter count must be present;
keys with a documented default in `transformers` (e.g. `num_key_value_heads`,
`tie_word_embeddings`) take that default, listed per type below. Every number read is bounded
(`budget.models.arch_checks.MAX_LAYERS`, `MAX_SIZE`), so an absurd config is refused at once. Every
problem is a BudgetError naming the file and the key or value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from budget.errors import BudgetError
from budget.models.arch import Architecture
from budget.models.arch_checks import MAX_LAYERS, MAX_SIZE

LLAMA_TYPES = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "phi3")
OTHER_TYPES = ("gemma2", "gemma3", "gemma3_text", "gpt_oss", "deepseek_v2", "deepseek_v3")
MODEL_TYPES = LLAMA_TYPES + OTHER_TYPES + ("gpt2", "gpt_neox")
# Defaults of the `transformers` config classes (LlamaConfig, MistralConfig, MixtralConfig,
# Qwen2Config, Qwen3Config, Qwen3MoeConfig, Phi3Config, GPT2Config, GPTNeoXConfig) for keys
# that config files often leave out.
_TIED_DEFAULT = {"llama": False, "mistral": False, "mixtral": False, "qwen2": False,
                 "qwen3": False, "qwen3_moe": False, "phi3": False, "gpt2": True,
                 "gpt_neox": False}


def load_config(path: str | Path) -> Architecture:
    """The Architecture a config.json describes; its `name` is the file's folder or stem."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BudgetError(f"--config {str(p)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BudgetError(f"--config {str(p)!r}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise BudgetError(f"--config {str(p)!r}: not valid JSON ({exc.msg}, line {exc.lineno})") \
            from None
    except RecursionError:
        raise BudgetError(f"--config {str(p)!r}: nests objects or arrays too deeply to read; a "
                          "config.json is one object of plain values") from None
    if not isinstance(data, dict):
        raise BudgetError(f"--config {str(p)!r}: expected a JSON object")
    name = p.parent.name if p.name == "config.json" and p.parent.name else p.stem
    return from_config(data, name=name, where=str(p))


def from_config(cfg: dict[str, Any], *, name: str = "", where: str = "config") -> Architecture:
    """An Architecture from a parsed config.json dict (see the module docstring)."""
    get = _Reader(cfg, where)
    model_type = get.text("model_type")
    if model_type in LLAMA_TYPES:
        arch = _llama_like(get, model_type, name)
    elif model_type == "gpt2":
        arch = _gpt2(get, name)
    elif model_type == "gpt_neox":
        arch = _neox(get, name)
    elif model_type in OTHER_TYPES:
        from budget.models.hf_readers import READERS

        arch = READERS[model_type](get, name)
    else:
        raise BudgetError(f"{where}: model_type {model_type!r} is not read; supported: "
                          f"{', '.join(MODEL_TYPES)}")
    return arch


class _Reader:
    """Typed access to config keys; errors name the file and the key."""

    def __init__(self, cfg: dict[str, Any], where: str) -> None:
        self.cfg, self.where = cfg, where

    def _raw(self, key: str, default: Any) -> Any:
        if key in self.cfg and self.cfg[key] is not None:
            return self.cfg[key]
        if default is _REQUIRED:
            raise BudgetError(f"{self.where}: missing key {key!r}")
        return default

    def whole(self, key: str, default: Any = None) -> int:
        value = self._raw(key, _REQUIRED if default is None else default)
        limit = MAX_LAYERS if "layers" in key or key == "n_layer" else MAX_SIZE
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise BudgetError(f"{self.where}: {key}={value!r} must be a whole number from 0 to "
                              f"{limit:,}")
        return value

    def optional(self, key: str) -> int:
        """A whole number, 0 when absent or null (e.g. sliding_window, q_lora_rank)."""
        return self.whole(key, 0)

    def absent_or(self, key: str, allowed: Any) -> None:
        """Refuse a key whose value changes the count in a way this reader does not model."""
        if key in self.cfg and self.cfg[key] is not None and self.cfg[key] != allowed:
            raise BudgetError(f"{self.where}: {key}={self.cfg[key]!r} is not modelled "
                              f"(only {allowed!r})")

    def flag(self, key: str, default: bool) -> bool:
        value = self._raw(key, default)
        if not isinstance(value, bool):
            raise BudgetError(f"{self.where}: {key}={value!r} must be true or false")
        return value

    def text(self, key: str) -> str:
        value = self._raw(key, _REQUIRED)
        if not isinstance(value, str):
            raise BudgetError(f"{self.where}: {key}={value!r} must be a string")
        return value


_REQUIRED = object()


def _heads(get: _Reader, d: int, heads_key: str, kv_key: str | None) -> tuple[int, int, int]:
    heads = get.whole(heads_key)
    kv = get.whole(kv_key, heads) if kv_key else heads
    if heads < 1 or kv < 1:
        raise BudgetError(f"{get.where}: {heads_key}={heads} and {kv_key}={kv} must be >= 1")
    if heads % kv:
        raise BudgetError(f"{get.where}: {heads_key}={heads} is not a multiple of {kv_key}={kv}")
    if "head_dim" in get.cfg and get.cfg["head_dim"] is not None:
        return heads, kv, get.whole("head_dim")
    if d % heads:
        raise BudgetError(f"{get.where}: {heads_key}={heads} does not divide the width {d}; "
                          "give head_dim")
    return heads, kv, d // heads


def _llama_like(get: _Reader, model_type: str, name: str) -> Architecture:
    d = get.whole("hidden_size")
    heads, kv, head_dim = _heads(get, d, "num_attention_heads", "num_key_value_heads")
    if model_type == "qwen2":
        bias = "qkv"  # Qwen2Attention: q/k/v projections with bias, o_proj without
        if get.flag("use_sliding_window", False):
            raise BudgetError(f"{get.where}: use_sliding_window=true is not modelled for qwen2")
    else:
        attention_bias = get.flag("attention_bias", False)
        mlp_bias = get.flag("mlp_bias", False)
        if attention_bias != mlp_bias:
            raise BudgetError(f"{get.where}: attention_bias={attention_bias} with "
                              f"mlp_bias={mlp_bias} is not modelled (biases are all or none)")
        bias = "all" if attention_bias else "none"
    moe: dict[str, Any] = {}
    if model_type == "mixtral":
        experts, k = get.whole("num_local_experts"), get.whole("num_experts_per_tok")
        if not 1 <= k <= experts:
            raise BudgetError(f"{get.where}: num_experts_per_tok={k} must be between 1 and "
                              f"num_local_experts={experts}")
        moe = {"n_experts": experts, "experts_per_token": k}
    if model_type == "qwen3_moe":
        get.absent_or("decoder_sparse_step", 1)
        get.absent_or("mlp_only_layers", [])
        moe = {"n_experts": get.whole("num_experts"), "experts_per_token":
               get.whole("num_experts_per_tok"), "expert_d_ff": get.whole("moe_intermediate_size")}
    parts: dict[str, Any] = {}
    if model_type in ("qwen3", "qwen3_moe"):
        parts["qk_norm"] = True  # Qwen3Attention: q_norm and k_norm over head_dim
        if get.flag("use_sliding_window", False):
            raise BudgetError(f"{get.where}: use_sliding_window=true is not modelled for "
                              f"{model_type}")
    elif model_type in ("mistral", "phi3"):
        parts["window"] = get.optional("sliding_window")  # every layer (Jiang et al. 2023 §2)
    return Architecture(
        n_layer=get.whole("num_hidden_layers"), d_model=d, n_head=heads, n_kv_head=kv,
        head_dim=head_dim, d_ff=get.whole("intermediate_size"), vocab_size=get.whole("vocab_size"),
        n_ctx=get.whole("max_position_embeddings"), mlp="gated", activation="silu",
        norm="rmsnorm", positions="rotary",
        tied_embeddings=get.flag("tie_word_embeddings", _TIED_DEFAULT[model_type]),
        bias=bias, name=name, **moe, **parts)


def _gpt2(get: _Reader, name: str) -> Architecture:
    d = get.whole("n_embd")
    heads, kv, head_dim = _heads(get, d, "n_head", None)
    n_inner = get.cfg.get("n_inner")
    d_ff = 4 * d if n_inner is None else get.whole("n_inner")  # GPT2Config: None means 4 n_embd
    n_ctx = get.whole("n_positions", get.cfg.get("n_ctx") or 1024)
    return Architecture(
        n_layer=get.whole("n_layer"), d_model=d, n_head=heads, n_kv_head=kv, head_dim=head_dim,
        d_ff=d_ff, vocab_size=get.whole("vocab_size"), n_ctx=n_ctx, mlp="plain",
        activation="gelu", norm="layernorm", positions="learned",
        tied_embeddings=get.flag("tie_word_embeddings", True), bias="all", name=name)


def _neox(get: _Reader, name: str) -> Architecture:
    """GPT-NeoX (Pythia): LayerNorm, rotary, 4x GELU MLP, biases on every linear, untied head.
    The parallel residual (use_parallel_residual) changes the data flow, not the count."""
    d = get.whole("hidden_size")
    heads, kv, head_dim = _heads(get, d, "num_attention_heads", None)
    if not get.flag("attention_bias", True):
        raise BudgetError(f"{get.where}: attention_bias=false is not modelled for gpt_neox")
    return Architecture(
        n_layer=get.whole("num_hidden_layers"), d_model=d, n_head=heads, n_kv_head=kv,
        head_dim=head_dim, d_ff=get.whole("intermediate_size"), vocab_size=get.whole("vocab_size"),
        n_ctx=get.whole("max_position_embeddings"), mlp="plain", activation="gelu",
        norm="layernorm", positions="rotary",
        tied_embeddings=get.flag("tie_word_embeddings", _TIED_DEFAULT["gpt_neox"]), bias="all",
        name=name)
