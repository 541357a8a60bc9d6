"""`budget flops`: parameters and FLOPs of a transformer shape, or the per-layer table of a layer list."""

from __future__ import annotations

from typing import Any

import click

from budget.cli.common import POSITIVE, POSITIVE_INT, emit, json_option

BN_MODES = ("train", "inference", "folded")
TRANSFORMER_OPTIONS = ("n_layer", "d_model", "n_head", "d_ff", "params", "tokens")


def si(value: float, unit: str = "") -> str:
    """1.23e9 -> '1.23 G' (three significant digits)."""
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


@click.command(name="flops")
@click.option("--n-layer", type=POSITIVE_INT, help="Transformer layers.")
@click.option("--d-model", type=POSITIVE_INT, help="Transformer width.")
@click.option("--n-head", type=POSITIVE_INT, help="Attention heads [default: d_model / 64].")
@click.option("--d-ff", type=POSITIVE_INT, help="MLP width [default: 4 x d_model].")
@click.option("--n-ctx", type=POSITIVE_INT, default=2048, show_default=True,
              help="Context length (the attention-context term and learned positions).")
@click.option("--vocab", type=POSITIVE_INT, default=50257, show_default=True,
              help="Vocabulary size (GPT-2 BPE by default).")
@click.option("--params", "n_params", type=POSITIVE,
              help="Pick a GPT-style shape with about this many parameters instead.")
@click.option("--count", type=click.Choice(["total", "non_embedding"]), default="total",
              show_default=True, help="Which parameter count --params means.")
@click.option("--tokens", type=POSITIVE, help="Training tokens D: also print C = 6ND and the exact count.")
@click.option("--layers", "layers_file", metavar="FILE",
              help="A TOML layer list (or a built-in: efficientnet-b0, resnet-18, resnet-50).")
@click.option("--image-size", type=POSITIVE_INT, help="Layer list input height in pixels (width scales along).")
@click.option("--detail", is_flag=True, help="Layer list: show the layers inside blocks.")
@click.option("--batch-norm", type=click.Choice(BN_MODES), default="train", show_default=True,
              help="Batch norm FLOPs: 7/element training, 2 inference, 0 folded into the conv.")
@click.option("--bytes-per-element", type=POSITIVE_INT, default=2, show_default=True,
              help="Activation bytes per element (2 for bf16/fp16, 4 for fp32).")
@json_option
def command(n_layer: int | None, d_model: int | None, n_head: int | None, d_ff: int | None,
            n_ctx: int, vocab: int, n_params: float | None, count: str, tokens: float | None,
            layers_file: str | None, image_size: int | None, detail: bool, batch_norm: str,
            bytes_per_element: int, as_json: bool) -> None:
    """FLOPs and parameters of a transformer shape or of a CNN/any layer list.

    Everything printed is FLOPs (1 multiply-accumulate = 2 FLOPs); MAC columns say so. For a
    transformer: parameters (total and non-embedding), forward and training FLOPs per token with
    and without the attention-context term, 3x (training) vs 4x (full recomputation), and with
    --tokens the training compute C = 6ND next to the exact count. For --layers: the per-layer
    table (output shape, params, MACs, FLOPs, activation bytes) per sample, and totals.

    Example: budget flops --n-layer 12 --d-model 768 --n-head 12 --tokens 3e11
    """
    given = {k: v for k, v in dict(n_layer=n_layer, d_model=d_model, n_head=n_head, d_ff=d_ff,
                                   params=n_params, tokens=tokens).items() if v is not None}
    if layers_file is not None:
        if given:
            raise click.UsageError(f"--layers cannot be combined with transformer options "
                                   f"({', '.join('--' + k.replace('_', '-') for k in given)})")
        _layer_table(layers_file, image_size, detail, batch_norm, bytes_per_element, as_json)
        return
    if image_size is not None or detail:
        raise click.UsageError("--image-size and --detail apply only with --layers FILE")
    shape = _shape(n_layer, d_model, n_head, d_ff, n_ctx, vocab, n_params, count)
    from budget.models.layers import TransformerCount

    emit(TransformerCount(shape, tokens), as_json, _render_transformer)


def _shape(n_layer: int | None, d_model: int | None, n_head: int | None, d_ff: int | None,
           n_ctx: int, vocab: int, n_params: float | None, count: str) -> Any:
    from budget.models import transformer

    if n_params is not None:
        if any(v is not None for v in (n_layer, d_model, n_head, d_ff)):
            raise click.UsageError("give either --params or an explicit shape "
                                   "(--n-layer, --d-model, ...), not both")
        return transformer.shape_for_params(n_params, count=count, n_ctx=n_ctx, vocab_size=vocab)
    if n_layer is None or d_model is None:
        raise click.UsageError("give --n-layer and --d-model (with optional --n-head, --d-ff), "
                               "or --params N, or --layers FILE")
    if n_head is None:
        if d_model % transformer.HEAD_DIM:
            raise click.UsageError(f"--d-model {d_model} is not a multiple of "
                                   f"{transformer.HEAD_DIM}; give --n-head")
        n_head = d_model // transformer.HEAD_DIM
    return transformer.ModelShape(n_layer, d_model, n_head,
                                  transformer.FFN_MULT * d_model if d_ff is None else d_ff,
                                  n_ctx, vocab)


def _layer_table(source: str, image_size: int | None, detail: bool, bn: str, bpe: int,
                 as_json: bool) -> None:
    from budget.models import cnn

    spec = cnn.load_network(source)
    network = cnn.evaluate(spec, cnn.Scaling(image_size=image_size), bn)
    emit(cnn.LayerTable(network, bpe, detail), as_json, _render_table)


def _render_transformer(result: Any) -> str:
    d = result.to_dict()
    s = d["shape"]
    lines = [
        f"transformer n_layer={s['n_layer']} d_model={s['d_model']} n_head={s['n_head']} "
        f"d_ff={s['d_ff']} n_ctx={s['n_ctx']} vocab={s['vocab_size']}",
        f"  params            total {d['params_total']:,}   non-embedding "
        f"{d['params_non_embedding']:,}   embedding {d['params_embedding']:,}",
        "  FLOPs per token      with attention context   without",
        f"  forward              {d['forward_flops_per_token']:>24.4g}   "
        f"{d['forward_flops_per_token_no_attention']:.4g}",
        f"  training (3x)        {d['training_flops_per_token']:>24.4g}   "
        f"{d['training_flops_per_token_no_attention']:.4g}",
        f"  recompute (4x)       {d['training_flops_per_token_recompute']:>24.4g}   "
        f"{d['training_flops_per_token_recompute_no_attention']:.4g}",
        f"  6N (total N) {d['six_n_total_flops_per_token']:.4g}   6N (non-embedding N) "
        f"{d['six_n_non_embedding_flops_per_token']:.4g}   attention-context term (forward) "
        f"{d['attention_context_flops_per_token']:.4g}",
    ]
    if d["tokens"] is not None:
        lines += [
            f"  D = {d['tokens']:.4g} tokens: exact training C = {d['training_flops']:.4g} FLOPs; "
            f"6ND = {d['training_flops_6nd']:.4g} (total N), "
            f"{d['training_flops_6nd_non_embedding']:.4g} (non-embedding N)"]
    lines.append("  1 MAC = 2 FLOPs; matmul FLOPs only (see budget.models.transformer).")
    return "\n".join(lines)


def _render_table(table: Any) -> str:
    d = table.to_dict()
    header = f"{'layer':<34} {'output':<14} {'params':>9} {'MACs':>9} {'FLOPs':>9} {'act bytes':>10}"
    lines = [f"{d['network']}, input {'x'.join(map(str, d['input_shape']))}, per sample, "
             f"batch norm {d['batch_norm']}, {d['bytes_per_element']} bytes/element", header]
    for row in d["layers"]:
        lines.append(f"{row['name'][:34]:<34} {'x'.join(map(str, row['output_shape'])):<14} "
                     f"{si(row['params']):>9} {si(row['macs']):>9} {si(row['flops']):>9} "
                     f"{si(row['activation_bytes'], 'B'):>10}")
    t = d["totals"]
    lines += [
        f"{'total':<34} {'':<14} {si(t['params']):>9} {si(t['forward_macs']):>9} "
        f"{si(t['forward_flops']):>9} {si(t['activation_bytes'], 'B'):>10}",
        f"params {t['params']:,}; forward {t['forward_macs']:,} MACs = "
        f"{2 * t['forward_macs']:,} FLOPs + {t['elementwise_flops']:,} element-wise FLOPs = "
        f"{t['forward_flops']:,} FLOPs; training 3x = {t['training_flops']:.4g}, "
        f"4x (recompute) = {t['training_flops_recompute']:.4g} FLOPs per sample"]
    return "\n".join(lines)
