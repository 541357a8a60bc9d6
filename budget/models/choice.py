"""The one rule that reads a model from what the user gave: a published name, a local
config.json, a shape (n_layer and d_model, the rest from a family), or a size N.

`budget flops`, `budget memory`, `budget plan` and the Python API all call `resolve_model`, so the
same words give the same model everywhere. Field options (n_kv_head, mlp, n_experts, ...) fill in a
shape or override a named/config model's fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from budget.errors import BudgetError

FIELD_OPTIONS = ("n_layer", "d_model", "n_head", "n_kv_head", "head_dim", "d_ff", "vocab")
BLOCK_OPTIONS = ("mlp", "norm", "positions", "tied_embeddings", "bias", "n_experts",
                 "experts_per_token", "n_shared_experts", "expert_d_ff", "first_dense_layers",
                 "window", "layer_pattern")
ALL_OPTIONS = ("model", "config", "family", "attention") + FIELD_OPTIONS + BLOCK_OPTIONS


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


def resolve_model(opts: dict[str, Any], *, seq_len: int | None, params: float | None = None,
                  count: str = "total") -> ModelChoice | None:
    """The one rule: --model, --config, an explicit shape, or a size N; None when none given."""
    from budget.models import families

    fields: dict[str, Any] = {k: opts[k] for k in FIELD_OPTIONS if opts.get(k) is not None}
    block: dict[str, Any] = {k: opts[k] for k in BLOCK_OPTIONS if opts.get(k) is not None}
    named_by = [f"--{k}" for k in ("model", "config") if opts.get(k)]
    if len(named_by) > 1:
        raise BudgetError("give --model or --config, not both")
    if named_by and params is not None:
        raise BudgetError(f"{named_by[0]} fixes the size; do not give a parameter count too")
    if named_by:
        return _named(opts, fields, block, seq_len)
    family = opts.get("family") or families.DEFAULT_FAMILY
    if params is not None:
        if "n_layer" in fields or "d_model" in fields:
            raise BudgetError("give either a parameter count or --n-layer/--d-model, not both")
        arch = families.shape_for_params(params, family, count=count, n_ctx=seq_len or 2048,
                                         vocab_size=fields.get("vocab"), **block)
        return ModelChoice(arch, "params", f"{family} family shape for N = {params:g} ({count})",
                           seq_len or arch.n_ctx)
    if "n_layer" not in fields and "d_model" not in fields:
        stray = [f"--{k.replace('_', '-')}" for k in fields if k != "vocab"]
        if stray:
            raise BudgetError(f"shape options ({', '.join(stray)}) need --n-layer and "
                                   "--d-model (or --model, --config)")
        return None
    if "n_layer" not in fields or "d_model" not in fields:
        raise BudgetError("give --n-layer and --d-model together (or --model, --config)")
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
