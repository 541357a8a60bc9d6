"""`budget memory`: training memory of a transformer and the fewest GPUs of a kind that hold it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from budget.cli.arch_options import architecture_options, pop_options, resolve_model
from budget.cli.common import POSITIVE, POSITIVE_INT, emit, json_option


@click.command(name="memory")
@architecture_options
@click.option("--params", type=POSITIVE,
              help="Size N (total params): model states use N exactly; a --family shape of "
                   "that size sizes the activations.")
@click.option("--seq-len", type=POSITIVE_INT,
              help="Sequence length [default: the model's training length, else 2048].")
@click.option("--micro-batch", type=POSITIVE_INT, default=1, show_default=True,
              help="Sequences per GPU per step.")
@click.option("--precision", type=click.Choice(("fp32", "tf32", "bf16", "fp16", "fp8")),
              default="bf16", show_default=True,
              help="bf16/fp16/fp8: mixed precision with fp32 master weights; fp32/tf32: fp32 throughout.")
@click.option("--optimizer", type=click.Choice(("adam", "momentum", "sgd")), default="adam",
              show_default=True)
@click.option("--recompute", type=click.Choice(("none", "selective", "full")), default="none",
              show_default=True, help="Activation recomputation (checkpointing).")
@click.option("--zero", "zero_stage", type=click.IntRange(0, 3), default=0, show_default=True,
              help="ZeRO stage: 1 shards optimizer state, 2 also gradients, 3 also weights.")
@click.option("--num-gpus", type=POSITIVE_INT, default=1, show_default=True,
              help="Data-parallel GPUs the ZeRO stage shards over.")
@click.option("--gpu", help="Accelerator id or alias: adds whether it fits and min_gpus.")
@click.option("--catalog", "catalog_paths", multiple=True, type=click.Path(dir_okay=False))
@json_option
def command(as_json: bool, **kw: Any) -> None:
    """Training memory per GPU: weights, gradients, optimizer state, activations, ZeRO sharding.

    Mixed-precision Adam is 16 bytes/parameter (ZeRO paper); activations follow Korthikanti et
    al. 2022, written for any block (GQA, SwiGLU, MoE). The model is --model, --config, a shape
    (--n-layer, --d-model, ... in the --family) or --params N. With --gpu it also reports the
    fewest GPUs of that kind that hold the run.

    Example: budget memory --model llama-3-8b --gpu h100 --zero 3 --recompute selective
    """
    from budget.training.memory import training_memory

    opts = pop_options(kw)
    opts.pop("attention")
    choice = resolve_model(opts, seq_len=kw["seq_len"], params=kw["params"])
    if choice is None:
        raise click.UsageError("give --model NAME, --config FILE, --params N, or --n-layer "
                               "with --d-model")
    memory_bytes, gpu_id = None, None
    if kw["gpu"]:
        from budget.hardware.catalog import load_catalog

        gpu = load_catalog(kw["catalog_paths"]).get(kw["gpu"])
        memory_bytes, gpu_id = gpu.memory_bytes, gpu.id
    result = training_memory(choice.arch, micro_batch=kw["micro_batch"], seq_len=choice.seq_len,
                             precision=kw["precision"], optimizer=kw["optimizer"],
                             recompute=kw["recompute"], zero_stage=kw["zero_stage"],
                             num_gpus=kw["num_gpus"], gpu_memory_bytes=memory_bytes, gpu=gpu_id,
                             params=kw["params"])
    emit(_Result(result, choice), as_json, render_memory)


@dataclass(frozen=True)
class _Result:
    """A MemoryBreakdown plus the shape it was computed for."""

    memory: Any
    choice: Any  # budget.cli.arch_options.ModelChoice

    def to_dict(self) -> dict[str, Any]:
        return {**self.memory.to_dict(), "shape": self.choice.arch.to_dict(),
                "model": self.choice.to_dict()}


def render_memory(result: _Result) -> str:
    from budget.render import gib, human, table

    m, s = result.memory, result.choice.arch
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
                      f"{m.num_gpus} GPU(s); fewest GPUs: "
                      f"{m.min_gpus if m.min_gpus is not None else 'none'} ({m.min_gpus_note})"]
    return "\n".join(lines)
