"""The model options `serve`, `roofline` and `memory --inference` share: a name, a config.json
or a shape. Option names match `budget flops`/`plan` (--model NAME, --config FILE)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from budget.cli.common import POSITIVE_INT


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--model", "model_name", metavar="NAME",
                     help="A named model, e.g. llama-2-7b, llama-3-8b, llama-2-70b."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="A Hugging Face config.json (Llama-style, dense)."),
        click.option("--n-layer", type=POSITIVE_INT, help="Layers (a shape instead of --model)."),
        click.option("--d-model", type=POSITIVE_INT, help="Model width."),
        click.option("--n-head", type=POSITIVE_INT, help="Query heads (default d_model / 128)."),
        click.option("--n-kv-head", type=POSITIVE_INT, help="KV heads (GQA/MQA; default n_head)."),
        click.option("--d-ff", type=POSITIVE_INT, help="Gated MLP width (default 8/3 d_model)."),
        click.option("--vocab", "vocab_size", type=POSITIVE_INT, default=32000, show_default=True,
                     help="Vocabulary (with a shape)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def resolve_architecture(kw: dict[str, Any]) -> Any:
    """The Architecture the options name; a one-line usage error when none or several."""
    from budget.models.arch import Architecture
    from budget.serving.models import _resolve_model, read_config

    given = [k for k in ("model_name", "config_path", "n_layer") if kw.get(k)]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --model NAME, --config FILE, or "
                               "--n-layer with --d-model")
    if kw.get("model_name"):
        return _resolve_model(kw["model_name"])
    if kw.get("config_path"):
        return read_config(kw["config_path"])
    if not kw.get("d_model"):
        raise click.UsageError("--n-layer needs --d-model")
    d = kw["d_model"]
    heads = kw.get("n_head") or max(1, d // 128)
    d_ff = kw.get("d_ff") or 256 * -(-(8 * d // 3) // 256)  # Llama's rounding to 256
    return Architecture(n_layer=kw["n_layer"], d_model=d, n_head=heads,
                        n_kv_head=kw.get("n_kv_head") or heads, head_dim=d // heads, d_ff=d_ff,
                        vocab_size=kw["vocab_size"], n_ctx=4096,
                        name=f"L{kw['n_layer']}-d{d}")
