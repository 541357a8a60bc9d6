"""`budget roofline`: per-layer FLOPs, bytes, arithmetic intensity and bound on an accelerator."""

from __future__ import annotations

from typing import Any

import click

from budget.cli.arch_options import model_options, resolve_architecture
from budget.cli.common import ACCELERATOR, POSITIVE_INT, check_writable_file, emit, json_option, write_failed
from budget.hardware.roofline import PHASES, PRECISION_BYTES
from budget.models.families import DEFAULT_N_CTX


@click.command(name="roofline")
@model_options
@click.option("--network", help="A CNN instead: a built-in name (resnet-50) or a TOML layer list.")
@click.option("--gpu", type=ACCELERATOR, default="a100", show_default=True, help="Accelerator id or alias.")
@click.option("--phase", type=click.Choice(PHASES), default="decode",
              show_default=True, help="With --network: training, or inference for the others.")
@click.option("--batch", type=POSITIVE_INT, default=1, show_default=True, help="Sequences/images.")
@click.option("--seq-len", type=POSITIVE_INT, default=DEFAULT_N_CTX, show_default=True,
              help="Tokens per sequence (decode: the cached context).")
@click.option("--precision", type=click.Choice(tuple(PRECISION_BYTES)),
              default="bf16", show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write the log-log roofline with the layers on it to this PNG.")
@click.option("--catalog", "catalog_paths", multiple=True, type=click.Path(dir_okay=False))
@json_option
def command(as_json: bool, network: str | None, plot_path: str | None, **kw: Any) -> None:
    """Roofline of every layer: FLOPs, bytes moved, arithmetic intensity, ridge point, bound.

    Time per op is max(FLOPs / peak, bytes / bandwidth); the totals split the time between
    matmuls and element-wise/normalisation ops, and every linear layer shows the batch at which
    it crosses the ridge. --plot writes the picture.

    Example: budget roofline --model llama-2-7b --gpu a100 --phase decode --batch 1 --plot r.png
    """
    from budget.hardware import roofline as R
    from budget.hardware.catalog import load_catalog

    if plot_path:
        check_writable_file(plot_path, "--plot")
    gpu = load_catalog(kw["catalog_paths"]).get(kw["gpu"])
    if network:
        if any(kw.get(k) for k in ("model", "config", "n_layer", "d_model")):
            raise click.UsageError("give --network or a transformer (--model/--config/--n-layer)")
        from budget.models import cnn

        spec = cnn.load_network(network)
        training = kw["phase"] == "training"
        cost = cnn.evaluate(spec, bn="train" if training else "inference")
        ops = R.cnn_ops(cost, kw["batch"], kw["precision"], training)
        result = R.analyse(ops, gpu, kw["precision"], model=spec.name,
                           phase="training" if training else "inference",
                           batch=kw["batch"], seq_len=1,
                           notes=["time = max(FLOPs/peak, bytes/bandwidth) per layer"])
        import dataclasses

        bn = result.time_share(("norm",))
        bn_bytes = sum(o.bytes for o in result.ops if o.kind == "norm") / result.total_bytes
        fold = (f"batch-norm folding (into the preceding convolution; Jacob et al. 2018 §3.2) "
                f"removes the batch_norm rows: {bn:.1%} of the time, {bn_bytes:.1%} of the bytes"
                if not training else f"batch norm takes {bn:.1%} of the time; folding it applies "
                "at inference only (training needs the batch statistics)")
        result = dataclasses.replace(result, notes=result.notes + (fold,))
    else:
        arch = resolve_architecture(kw)
        result = R.roofline_for(arch, gpu, phase=kw["phase"], batch=kw["batch"],
                                seq_len=kw["seq_len"], precision=kw["precision"], model=arch.name)
    if plot_path:
        from budget.hardware.roofline_plot import plot_roofline

        try:
            plot_roofline(result, plot_path)
        except OSError as exc:
            raise write_failed(plot_path, "--plot", exc) from None
    emit(result, as_json, lambda r: render(r, plot_path))


def render(r: Any, plot_path: str | None = None) -> str:
    from budget.render import table

    def num(x: float) -> str:
        return f"{x:.3g}"

    rows = [[o.name, str(o.count), num(o.flops), num(o.bytes),
             "-" if o.intensity == float("inf") else f"{o.intensity:,.1f}", o.bound,
             f"{o.time_s * 1e3:,.3f}",
             "-" if o.crossover_batch is None else f"{o.crossover_batch:,.1f}"] for o in r.ops]
    matmul = r.time_share(("matmul", "attention"))
    lines = [f"{r.model} {r.phase}, batch {r.batch}" + ("" if r.seq_len == 1 else
                                                        f", seq {r.seq_len}") +
             f", {r.precision} on {r.accelerator}",
             (f"  peak {r.peak_flops / 1e12:,.1f} TFLOP/s ({r.precision} tensor), vector "
             f"{r.vector_peak_flops / 1e12:,.1f}; bandwidth {r.bandwidth_bytes_per_s / 1e9:,.0f} "
             f"GB/s; ridge {r.ridge:,.1f} FLOP/byte"), "",
             table(["op", "count", "FLOPs", "bytes", "FLOP/B", "bound", "ms", "ridge batch"],
                   rows), "",
             (f"Total {r.total_flops:.3g} FLOPs, {r.total_bytes:.3g} bytes: "
             f"{r.total_time_s * 1e3:,.3f} ms; time in matmuls and attention {matmul:.1%}, "
             f"element-wise and norms {1 - matmul:.1%}"),
             ("  ridge batch: sequences (decode) or sequences of seq-len tokens (training, "
             "prefill) at which the layer becomes compute-bound")]
    lines += [f"  - {n}" for n in r.notes]
    if plot_path:
        lines.append(f"Roofline plot written to {plot_path}")
    return "\n".join(lines)
