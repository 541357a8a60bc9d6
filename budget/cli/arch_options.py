"""The architecture options `flops`, `memory`, `plan`, `serve` and `roofline` share (the one rule
that reads them is `budget.models.choice.resolve_model`, so every command accepts and refuses the
same shapes).

A model is named (--model), read from a local config.json (--config), given as a shape
(--n-layer and --d-model, the rest from --family), or sized (N, in the command's own option).
Field options (--n-kv-head, --mlp, --experts, ...) fill in a shape or override a named/config
model's fields. Library imports stay inside the functions (fast start).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from budget.cli.common import POSITIVE_INT
from budget.models.choice import ALL_OPTIONS, ModelChoice, resolve_model  # noqa: F401 (re-exported)


def architecture_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--model/--config/--family and the shape and block options (all default to unset)."""
    return _options(func, vocab=True)


def architecture_options_without_vocab(func: Callable[..., Any]) -> Callable[..., Any]:
    """The same, for a command that keeps its own --vocab option (plan, report)."""
    return _options(func, vocab=False)


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The same, for commands that price a model rather than count it (serve, roofline): no
    attention-FLOP convention option."""
    return _options(func, vocab=True, convention=False)


def resolve_architecture(kw: dict[str, Any]) -> Any:
    """Take the options out of `kw` and return the Architecture they name (one-line usage error
    when none is given)."""
    choice = resolve_model(pop_options(kw), seq_len=None)
    if choice is None:
        raise click.UsageError("give --model NAME, --config FILE, or --n-layer with --d-model")
    return choice.arch


def _options(func: Callable[..., Any], *, vocab: bool, convention: bool = True) -> Callable[..., Any]:
    whole = POSITIVE_INT
    options = [
        click.option("--model", "model", metavar="NAME",
                     help="A published model ('budget models' lists them), e.g. llama-3-8b."),
        click.option("--config", "config", metavar="FILE", type=click.Path(dir_okay=False),
                     help="A local Hugging Face config.json (llama, mistral, mixtral, qwen2, "
                          "qwen3, qwen3_moe, phi3, gemma2, gemma3, gpt_oss, deepseek_v2, "
                          "deepseek_v3, gpt2, gpt_neox); read from disk, never downloaded."),
        click.option("--family", type=click.Choice(("llama", "gpt2")), default="llama",
                     show_default=True,
                     help="Defaults for shapes built here: llama = SwiGLU, RMSNorm, rotary, untied, "
                          "no biases, 128-dim heads, vocab 32000; gpt2 = GELU, LayerNorm, learned "
                          "positions, tied, biases, 64-dim heads, vocab 50257."),
        click.option("--n-layer", type=whole, help="Layers."),
        click.option("--d-model", type=whole, help="Width."),
        click.option("--n-head", type=whole, help="Query heads [default: d_model / head_dim]."),
        click.option("--n-kv-head", type=whole,
                     help="Key/value heads (GQA; 1 = MQA) [default: the query heads]."),
        click.option("--head-dim", type=whole,
                     help="Head dimension [default: d_model / n_head, or the family's]."),
        click.option("--d-ff", type=whole,
                     help="MLP width [default: llama 8/3 d rounded up to 256; gpt2 4 d]."),
        click.option("--mlp", type=click.Choice(("plain", "gated")),
                     help="plain: 2 matrices; gated (SwiGLU/GeGLU): 3."),
        click.option("--norm", type=click.Choice(("layernorm", "rmsnorm"))),
        click.option("--positions", type=click.Choice(("learned", "rotary", "none"))),
        click.option("--tied/--untied", "tied_embeddings", default=None,
                     help="Output head shares the token embedding."),
        click.option("--bias", type=click.Choice(("none", "all", "qkv")),
                     help="Linear biases: none (Llama), all (GPT-2), qkv only (Qwen2)."),
        click.option("--experts", "n_experts", type=click.IntRange(min=0),
                     help="MoE: routed experts per layer (0 = dense)."),
        click.option("--experts-per-token", type=click.IntRange(min=0), help="MoE: top-k."),
        click.option("--shared-experts", "n_shared_experts", type=click.IntRange(min=0),
                     help="MoE: always-active experts."),
        click.option("--expert-d-ff", type=click.IntRange(min=0),
                     help="MoE: width of each expert [default: d_ff]."),
        click.option("--first-dense-layers", type=click.IntRange(min=0),
                     help="MoE: leading layers with a dense MLP."),
        click.option("--window", type=click.IntRange(min=0),
                     help="Sliding-window attention over this many tokens (the L layers; "
                          "every layer without --layer-pattern)."),
        click.option("--layer-pattern", metavar="GL...",
                     help="Layer kinds, repeated over the depth: G global attention, L "
                          "sliding window (e.g. LG as Gemma 2 and gpt-oss, LLLLLG as Gemma 3)."),
        click.option("--attention", type=click.Choice(("unhalved", "causal")), default="unhalved",
                     show_default=True,
                     help="Attention-score FLOPs: unhalved counts every position (PaLM App. B); "
                          "causal counts half (Megatron-LM, FlashAttention MFU)."),
    ]
    if not convention:
        options.pop()
    if vocab:
        options.insert(9, click.option("--vocab", type=whole,
                                       help="Vocabulary size [default: the family's]."))
    for option in reversed(options):
        func = option(func)
    return func


def pop_options(kw: dict[str, Any]) -> dict[str, Any]:
    """Take the architecture options out of a command's keyword arguments."""
    return {k: kw.pop(k) for k in ALL_OPTIONS if k in kw}


