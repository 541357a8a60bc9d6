"""The model lookup `serve` and `roofline` use: the named-model registry (`budget.models.named`)
and the config.json reader (`budget.models.hf_config`), plus the original LLaMA-7B that the
published serving figures of the tests are quoted for.
"""

from __future__ import annotations

from pathlib import Path

from budget.models.arch import Architecture
from budget.models.hf_config import load_config
from budget.models.named import get_model
from budget.models.named import model_names as registry_names

# LLaMA-7B (Touvron et al. 2023a, arXiv:2302.13971 Table 2): Llama-2-7B's block at 2,048 context;
# llm-analysis and TensorRT-LLM quote their serving figures for it
LLAMA_7B = Architecture(n_layer=32, d_model=4096, n_head=32, n_kv_head=32, head_dim=128,
                        d_ff=11008, vocab_size=32000, n_ctx=2048, name="llama-7b")


def model_names() -> list[str]:
    return sorted((*registry_names(), LLAMA_7B.name))


def _resolve_model(name: str) -> Architecture:
    """A named model's Architecture; BudgetError listing the names when unknown."""
    if name.strip().lower() == LLAMA_7B.name:
        return LLAMA_7B
    return get_model(name).arch


def read_config(path: str | Path) -> Architecture:
    """The Architecture a local Hugging Face config.json describes (budget.models.hf_config)."""
    return load_config(path)
