"""Named models: published decoder-only shapes, each with the config or table it comes from.

Every shape is read from the model's own published `config.json` (Hugging Face hub, the
organisation that released it) or, for GPT-3, from Brown et al. 2020 Table 2.1. `published` is
the parameter count the releaser states (the safetensors total on the hub, or the model card),
and the tests check that `Architecture.params_total()` reproduces it exactly where it is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from budget.errors import BudgetError
from budget.models.arch import Architecture

GPT2_VOCAB = 50257  # GPT-2 BPE (Radford et al. 2019); GPT-3 reuses it (Brown et al. 2020 §2.1)


@dataclass(frozen=True)
class NamedModel:
    """A published model: its architecture, where the shape comes from, its stated size."""

    name: str
    arch: Architecture
    source: str
    published_params: float | None = None  # as the releaser states it
    published_exact: bool = False  # True: an exact count (safetensors total), False: rounded
    train_seq_len: int | None = None  # pre-training sequence length when it differs from n_ctx
    note: str = ""

    @property
    def seq_len(self) -> int:
        """The sequence length FLOPs and activations use by default."""
        return self.train_seq_len or self.arch.n_ctx

    def to_dict(self) -> dict[str, Any]:
        a = self.arch
        return {"name": self.name, "source": self.source, "published_params": self.published_params,
                "published_exact": self.published_exact, "seq_len": self.seq_len,
                "note": self.note, "params_total": a.params_total(),
                "params_non_embedding": a.params_non_embedding(),
                "params_active": a.params_active(), "architecture": a.to_dict()}


def _gpt2(name: str, n_layer: int, d_model: int, n_head: int, n_ctx: int, head_dim: int = 0,
          **kw: Any) -> Architecture:
    """GPT-2/GPT-3 block: LayerNorm, learned positions, 4x GELU MLP, biases, tied head."""
    return Architecture(n_layer, d_model, n_head, n_head, head_dim or d_model // n_head,
                        4 * d_model, GPT2_VOCAB, n_ctx, mlp="plain", activation="gelu",
                        norm="layernorm", positions="learned", tied_embeddings=True, bias="all",
                        name=name, **kw)


def _llama(name: str, n_layer: int, d_model: int, n_head: int, n_kv_head: int, d_ff: int,
           vocab: int, n_ctx: int, **kw: Any) -> Architecture:
    """Llama-style block: RMSNorm, rotary, SwiGLU, no biases, untied head (unless given)."""
    return Architecture(n_layer, d_model, n_head, n_kv_head, d_model // n_head, d_ff, vocab,
                        n_ctx, name=name, **kw)


def _hf(repo: str) -> str:
    return f"huggingface.co/{repo} config.json"


_GPT3 = "Brown et al. 2020, arXiv:2005.14165, Table 2.1 (n_ctx 2048, GPT-2 BPE vocabulary)"
_GPT3_NOTE = ("GPT-3 alternates dense and locally banded sparse attention layers (§2.1); "
              "FLOPs here count every layer as dense")

MODELS: tuple[NamedModel, ...] = (
    NamedModel("gpt2", _gpt2("gpt2", 12, 768, 12, 1024), _hf("openai-community/gpt2"),
               124_439_808, True),
    NamedModel("gpt2-medium", _gpt2("gpt2-medium", 24, 1024, 16, 1024),
               _hf("openai-community/gpt2-medium"), 354_823_168, True),
    NamedModel("gpt2-large", _gpt2("gpt2-large", 36, 1280, 20, 1024),
               _hf("openai-community/gpt2-large"), 774_030_080, True),
    NamedModel("gpt2-xl", _gpt2("gpt2-xl", 48, 1600, 25, 1024), _hf("openai-community/gpt2-xl"),
               1_557_611_200, True),
    NamedModel("gpt3-small", _gpt2("gpt3-small", 12, 768, 12, 2048), _GPT3, 125e6, note=_GPT3_NOTE),
    NamedModel("gpt3-medium", _gpt2("gpt3-medium", 24, 1024, 16, 2048), _GPT3, 350e6,
               note=_GPT3_NOTE),
    NamedModel("gpt3-large", _gpt2("gpt3-large", 24, 1536, 16, 2048), _GPT3, 760e6, note=_GPT3_NOTE),
    NamedModel("gpt3-xl", _gpt2("gpt3-xl", 24, 2048, 16, 2048, head_dim=128), _GPT3, 1.3e9,
               note="Table 2.1 prints 24 heads of d_head 128, which does not multiply to d_model "
                    "2048; we keep d_head 128 (16 heads, as GPT-Neo 1.3B). " + _GPT3_NOTE),
    NamedModel("gpt3-2.7b", _gpt2("gpt3-2.7b", 32, 2560, 32, 2048), _GPT3, 2.7e9, note=_GPT3_NOTE),
    NamedModel("gpt3-6.7b", _gpt2("gpt3-6.7b", 32, 4096, 32, 2048), _GPT3, 6.7e9, note=_GPT3_NOTE),
    NamedModel("gpt3-13b", _gpt2("gpt3-13b", 40, 5140, 40, 2048, head_dim=128), _GPT3, 13.0e9,
               note="d_model 5140 with 40 heads of 128 (q/k/v width 5120) exactly as Table 2.1 "
                    "prints it. " + _GPT3_NOTE),
    NamedModel("gpt3-175b", _gpt2("gpt3-175b", 96, 12288, 96, 2048), _GPT3, 175.0e9,
               note=_GPT3_NOTE),
    NamedModel("llama-2-7b", _llama("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, 4096),
               _hf("meta-llama/Llama-2-7b-hf"), 6_738_415_616, True),
    NamedModel("llama-2-13b", _llama("llama-2-13b", 40, 5120, 40, 40, 13824, 32000, 4096),
               _hf("meta-llama/Llama-2-13b-hf"), 13_015_864_320, True),
    NamedModel("llama-2-70b", _llama("llama-2-70b", 80, 8192, 64, 8, 28672, 32000, 4096),
               _hf("meta-llama/Llama-2-70b-hf"), 68_976_648_192, True),
    NamedModel("llama-3-8b", _llama("llama-3-8b", 32, 4096, 32, 8, 14336, 128256, 8192),
               _hf("meta-llama/Meta-Llama-3-8B"), 8_030_261_248, True),
    NamedModel("llama-3-70b", _llama("llama-3-70b", 80, 8192, 64, 8, 28672, 128256, 8192),
               _hf("meta-llama/Meta-Llama-3-70B"), 70_553_706_496, True),
    NamedModel("llama-3.1-8b", _llama("llama-3.1-8b", 32, 4096, 32, 8, 14336, 128256, 131072),
               _hf("meta-llama/Llama-3.1-8B"), 8_030_261_248, True, train_seq_len=8192,
               note="pre-trained at 8,192 tokens, then extended to 128K (Dubey et al. 2024 §3.4)"),
    NamedModel("llama-3.1-70b", _llama("llama-3.1-70b", 80, 8192, 64, 8, 28672, 128256, 131072),
               _hf("meta-llama/Llama-3.1-70B"), 70_553_706_496, True, train_seq_len=8192,
               note="pre-trained at 8,192 tokens, then extended to 128K (Dubey et al. 2024 §3.4)"),
    NamedModel("llama-3.1-405b",
               _llama("llama-3.1-405b", 126, 16384, 128, 8, 53248, 128256, 131072),
               _hf("meta-llama/Llama-3.1-405B"), 405_853_388_800, True, train_seq_len=8192,
               note="pre-trained at 8,192 tokens on 15.6T tokens, then extended to 128K "
                    "(Dubey et al. 2024 §3.4, Table 3)"),
    NamedModel("mistral-7b", _llama("mistral-7b", 32, 4096, 32, 8, 14336, 32000, 32768),
               _hf("mistralai/Mistral-7B-v0.1"), 7_241_732_096, True,
               note="sliding-window attention over 4,096 tokens (Jiang et al. 2023 §2); FLOPs "
                    "here count full causal attention over the sequence"),
    NamedModel("mixtral-8x7b", _llama("mixtral-8x7b", 32, 4096, 32, 8, 14336, 32000, 32768,
                                      n_experts=8, experts_per_token=2),
               _hf("mistralai/Mixtral-8x7B-v0.1"), 46_702_792_704, True,
               note="12,879,925,248 active per token (top-2 of 8 experts; Jiang et al. 2024 §2.1 "
                    "rounds to 13B)"),
    NamedModel("qwen2.5-0.5b", _llama("qwen2.5-0.5b", 24, 896, 14, 2, 4864, 151936, 32768,
                                      tied_embeddings=True, bias="qkv"),
               _hf("Qwen/Qwen2.5-0.5B"), 494_032_768, True),
    NamedModel("qwen2.5-7b", _llama("qwen2.5-7b", 28, 3584, 28, 4, 18944, 152064, 131072,
                                    bias="qkv"),
               _hf("Qwen/Qwen2.5-7B"), 7_615_616_512, True),
    NamedModel("qwen2.5-72b", _llama("qwen2.5-72b", 80, 8192, 64, 8, 29568, 152064, 131072,
                                     bias="qkv"),
               _hf("Qwen/Qwen2.5-72B"), 72_706_203_648, True),
)

_BY_NAME = {m.name: m for m in MODELS}


def get_model(name: str) -> NamedModel:
    """A named model (case-insensitive); BudgetError lists the names otherwise."""
    key = name.strip().lower()
    if key not in _BY_NAME:
        raise BudgetError(f"unknown model {name!r}; choose one of {', '.join(_BY_NAME)} "
                          "('budget models' lists them) or give --config FILE")
    return _BY_NAME[key]


def model_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)
