"""`budget models`: the named models, their shapes, counts and the config each shape comes from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from budget.cli.common import emit, json_option


@dataclass(frozen=True)
class ModelList:
    models: tuple[Any, ...]  # budget.models.named.NamedModel

    def to_dict(self) -> dict[str, Any]:
        return {"models": [m.to_dict() for m in self.models]}


@click.command(name="models")
@click.argument("names", nargs=-1)
@json_option
def command(names: tuple[str, ...], as_json: bool) -> None:
    """Published models --model NAME selects in flops, memory and plan, with their sources.

    Each shape is its published config.json (or Brown et al. 2020 Table 2.1 for GPT-3); the
    counts are computed here and the published count is shown beside them. Give names to list
    only those (with their notes).

    Example: budget models llama-3-8b mixtral-8x7b
    """
    from budget.models.named import MODELS, get_model

    chosen = tuple(get_model(n) for n in names) if names else MODELS
    emit(ModelList(chosen), as_json, render_models)


def render_models(result: ModelList) -> str:
    from budget.render import human, table

    rows, sources = [], []
    for m in result.models:
        a = m.arch
        published = "-" if m.published_params is None else (
            f"{m.published_params:,.0f}" if m.published_exact else f"~{human(m.published_params)}")
        rows.append([m.name, f"{a.params_total():,}",
                     human(a.params_active()) if a.is_moe else "", str(a.n_layer), str(a.d_model),
                     f"{a.n_head}/{a.n_kv_head}", str(a.d_ff),
                     f"{a.n_experts}x top-{a.experts_per_token}" if a.is_moe else "",
                     str(a.vocab_size), str(a.n_ctx), published])
        sources.append(f"  {m.name}: {m.source}" + (f"; {m.note}" if m.note else ""))
    lines = [table(["model", "params", "active", "layers", "d_model", "heads/kv", "d_ff", "moe",
                    "vocab", "n_ctx", "published"], rows),
             "", ("params: computed here (embeddings and head included); published: the "
                  "releaser's count (exact safetensors total, or ~ the paper's rounded figure)"),
             "Sources:"] + sources
    return "\n".join(lines)
