"""`budget memory`: training memory of a transformer and the fewest GPUs of a kind that hold it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from budget.cli.common import POSITIVE, POSITIVE_INT, emit, json_option
from budget.cli.layout_options import memory_layout_options


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
@click.option("--precision", type=click.Choice(("fp32", "tf32", "bf16", "fp16", "fp8")),
              default="bf16", show_default=True,
              help="bf16/fp16/fp8: mixed precision with fp32 master weights; fp32/tf32: fp32 throughout.")
@click.option("--optimizer", type=click.Choice(("adam", "momentum", "sgd")), default="adam",
              show_default=True)
@click.option("--recompute", type=click.Choice(("auto", "none", "selective", "full")), default="auto",
              show_default=True,
              help="Activation recomputation; auto = selective, or full when selective cannot fit (as plan).")
@click.option("--zero", "zero_stage", type=click.IntRange(0, 3), default=3, show_default=True,
              help="ZeRO stage: 1 shards optimizer state, 2 also gradients, 3 also weights (as plan).")
@click.option("--num-gpus", type=POSITIVE_INT, default=8, show_default=True,
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
    """
    from budget.cli.layout_options import cluster_request
    from budget.training.memory import training_memory

    shape = _shape(kw)
    memory_bytes, gpu_id, gpu = None, None, None
    if kw["gpu"]:
        from budget.hardware.catalog import load_catalog

        gpu = load_catalog(kw["catalog_paths"]).get(kw["gpu"])
        memory_bytes, gpu_id = gpu.memory_bytes, gpu.id
    cluster = cluster_request(kw) if gpu is not None else None
    if gpu is None:
        from budget.cli.layout_options import MEMORY_OPTION_KEYS

        for key in MEMORY_OPTION_KEYS:
            kw.pop(key)

    def at(recompute: str) -> Any:
        return training_memory(shape, micro_batch=kw["micro_batch"], seq_len=kw["seq_len"],
                               precision=kw["precision"], optimizer=kw["optimizer"],
                               recompute=recompute, zero_stage=kw["zero_stage"],
                               num_gpus=kw["num_gpus"], gpu_memory_bytes=memory_bytes, gpu=gpu_id)
    result = at("selective" if kw["recompute"] == "auto" else kw["recompute"])
    if kw["recompute"] == "auto" and gpu is not None and result.min_gpus is None:
        result = at("full")
    layouts = None
    if gpu is not None and cluster is not None:
        from budget.training.cluster_plan import arch_from_shape, plan_cluster

        batch = 4 * kw["num_gpus"] * kw["micro_batch"]  # memory has no budget: 4 micro-batches per GPU
        layouts = plan_cluster(arch_from_shape(shape), gpu, cluster, seq_len=kw["seq_len"], tokens=0.0,
                               useful_batch=batch, precision=kw["precision"], optimizer=kw["optimizer"],
                               batch_source="4 micro-batches per GPU (memory has no budget)")
    emit(_Result(result, shape, layouts), as_json, render_memory)


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


@dataclass(frozen=True)
class _Result:
    """A MemoryBreakdown plus the shape it was computed for."""

    memory: Any
    shape: Any
    layouts: Any = None  # ClusterPlan: the fewest GPUs over all layouts, and the layout on --num-gpus

    def to_dict(self) -> dict[str, Any]:
        out = {**self.memory.to_dict(), "shape": self.shape.to_dict()}
        if self.layouts is not None:
            s = self.layouts.search
            out["layouts"] = {"fewest_gpus": s.fewest_gpus,
                              "fewest_layout": None if s.fewest_layout is None else s.fewest_layout.to_dict(),
                              **{k: v for k, v in self.layouts.to_dict().items()
                                 if k in ("layout", "memory_per_gpu_bytes", "warnings", "search")}}
        return out


def render_memory(result: _Result) -> str:
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
