"""The architecture options `flops`, `memory` and `plan` share, and the one rule that reads them.

A model is named (--model), read from a local config.json (--config), given as a shape
(--n-layer and --d-model, the rest from --family), or sized (N, in the command's own option).
Field options (--n-kv-head, --mlp, --experts, ...) fill in a shape or override a named/config
model's fields. Library imports stay inside the functions (fast start).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from budget.cli.common import POSITIVE_INT

FIELD_OPTIONS = ("n_layer", "d_model", "n_head", "n_kv_head", "head_dim", "d_ff", "vocab")
BLOCK_OPTIONS = ("mlp", "norm", "positions", "tied_embeddings", "bias", "n_experts",
                 "experts_per_token", "n_shared_experts", "expert_d_ff", "first_dense_layers")
ALL_OPTIONS = ("model", "config", "family", "attention") + FIELD_OPTIONS + BLOCK_OPTIONS


def architecture_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--model/--config/--family and the shape and block options (all default to unset)."""
    return _options(func, vocab=True)


def architecture_options_without_vocab(func: Callable[..., Any]) -> Callable[..., Any]:
    """The same, for a command that keeps its own --vocab option (plan, report)."""
    return _options(func, vocab=False)


def _options(func: Callable[..., Any], *, vocab: bool) -> Callable[..., Any]:
    whole = POSITIVE_INT
    options = [
        click.option("--model", "model", metavar="NAME",
                     help="A published model ('budget models' lists them), e.g. llama-3-8b."),
        click.option("--config", "config", metavar="FILE", type=click.Path(dir_okay=False),
                     help="A local Hugging Face config.json (llama, mistral, mixtral, qwen2, "
                          "gpt2, gpt_neox); read from disk, never downloaded."),
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
        click.option("--attention", type=click.Choice(("unhalved", "causal")), default="unhalved",
                     show_default=True,
                     help="Attention-score FLOPs: unhalved counts every position (PaLM App. B); "
                          "causal counts half (Megatron-LM, FlashAttention MFU)."),
    ]
    if vocab:
        options.insert(9, click.option("--vocab", type=whole,
                                       help="Vocabulary size [default: the family's]."))
    for option in reversed(options):
        func = option(func)
    return func


@dataclass(frozen=True)
class ModelChoice:
    """The architecture the options describe, how it was given, and its default sequence length."""

    arch: Any  # budget.models.arch.Architecture
    given_as: str  # "model", "config", "shape" or "params"
    source: str
    seq_len: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"given_as": self.given_as, "source": self.source, "seq_len": self.seq_len,
                "note": self.note}


def pop_options(kw: dict[str, Any]) -> dict[str, Any]:
    """Take the architecture options out of a command's keyword arguments."""
    return {k: kw.pop(k) for k in ALL_OPTIONS if k in kw}


def resolve_model(opts: dict[str, Any], *, seq_len: int | None, params: float | None = None,
                  count: str = "total") -> ModelChoice | None:
    """The one rule: --model, --config, an explicit shape, or a size N; None when none given."""
    from budget.models import families

    fields: dict[str, Any] = {k: opts[k] for k in FIELD_OPTIONS if opts.get(k) is not None}
    block: dict[str, Any] = {k: opts[k] for k in BLOCK_OPTIONS if opts.get(k) is not None}
    named_by = [f"--{k}" for k in ("model", "config") if opts.get(k)]
    if len(named_by) > 1:
        raise click.UsageError("give --model or --config, not both")
    if named_by and params is not None:
        raise click.UsageError(f"{named_by[0]} fixes the size; do not give a parameter count too")
    if named_by:
        return _named(opts, fields, block, seq_len)
    family = opts.get("family") or families.DEFAULT_FAMILY
    if params is not None:
        if "n_layer" in fields or "d_model" in fields:
            raise click.UsageError("give either a parameter count or --n-layer/--d-model, not both")
        arch = families.shape_for_params(params, family, count=count, n_ctx=seq_len or 2048,
                                         vocab_size=fields.get("vocab"), **block)
        return ModelChoice(arch, "params", f"{family} family shape for N = {params:g} ({count})",
                           seq_len or arch.n_ctx)
    if "n_layer" not in fields and "d_model" not in fields:
        stray = [f"--{k.replace('_', '-')}" for k in fields if k != "vocab"]
        if stray:
            raise click.UsageError(f"shape options ({', '.join(stray)}) need --n-layer and "
                                   "--d-model (or --model, --config)")
        return None
    if "n_layer" not in fields or "d_model" not in fields:
        raise click.UsageError("give --n-layer and --d-model together (or --model, --config)")
    vocab = fields.pop("vocab", None)
    arch = families.build(family, n_ctx=seq_len or 2048, vocab_size=vocab, **fields, **block)
    return ModelChoice(arch.with_(name=f"your {family}-family shape"), "shape",
                       f"{family} family defaults for what was not given", seq_len or arch.n_ctx)


def _named(opts: dict[str, Any], fields: dict[str, Any], block: dict[str, Any],
           seq_len: int | None) -> ModelChoice:
    from budget.models.hf_config import load_config
    from budget.models.named import get_model

    if opts.get("model"):
        named = get_model(opts["model"])
        arch, source, default_seq, note = named.arch, named.source, named.seq_len, named.note
        given = "model"
    else:
        arch = load_config(opts["config"])
        source, default_seq, note, given = f"config {opts['config']}", arch.n_ctx, "", "config"
    changes = {("vocab_size" if k == "vocab" else k): v for k, v in {**fields, **block}.items()}
    if changes:
        arch = arch.with_(**changes, name=f"{arch.name} (modified: "
                                          f"{', '.join(sorted(changes))})")
        source += "; fields changed by options"
    seq = seq_len or default_seq
    if seq > arch.n_ctx:  # a sane-range warning, not an error: the FLOPs are still defined
        note = (f"{note}; " if note else "") + (
            f"WARNING: sequence length {seq:,} exceeds the model's context n_ctx {arch.n_ctx:,}"
            + (" (learned positions stop there)" if arch.positions == "learned" else ""))
    return ModelChoice(arch, given, source, seq, note)
