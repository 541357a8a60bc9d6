"""`budget flops`: parameters and FLOPs of a transformer shape, or the per-layer table of a layer list."""

from __future__ import annotations

from typing import Any

import click

from budget.cli.arch_options import ALL_OPTIONS, architecture_options, pop_options, resolve_model
from budget.cli.common import POSITIVE, POSITIVE_INT, emit, json_option
from budget.models.families import DEFAULT_N_CTX

BN_MODES = ("train", "inference", "folded")


def si(value: float, unit: str = "") -> str:
    """1.23e9 -> '1.23 G' (three significant digits)."""
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


@click.command(name="flops")
@architecture_options
@click.option("--n-ctx", "--seq-len", "n_ctx", type=POSITIVE_INT,
              help="Sequence length T of the attention term (and the learned positions of a "
                   f"shape built here) [default: the model's training length, else {DEFAULT_N_CTX}].")
@click.option("--params", "n_params", type=POSITIVE,
              help="Pick a shape of the --family with about this many parameters instead.")
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
def command(n_ctx: int | None, n_params: float | None, count: str, tokens: float | None,
            layers_file: str | None, image_size: int | None, detail: bool, batch_norm: str,
            bytes_per_element: int, as_json: bool, **arch_kw: Any) -> None:
    """FLOPs and parameters of a transformer (named, from a config.json, or a shape) or of a CNN.

    Everything printed is FLOPs (1 multiply-accumulate = 2 FLOPs). For a transformer: parameters
    (total, non-embedding, active per token for MoE), forward FLOPs per token by named term (QKV,
    attention scores and values, output projection, MLP or experts, router, logits), training
    3x forward and 4x with full recomputation, the ratio to 6N, and with --tokens the training
    compute next to 6ND. The attention convention (--attention) is printed. For --layers: the
    per-layer table (output shape, params, MACs, FLOPs, activation bytes) per sample, and totals.

    Example: budget flops --model llama-2-7b --tokens 2e12
    """
    opts = pop_options(arch_kw)
    given = [k for k in ALL_OPTIONS if k not in ("family", "attention") and opts.get(k) is not None]
    given += [k for k, v in dict(params=n_params, tokens=tokens).items() if v is not None]
    if layers_file is not None:
        if given:
            raise click.UsageError(f"--layers cannot be combined with transformer options "
                                   f"({', '.join('--' + k.replace('_', '-') for k in given)})")
        _layer_table(layers_file, image_size, detail, batch_norm, bytes_per_element, as_json)
        return
    if image_size is not None or detail:
        raise click.UsageError("--image-size and --detail apply only with --layers FILE")
    choice = resolve_model(opts, seq_len=n_ctx, params=n_params, count=count)
    if choice is None:
        raise click.UsageError("give --model NAME, --config FILE, --n-layer with --d-model, "
                               "--params N, or --layers FILE")
    from budget.models.count import ArchitectureCount

    emit(ArchitectureCount(choice.arch, choice.seq_len, opts["attention"], tokens, choice.source,
                           choice.note), as_json, _render_transformer)


def _layer_table(source: str, image_size: int | None, detail: bool, bn: str, bpe: int,
                 as_json: bool) -> None:
    from budget.models import cnn

    spec = cnn.load_network(source)
    network = cnn.evaluate(spec, cnn.Scaling(image_size=image_size), bn)
    emit(cnn.LayerTable(network, bpe, detail), as_json, _render_table)


def _render_transformer(result: Any) -> str:
    from budget.render import human

    d = result.to_dict()
    head = d["model"] or f"{d['family']} family"
    lines = [f"{head}: {d['description']}"]
    if d["source"]:
        lines.append(f"  source: {d['source']}")
    active = (f"   active per token {d['params_active']:,}"
              if d["params_active"] != d["params_total"] else "")
    lines += [
        f"  params            total {d['params_total']:,}   non-embedding "
        f"{d['params_non_embedding']:,}   embedding {d['params_embedding']:,}{active}",
        f"  forward FLOPs per token at T = {d['seq_len']:,} ({d['attention_convention']}: "
        f"{d['attention_convention_text']}):"]
    forward = d["forward_flops_per_token"]
    for name, value in d["forward_flops_terms"].items():
        if value:
            lines.append(f"    {name:<18} {value:>12.4g}  {value / forward:6.1%}")
    lines += [
        "  FLOPs per token      with attention context   without",
        f"  forward              {forward:>24.4g}   {d['forward_flops_per_token_no_attention']:.4g}",
        f"  training (3x)        {d['training_flops_per_token']:>24.4g}   "
        f"{d['training_flops_per_token_no_attention']:.4g}",
        f"  recompute (4x)       {d['training_flops_per_token_recompute']:>24.4g}   "
        f"{d['training_flops_per_token_recompute_no_attention']:.4g}",
        f"  6N (N {'active' if active else 'total'} {human(d['params_active'])}) "
        f"{d['six_n_active_flops_per_token']:.4g}: training FLOPs are {d['ratio_to_6n']:.3f}x "
        f"6N; 6N (non-embedding N) {d['six_n_non_embedding_flops_per_token']:.4g}",
    ]
    if d["tokens"] is not None:
        lines += [
            f"  D = {d['tokens']:.4g} tokens: exact training C = {d['training_flops']:.4g} FLOPs; "
            f"6ND = {d['training_flops_6nd']:.4g}, "
            f"{d['training_flops_6nd_non_embedding']:.4g} (non-embedding N)"]
    if d["note"]:
        lines.append(f"  note: {d['note']}")
    lines.append("  1 MAC = 2 FLOPs; matmul FLOPs only (see budget.models.arch).")
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
