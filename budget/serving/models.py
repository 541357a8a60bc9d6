"""The few named model shapes `serve`, `roofline` and `memory` need, and a config.json reader.

`_resolve_model` is the one lookup the commands use; the named-model registry in
budget/models (helper `arch`) is meant to replace this private table when the branches meet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from budget.errors import BudgetError
from budget.models.arch import Architecture

# Shapes from the models' Hugging Face config.json files (meta-llama/*).
_MODELS: dict[str, Architecture] = {
    # Llama-2-7B: Touvron et al. 2023 Table 1 / meta-llama/Llama-2-7b-hf config.json (MHA)
    "llama-2-7b": Architecture(n_layer=32, d_model=4096, n_head=32, n_kv_head=32, head_dim=128,
                               d_ff=11008, vocab_size=32000, n_ctx=4096, name="llama-2-7b"),
    # LLaMA-7B (Touvron et al. 2023a): the same block, 2,048 context (llm-analysis llama-7b)
    "llama-7b": Architecture(n_layer=32, d_model=4096, n_head=32, n_kv_head=32, head_dim=128,
                             d_ff=11008, vocab_size=32000, n_ctx=2048, name="llama-7b"),
    # Llama-3-8B: meta-llama/Meta-Llama-3-8B config.json (GQA, 8 KV heads, vocab 128256)
    "llama-3-8b": Architecture(n_layer=32, d_model=4096, n_head=32, n_kv_head=8, head_dim=128,
                               d_ff=14336, vocab_size=128256, n_ctx=8192, name="llama-3-8b"),
    # Llama-2-70B: meta-llama/Llama-2-70b-hf config.json (GQA, 8 KV heads)
    "llama-2-70b": Architecture(n_layer=80, d_model=8192, n_head=64, n_kv_head=8, head_dim=128,
                                d_ff=28672, vocab_size=32000, n_ctx=4096, name="llama-2-70b"),
    # Mixtral-8x7B: mistralai/Mixtral-8x7B-v0.1 config.json (8 experts, top-2, GQA 8 KV heads)
    "mixtral-8x7b": Architecture(n_layer=32, d_model=4096, n_head=32, n_kv_head=8, head_dim=128,
                                 d_ff=14336, vocab_size=32000, n_ctx=32768, n_experts=8,
                                 experts_per_token=2, name="mixtral-8x7b"),
}


def model_names() -> list[str]:
    return sorted(_MODELS)


def _resolve_model(name: str) -> Architecture:
    """A named model's Architecture; BudgetError listing the names when unknown."""
    key = name.strip().lower()
    if key not in _MODELS:
        raise BudgetError(f"unknown model {name!r}; choose one of {', '.join(model_names())} "
                          f"or give --config FILE (a Hugging Face config.json)")
    return _MODELS[key]


def read_config(path: str | Path) -> Architecture:
    """A Llama-style Architecture from a Hugging Face config.json (dense, or Mixtral-style MoE)."""
    p = Path(path)
    try:
        raw: Any = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BudgetError(f"config file {p} does not exist") from None
    except (OSError, ValueError) as exc:
        raise BudgetError(f"config file {p} is not readable JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BudgetError(f"config file {p} must hold a JSON object")
    try:
        d, heads = int(raw["hidden_size"]), int(raw["num_attention_heads"])
        return Architecture(
            n_layer=int(raw["num_hidden_layers"]), d_model=d, n_head=heads,
            n_kv_head=int(raw.get("num_key_value_heads") or heads),
            head_dim=int(raw.get("head_dim") or d // heads), d_ff=int(raw["intermediate_size"]),
            vocab_size=int(raw["vocab_size"]),
            n_ctx=int(raw.get("max_position_embeddings", 4096)),
            tied_embeddings=bool(raw.get("tie_word_embeddings", False)),
            n_experts=int(raw.get("num_local_experts") or 0),  # Mixtral-style MoE keys
            experts_per_token=int(raw.get("num_experts_per_tok") or 0)
            if raw.get("num_local_experts") else 0, name=p.stem)
    except KeyError as exc:
        raise BudgetError(f"config file {p} lacks {exc.args[0]!r} (need num_hidden_layers, "
                          f"hidden_size, num_attention_heads, intermediate_size, vocab_size)") \
            from None
    except (TypeError, ValueError) as exc:
        raise BudgetError(f"config file {p}: {exc}") from None
