"""`budget frontier`: the loss you buy over tokens-per-parameter at one compute budget."""

from __future__ import annotations

from typing import Any

import click

from budget.cli.common import ACCELERATOR, FINITE, FRACTION, POSITIVE, POSITIVE_INT, emit, json_option
from budget.hardware.catalog import PRECISIONS
from budget.models.families import DEFAULT_N_CTX


def parse_ratios(text: str) -> tuple[float, ...]:
    """'5,10,20' -> (5.0, 10.0, 20.0); a one-line usage error otherwise."""
    try:
        ratios = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        ratios = ()
    if not ratios or any(not r > 0 or r == float("inf") for r in ratios):
        raise click.BadParameter(f"{text!r} must be positive numbers separated by commas, e.g. "
                                 f"5,20,100,500", param_hint="'--ratios'")
    return ratios


@click.command(name="frontier")
@click.option("--flops", type=POSITIVE, required=True, help="Training compute C in FLOPs, e.g. 1e21.")
@click.option("--ratios", default="5,10,20,50,100,200,500", show_default=True,
              help="Tokens per parameter D/N to tabulate (comma-separated).")
@click.option("--inference-tokens", type=FINITE, default=0.0, show_default=True, metavar="T",
              help="Lifetime tokens served: adds the inference FLOPs and dollars of each row.")
@click.option("--seq-len", type=POSITIVE_INT, default=DEFAULT_N_CTX, show_default=True,
              help="Context length; served tokens attend to half of it on average.")
@click.option("--gpu", type=ACCELERATOR, default="h100", show_default=True, help="Accelerator that prices the FLOPs.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="bf16", show_default=True,
              help="Precision of the peak.")
@click.option("--mfu", type=FRACTION, default=0.40, show_default=True,
              help="MFU for pricing training and inference FLOPs alike.")
@click.option("--price-per-hour", type=POSITIVE, help="Override the catalog $/GPU-hour.")
@click.option("--catalog", "catalog_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Extra catalog TOML (repeatable; also BUDGET_CATALOG).")
@click.option("--png", "png_path", type=click.Path(dir_okay=False),
              help="Also draw the loss and extra-compute curves into this PNG file.")
@json_option
def command(flops: float, ratios: str, inference_tokens: float, seq_len: int, gpu: str,
            precision: str, mfu: float, price_per_hour: float | None,
            catalog_paths: tuple[str, ...], png_path: str | None, as_json: bool) -> None:
    """Tabulate the loss you buy at one compute budget over tokens per parameter (5..500).

    For each D/N at C = 6 N D: N, D, each parametric law's loss (epoch, chinchilla), the gap to
    that law's compute-optimal loss at the same C, the extra compute the point costs over the
    cheapest way to reach its loss, and inference FLOPs per token and dollars per million tokens
    (and over --inference-tokens T). Inference is priced like training: FLOPs at the --gpu peak
    times --mfu at its catalog price.

    Example: budget frontier --flops 1e21 --inference-tokens 2e12 --png frontier.png
    """
    from dataclasses import replace

    from budget.errors import BudgetError
    from budget.hardware.catalog import load_catalog
    from budget.scaling.frontier import frontier, frontier_png
    from budget.training import time as costing

    accelerator = load_catalog(catalog_paths).get(gpu)
    mfu = costing.check_mfu(mfu)
    peak = accelerator.peak_flops(precision)
    price, price_source = costing.resolve_price(accelerator, price_per_hour)
    usd_per_flop = None if price is None else price / (costing.SECONDS_PER_HOUR * peak * mfu)
    context = seq_len / 2
    assumptions = (
        (f"inference FLOPs per token = 2 N + 4 n_layer d_model t, mean context t = {context:g} "
        f"(half of --seq-len {seq_len}), house shape rule for n_layer and d_model"),
        f"FLOPs priced at {accelerator.id} {precision} peak {peak / 1e12:g} TFLOP/s x MFU {mfu:g}"
        + ("" if price is None else f" at ${price:.2f}/GPU-hour ({price_source})")
        + "; real decode MFU is lower, so inference dollars are a floor")
    result = frontier(flops, parse_ratios(ratios), inference_tokens=inference_tokens,
                      context_tokens=context, usd_per_flop=usd_per_flop, assumptions=assumptions)
    if png_path:
        try:
            with open(png_path, "wb") as out:
                out.write(frontier_png(result))
        except OSError as exc:
            raise BudgetError(f"cannot write --png {png_path!r}: {exc.strerror or exc}") from None
        result = replace(result, png_path=png_path)
    emit(result, as_json, render_frontier)


def render_frontier(fr: Any) -> str:
    """The frontier table: one row per D/N, each law's loss, gap and extra compute."""
    from budget.cli.plan import wrap
    from budget.render import human, money, sci, table

    names = list(fr.optimal_ratio)
    headers = ["D/N", "N", "D"]
    for name in names:
        headers += [f"{name} loss", "gap", "extra C"]
    headers += ["infer FLOPs/tok", "$/1M tok"]
    if fr.inference_tokens:
        headers.append("lifetime infer $")
    rows = []
    for r in fr.rows:
        row = [f"{r.tokens_per_param:g}", human(r.params), human(r.tokens)]
        for b in r.by_law:
            row += [f"{b.loss:.4f}", f"{b.loss_gap:+.4f}", f"{b.extra_compute_fraction:+.1%}"]
        row += [sci(r.inference_flops_per_token),
                "-" if r.inference_usd_per_million_tokens is None
                else f"${r.inference_usd_per_million_tokens:.4f}"]
        if fr.inference_tokens:
            row.append(money(r.lifetime_inference_usd))
        rows.append(row)
    optimum = ", ".join(f"{n} D/N {fr.optimal_ratio[n]:.1f}" for n in names)
    lines = [f"The loss you buy at C = {sci(fr.compute_flops)} FLOPs (6 N D = C)"
             + (f", {human(fr.inference_tokens)} tokens served" if fr.inference_tokens else ""),
             table(headers, rows),
             wrap(f"compute-optimal: {optimum}. gap = loss minus the law's optimum at this C; "
                  f"extra C = compute over the cheapest (N, D) reaching the same loss.", "  ", "    ")]
    if fr.usd_per_flop is not None:
        lines.append(f"  training costs {money(fr.compute_flops * fr.usd_per_flop)} in every row "
                     f"(the same C)")
    lines += [wrap(f"- {a}", "  ", "    ") for a in fr.assumptions]
    if fr.png_path:
        lines.append(f"Wrote {fr.png_path}")
    return "\n".join(lines)
