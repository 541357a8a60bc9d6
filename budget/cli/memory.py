"""`budget memory`: training memory of a transformer and the fewest GPUs of a kind that hold it."""

from __future__ import annotations

from typing import Any

import click

from budget.cli.common import POSITIVE, POSITIVE_INT, emit, json_option
from budget.cli.layout_options import memory_layout_options
from budget.training.memory_report import (
    DEFAULT_NUM_GPUS,
    DEFAULT_RECOMPUTE,
    DEFAULT_ZERO_STAGE,
    RECOMPUTE_CHOICES,
)


@click.command(name="memory")
@click.option("--params", type=POSITIVE, help="Size N (total params): the shape is chosen for it.")
@click.option("--n-layer", type=POSITIVE_INT, help="Layers (with --d-model, instead of --params).")
@click.option("--d-model", type=POSITIVE_INT, help="Model width.")
@click.option("--n-head", type=POSITIVE_INT, help="Attention heads (default d_model / 64).")
@click.option("--d-ff", type=POSITIVE_INT, help="MLP width (default 4 d_model).")
@click.option("--vocab", "vocab_size", type=POSITIVE_INT, default=50257, show_default=True)
@click.option("--seq-len", type=POSITIVE_INT, default=2048, show_default=True)
@click.option("--micro-batch", type=POSITIVE_INT, default=1, show_default=True,
              help="Sequences per GPU per step.")
@click.option("--precision", type=click.Choice(("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")),
              default="bf16", show_default=True,
              help="bf16/fp16/fp8: mixed precision with fp32 master weights; fp32/tf32: fp32 throughout; "
                   "int8/int4 (or any with --inference): inference weights.")
@click.option("--inference", is_flag=True, help="Inference weights at --precision, and every format's size.")
@click.option("--group-size", type=click.IntRange(0, 4096), default=None,
              help="int8/int4 quantization group (default 32 / 128; 0: no scales).")
@click.option("--compare", is_flag=True,
              help="Memory and FLOPs of recomputation, sqrt(L) checkpoints, accumulation, fp32 vs mixed.")
@click.option("--accumulate", type=POSITIVE_INT, default=4, show_default=True,
              help="Gradient-accumulation steps in --compare.")
@click.option("--optimizer", type=click.Choice(("adam", "momentum", "sgd")), default="adam",
              show_default=True)
@click.option("--recompute", type=click.Choice(RECOMPUTE_CHOICES), default=DEFAULT_RECOMPUTE,
              show_default=True,
              help="Activation recomputation; auto = selective, or full when selective cannot fit (as plan).")
@click.option("--zero", "zero_stage", type=click.IntRange(0, 3), default=DEFAULT_ZERO_STAGE,
              show_default=True,
              help="ZeRO stage: 1 shards optimizer state, 2 also gradients, 3 also weights (as plan).")
@click.option("--num-gpus", type=POSITIVE_INT, default=DEFAULT_NUM_GPUS, show_default=True,
              help="GPUs: ZeRO shards over them, and the layout section lays the model out on them.")
@click.option("--gpu", help="Accelerator id or alias: adds whether it fits and min_gpus.")
@click.option("--catalog", "catalog_paths", multiple=True, type=click.Path(dir_okay=False))
@memory_layout_options
@json_option
def command(as_json: bool, **kw: Any) -> None:
    """Training memory per GPU: weights, gradients, optimizer state, activations, ZeRO sharding.

    Mixed-precision Adam is 16 bytes/parameter (ZeRO paper); activations follow Korthikanti et
    al. 2022. With --gpu it also reports the fewest GPUs of that kind that hold the run.

    Example: budget memory --params 7e9 --gpu h100 --zero 3 --recompute selective

    Example: budget memory --params 8e9 --precision int4 --gpu l4
    """
    from budget.cli.layout_options import cluster_request
    from budget.training.memory_report import MemoryRequest, memory_report

    shape = _shape(kw)
    if kw["inference"] or kw["precision"] in ("int8", "int4") or kw["compare"]:
        from budget.cli.memory_extra import compare_or_inference

        return compare_or_inference(shape, kw, as_json)
    cluster = cluster_request(kw) if kw["gpu"] else None
    req = MemoryRequest(shape, micro_batch=kw["micro_batch"], seq_len=kw["seq_len"],
                        precision=kw["precision"], optimizer=kw["optimizer"],
                        recompute=kw["recompute"], zero_stage=kw["zero_stage"],
                        num_gpus=kw["num_gpus"], gpu=kw["gpu"],
                        catalog_paths=tuple(kw["catalog_paths"]), cluster=cluster)
    emit(memory_report(req), as_json, render_memory)


def _shape(kw: dict[str, Any]) -> Any:
    from budget.models.transformer import ModelShape, shape_for_params

    if kw["params"] is not None and kw["n_layer"] is not None:
        raise click.UsageError("give either --params or --n-layer/--d-model, not both")
    if kw["params"] is not None:
        return shape_for_params(kw["params"], n_ctx=kw["seq_len"], vocab_size=kw["vocab_size"])
    if kw["n_layer"] is None or kw["d_model"] is None:
        raise click.UsageError("give --params, or --n-layer with --d-model")
    d = kw["d_model"]
    return ModelShape(kw["n_layer"], d, kw["n_head"] or max(1, d // 64), kw["d_ff"] or 4 * d,
                      kw["seq_len"], kw["vocab_size"])


def render_memory(result: Any) -> str:
    from budget.render import gib, human, table

    m, s = result.memory, result.shape
    rows = [["weights", gib(m.params_bytes)], ["gradients", gib(m.grads_bytes)],
            ["optimizer state", gib(m.optimizer_bytes)], ["activations", gib(m.activations_bytes)],
            ["total per GPU", gib(m.total_bytes)]]
    lines = [f"Shape: n_layer {s.n_layer}, d_model {s.d_model}, n_heads {s.n_head}, d_ff {s.d_ff}, "
             f"vocab {s.vocab_size}: {human(m.params)} params",
             f"{m.precision} {m.optimizer}, {m.bytes_per_param:g} bytes/param of model state; "
             f"micro-batch {m.micro_batch} x {m.seq_len}, recompute {m.recompute}, "
             f"ZeRO-{m.zero_stage} over {m.num_gpus} GPU(s)", "", table(["", "per GPU"], rows)]
    if m.gpu:
        verdict = "fits" if m.fits else "does not fit"
        lines += ["", f"{m.gpu}: {gib(m.gpu_memory_bytes)} ({m.usable_fraction:.0%} usable): {verdict} at "
                      f"{m.num_gpus} GPU(s); fewest GPUs with ZeRO data parallelism alone: "
                      f"{m.min_gpus if m.min_gpus is not None else 'none'} ({m.min_gpus_note})"]
    if result.layouts is not None:
        from budget.cli.layout_options import render_cluster

        lines += [line for line in render_cluster(result.layouts)
                  if not line.lstrip().startswith(("step", "exposed", "MFU", "wall"))]
    return "\n".join(lines)
