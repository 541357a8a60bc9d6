"""`budget memory`: training memory of a transformer and the fewest GPUs of a kind that hold it."""

from __future__ import annotations

from typing import Any

import click

from budget.cli.arch_options import architecture_options, pop_options, resolve_model
from budget.cli.common import ACCELERATOR, POSITIVE, POSITIVE_INT, emit, json_option
from budget.cli.layout_options import memory_layout_options
from budget.models.families import DEFAULT_N_CTX
from budget.training.memory_report import (
    DEFAULT_NUM_GPUS,
    DEFAULT_RECOMPUTE,
    DEFAULT_ZERO_STAGE,
    RECOMPUTE_CHOICES,
)


@click.command(name="memory")
@architecture_options
@click.option("--params", type=POSITIVE,
              help="Size N (total params): model states use N exactly; a --family shape of "
                   "that size sizes the activations.")
@click.option("--seq-len", type=POSITIVE_INT,
              help=f"Sequence length [default: the model's training length, else {DEFAULT_N_CTX}].")
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
@click.option("--gpu", type=ACCELERATOR, help="Accelerator id or alias: adds whether it fits and min_gpus.")
@click.option("--finetune", type=click.Choice(("full", "lora", "qlora")), default=None,
              help="Fine-tuning memory of one replica: full, LoRA (frozen 16-bit base) or QLoRA "
                   "(frozen 4-bit NF4 base); adapters on every linear layer of the blocks.")
@click.option("--rank", type=POSITIVE_INT, default=16, show_default=True,
              help="LoRA rank r with --finetune lora|qlora (QLoRA used 64).")
@click.option("--catalog", "catalog_paths", multiple=True, type=click.Path(dir_okay=False))
@memory_layout_options
@json_option
def command(as_json: bool, **kw: Any) -> None:
    """Training memory per GPU: weights, gradients, optimizer state, activations, ZeRO sharding.

    Mixed-precision Adam is 16 bytes/parameter (ZeRO paper); activations follow Korthikanti et
    al. 2022, written for any block (GQA, SwiGLU, MoE). The model is --model, --config, a shape
    (--n-layer, --d-model, ... in the --family) or --params N. With --gpu it also reports the
    fewest GPUs of that kind that hold the run.

    Example: budget memory --model llama-3-8b --gpu h100 --zero 3 --recompute selective

    Example: budget memory --params 8e9 --precision int4 --gpu l4

    Example: budget memory --model llama-2-70b --finetune qlora --rank 64 --seq-len 512 --gpu l40s
    """
    from budget.cli.layout_options import check_layout_options, cluster_request
    from budget.training.memory_report import MemoryRequest, memory_report

    check_layout_options(kw, needs="gpu")
    opts = pop_options(kw)
    opts.pop("attention")
    choice = resolve_model(opts, seq_len=kw["seq_len"], params=kw["params"])
    if choice is None:
        raise click.UsageError("give --model NAME, --config FILE, --params N, or --n-layer "
                               "with --d-model")
    kw["seq_len"] = choice.seq_len
    finetune, rank = kw.pop("finetune"), kw.pop("rank")
    if finetune:
        return finetune_report(choice.arch, finetune, rank, kw, as_json)
    if kw["inference"] or kw["precision"] in ("int8", "int4") or kw["compare"]:
        from budget.cli.memory_extra import compare_or_inference

        return compare_or_inference(choice.arch, kw, as_json)
    cluster = cluster_request(kw) if kw["gpu"] else None
    req = MemoryRequest(choice.arch, micro_batch=kw["micro_batch"], seq_len=choice.seq_len,
                        precision=kw["precision"], optimizer=kw["optimizer"],
                        recompute=kw["recompute"], zero_stage=kw["zero_stage"],
                        num_gpus=kw["num_gpus"], gpu=kw["gpu"],
                        catalog_paths=tuple(kw["catalog_paths"]), cluster=cluster,
                        params=kw["params"], model=choice)
    emit(memory_report(req), as_json, render_memory)


def finetune_report(arch: Any, mode: str, rank: int, kw: dict[str, Any], as_json: bool) -> None:
    """`--finetune`: one replica's memory (recompute 'auto' = full, as QLoRA's gradient checkpointing)."""
    from budget.hardware.catalog import load_catalog
    from budget.training.finetune import finetune_memory

    gpu = load_catalog(kw["catalog_paths"]).get(kw["gpu"]) if kw["gpu"] else None
    recompute = "full" if kw["recompute"] == "auto" else kw["recompute"]
    result = finetune_memory(arch, mode, rank=rank, seq_len=kw["seq_len"], micro_batch=kw["micro_batch"],
                             recompute=recompute, gpu=None if gpu is None else gpu.id,
                             gpu_memory_bytes=None if gpu is None else gpu.memory_bytes)
    emit(result, as_json, render_finetune)


def render_finetune(m: Any) -> str:
    from budget.render import gib, human, table

    base = {"full": "trained", "lora": "frozen, 16-bit", "qlora": "frozen, 4-bit NF4 + double quant"}
    rows = [["base weights (" + base[m.mode] + ")", gib(m.base_weights_bytes)],
            ["trainable weights", gib(m.trainable_weights_bytes)], ["gradients", gib(m.grads_bytes)],
            ["optimizer state", gib(m.optimizer_bytes)], ["activations", gib(m.activations_bytes)],
            ["total", gib(m.total_bytes)]]
    what = "full fine-tuning" if m.mode == "full" else \
        f"{ {'lora': 'LoRA', 'qlora': 'QLoRA'}[m.mode]} rank {m.rank}"
    lines = [f"{what}: {human(m.params)} params, {human(m.trainable_params)} trainable "
             f"({m.trainable_params / m.params:.2%}); micro-batch {m.micro_batch} x {m.seq_len}, "
             f"recompute {m.recompute}, one GPU", "", table(["", "bytes"], rows)]
    if m.gpu:
        verdict = "fits" if m.fits else ("fits only in the whole device" if m.fits_whole_device
                                         else "does not fit")
        lines += ["", f"{m.gpu}: {gib(m.gpu_memory_bytes)}, {m.usable_fraction:.0%} usable: {verdict}"]
    return "\n".join(lines)


def render_memory(result: Any) -> str:
    from budget.render import gib, human, table

    m, s = result.memory, result.shape
    rows = [["weights", gib(m.params_bytes)], ["gradients", gib(m.grads_bytes)],
            ["optimizer state", gib(m.optimizer_bytes)], ["activations", gib(m.activations_bytes)],
            ["total per GPU", gib(m.total_bytes)]]
    exact = "" if m.params == s.params_total() else f" (N as given; the shape has {s.params_total():,})"
    lines = [f"{s.name or 'Shape'}: {s.describe()}", f"  {human(m.params)} params{exact}",
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
