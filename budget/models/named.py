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
           vocab: int, n_ctx: int, head_dim: int = 0, **kw: Any) -> Architecture:
    """Llama-style block: RMSNorm, rotary, SwiGLU, no biases, untied head (unless given)."""
    return Architecture(n_layer, d_model, n_head, n_kv_head, head_dim or d_model // n_head, d_ff,
                        vocab, n_ctx, name=name, **kw)


def _deepseek(name: str, n_layer: int, d_model: int, n_head: int, d_ff: int, vocab: int,
              **kw: Any) -> Architecture:
    """DeepSeek-V2/V3 block: MLA (kv rank 512, qk 128 + 64 rope, v 128), DeepSeekMoE."""
    return Architecture(n_layer, d_model, n_head, n_head, 192, d_ff, vocab, 163840, name=name,
                        attention="latent", kv_lora_rank=512, qk_rope_head_dim=64,
                        qk_nope_head_dim=128, v_head_dim=128, **kw)


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
    NamedModel("llama-7b", _llama("llama-7b", 32, 4096, 32, 32, 11008, 32000, 2048),
               "Touvron et al. 2023a, arXiv:2302.13971 Table 2 (LLaMA-7B, 2,048 context)", 6.7e9,
               note="Llama-2-7B's block at 2,048 context; llm-analysis and TensorRT-LLM quote "
                    "their serving figures for it"),
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
    NamedModel("mistral-7b", _llama("mistral-7b", 32, 4096, 32, 8, 14336, 32000, 32768,
                                    window=4096),
               _hf("mistralai/Mistral-7B-v0.1"), 7_241_732_096, True,
               note="sliding-window attention over 4,096 tokens in every layer (Jiang et al. "
                    "2023 §2): attention FLOPs and the KV cache stop growing past the window"),
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
    NamedModel("qwen3-8b", _llama("qwen3-8b", 36, 4096, 32, 8, 12288, 151936, 40960,
                                  qk_norm=True),
               _hf("Qwen/Qwen3-8B"), 8_190_735_360, True, note="q/k RMSNorm per head"),
    NamedModel("qwen3-30b-a3b", _llama("qwen3-30b-a3b", 48, 2048, 32, 4, 6144, 151936, 40960,
                                       head_dim=128, qk_norm=True, n_experts=128,
                                       experts_per_token=8, expert_d_ff=768),
               _hf("Qwen/Qwen3-30B-A3B"), 30_532_122_624, True,
               note="3,353,032,704 active per token (top-8 of 128 experts; the card's 3.3B)"),
    NamedModel("phi-3-mini", _llama("phi-3-mini", 32, 3072, 32, 32, 8192, 32064, 4096,
                                    window=2047),
               _hf("microsoft/Phi-3-mini-4k-instruct"), 3_821_079_552, True,
               note="sliding window 2,047 in every layer (config.json sliding_window)"),
    NamedModel("gemma-2-9b", _llama("gemma-2-9b", 42, 3584, 16, 8, 14336, 256000, 8192,
                                    head_dim=256, activation="gelu", tied_embeddings=True,
                                    window=4096, layer_pattern="LG", norms_per_layer=4),
               _hf("google/gemma-2-9b"), 9_241_705_984, True,
               note="local (window 4,096) and global layers alternate (Gemma Team 2024 §2)"),
    NamedModel("gemma-3-1b", _llama("gemma-3-1b", 26, 1152, 4, 1, 6912, 262144, 32768,
                                    head_dim=256, activation="gelu", tied_embeddings=True,
                                    window=512, layer_pattern="LLLLLG", norms_per_layer=4,
                                    qk_norm=True),
               _hf("google/gemma-3-1b-pt"), 999_885_952, True,
               note="five local layers (window 512) per global one (Gemma Team 2025 §2.1)"),
    NamedModel("gpt-oss-20b", _llama("gpt-oss-20b", 24, 2880, 64, 8, 2880, 201088, 131072,
                                     head_dim=64, bias="all", n_experts=32, experts_per_token=4,
                                     window=128, layer_pattern="LG", attention_sinks=True,
                                     router_bias=True),
               _hf("openai/gpt-oss-20b"), 20_914_757_184, True, train_seq_len=4096,
               note="sliding (window 128) and full layers alternate; the card's 3.61B active "
                    "leaves out the token embedding (4,187,440,704 here with it)"),
    NamedModel("gpt-oss-120b", _llama("gpt-oss-120b", 36, 2880, 64, 8, 2880, 201088, 131072,
                                      head_dim=64, bias="all", n_experts=128,
                                      experts_per_token=4, window=128, layer_pattern="LG",
                                      attention_sinks=True, router_bias=True),
               _hf("openai/gpt-oss-120b"), 116.83e9, False, train_seq_len=4096,
               note="sliding (window 128) and full layers alternate (model card: 116.83B total, "
                    "5.13B active without the token embedding)"),
    NamedModel("deepseek-v2-lite", _deepseek("deepseek-v2-lite", 27, 2048, 16, 10944, 102400,
                                             q_lora_rank=0, n_experts=64, experts_per_token=6,
                                             n_shared_experts=2, expert_d_ff=1408,
                                             first_dense_layers=1),
               _hf("deepseek-ai/DeepSeek-V2-Lite"), 15.7e9, False,
               note="multi-head latent attention (kv rank 512); 15,706,484,224 counted; the "
                    "card's 2.4B active leaves out the token embedding"),
    NamedModel("deepseek-v3", _deepseek("deepseek-v3", 61, 7168, 128, 18432, 129280,
                                        q_lora_rank=1536, n_experts=256, experts_per_token=8,
                                        n_shared_experts=1, expert_d_ff=2048,
                                        first_dense_layers=3, router_bias=True),
               _hf("deepseek-ai/DeepSeek-V3"), 671e9, False, train_seq_len=4096,
               note="multi-head latent attention (kv rank 512, 576 cached values per layer); "
                    "the multi-token-prediction module (14B) is not counted, as in the 671B "
                    "(DeepSeek-AI 2024, arXiv:2412.19437 §4.2: pre-trained at 4K)"),
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
