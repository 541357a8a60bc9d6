"""`budget memory --precision int8|int4|fp8 --inference` and `budget memory --compare`."""

from __future__ import annotations

from typing import Any

from budget.cli.common import emit


def compare_or_inference(shape: Any, kw: dict[str, Any], as_json: bool) -> None:
    from budget.training import tradeoffs as T

    if kw["compare"]:
        precision = kw["precision"] if kw["precision"] not in ("int8", "int4") else "bf16"
        result = T.memory_tradeoffs(shape, micro_batch=kw["micro_batch"], seq_len=kw["seq_len"],
                                    precision=precision, optimizer=kw["optimizer"],
                                    zero_stage=kw["zero_stage"], num_gpus=kw["num_gpus"],
                                    accumulation=kw["accumulate"])
        emit(result, as_json, render_tradeoffs)
        return
    memory_bytes, gpu_id = None, None
    if kw["gpu"]:
        from budget.hardware.catalog import load_catalog

        gpu = load_catalog(kw["catalog_paths"]).get(kw["gpu"])
        memory_bytes, gpu_id = gpu.memory_bytes, gpu.id
    precision = "fp32" if kw["precision"] == "tf32" else kw["precision"]
    emit(T.inference_weights(shape, precision, group_size=kw["group_size"],
                             gpu_memory_bytes=memory_bytes, gpu=gpu_id, params=kw["params"]),
         as_json, render_inference)


def render_inference(r: Any) -> str:
    from budget.render import human, table

    rows = [[s.precision + (" *" if s.precision == r.precision else ""),
             f"{s.bits_per_weight:.3f}", f"{s.weight_bytes / 1e9:,.2f}",
             f"{s.weight_bytes / 2**30:,.2f}"] for s in r.sizes]
    lines = [(f"Inference weights of {human(r.params)} params at {r.precision}: "
             f"{r.weight_bytes / 1e9:,.2f} GB ({r.bits_per_weight:g} bits/weight: {r.layout})"), "",
             table(["precision", "bits/weight", "GB", "GiB"], rows),
             ("  every parameter stored in the format (embeddings included); KV cache and "
             "activations extra: see 'budget serve'")]
    if r.gpu:
        lines.append(f"{r.gpu}: {r.gpu_memory_bytes / 1e9:g} GB, 90% usable: weights need "
                     f"{r.min_gpus} GPU(s)")
    return "\n".join(lines)


def render_tradeoffs(t: Any) -> str:
    from budget.render import gib, human, table

    rows = [[r.setting, gib(r.activations_bytes), gib(r.total_bytes), f"{r.flops_per_step:.3g}",
             f"{r.flops_vs_baseline:.3f}x"] for r in t.rows]
    return "\n".join([(f"Memory against FLOPs for {human(t.params)} params, micro-batch "
                      f"{t.micro_batch} x {t.seq_len} tokens (per GPU)"), "",
                      table(["setting", "activations", "total", "FLOPs/step", "FLOPs x"], rows),
                      ""] + [f"  {r.setting}: {r.note}" for r in t.rows])
