"""The table of published runs `budget validate` scores: rows read from runs.toml into typed rows.

Each time row is the paper's model, layout, device and precision, and one measured figure turned
into seconds per optimizer step (see runs.toml's header for the accepted measures).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from budget.errors import BudgetError
from budget.hardware.catalog import load_catalog
from budget.models.arch import Architecture
from budget.training.communication import Cluster, Overlap, cluster_for
from budget.training.parallel import Layout, parse_layout

RUNS_FILE = Path(__file__).with_name("runs.toml")
MEASURES = ("step_time_s", "tokens_per_s", "tokens_per_s_per_gpu", "tflops_per_gpu_eq3",
            "tflops_per_gpu_model")
# Megatron-LM 2021-22 reduced gradients after backward: Korthikanti et al. 2022 §6.3 measures the
# unoverlapped DP cost (530B, DP 1 -> 8: 37.83 -> 39.15 s). Later runs overlap it.
NO_DP_OVERLAP_SUITES = ("korthikanti-t5", "narayanan-t1")


def megatron_gpt(L: int, h: int, a: int, seq_len: int, vocab: int = 51200) -> Architecture:
    """Megatron GPT: 4h GeLU MLP, LayerNorm, learned positions, tied embeddings, biases."""
    return Architecture(n_layer=L, d_model=h, n_head=a, n_kv_head=a, head_dim=h // a, d_ff=4 * h,
                        vocab_size=vocab, n_ctx=seq_len, mlp="plain", activation="gelu",
                        norm="layernorm", positions="learned", tied_embeddings=True, bias="all")


@dataclass(frozen=True)
class TimeRow:
    """One published training run: what it ran and the seconds per step it measured."""

    suite: str
    id: str
    arch: Architecture
    seq_len: int
    layout: Layout
    device: str
    precision: str
    cluster: Cluster
    overlap: Overlap
    measure: str
    measured_value: float
    measured_step_s: float
    assumed: str
    source: str


@dataclass(frozen=True)
class MemoryRow:
    """One published memory figure (bytes per GPU) and the setting it belongs to."""

    suite: str
    id: str
    kind: str
    published_bytes: float
    spec: dict[str, Any]
    source: str


def _arch(row: dict[str, Any], models: dict[str, Any]) -> Architecture:
    name = row.get("model", "megatron-gpt")
    if name == "megatron-gpt":
        return megatron_gpt(row["L"], row["h"], row["a"], row["seq_len"])
    if name not in models:
        raise BudgetError(f"validation row {row.get('id')!r}: unknown model {name!r}")
    return Architecture(n_ctx=row["seq_len"], name=name, **models[name])


def eq3_flops(arch: Architecture, layout: Layout, seq_len: int) -> float:
    """Narayanan et al. 2021 Eq. 3: F = 96 B s l h^2 (1 + s/6h + V/16lh), per iteration."""
    B, s, L, h, V = layout.global_batch, seq_len, arch.n_layer, arch.d_model, arch.vocab_size
    return 96.0 * B * s * L * h * h * (1 + s / (6 * h) + V / (16 * L * h))


def _measured_step(measure: str, value: float, arch: Architecture, layout: Layout,
                   seq_len: int) -> float:
    """Seconds per step implied by the published figure."""
    tokens, gpus = layout.global_batch * seq_len, layout.num_gpus
    if measure == "step_time_s":
        return value
    if measure == "tokens_per_s":
        return tokens / value
    if measure == "tokens_per_s_per_gpu":
        return tokens / (value * gpus)
    if measure == "tflops_per_gpu_eq3":
        return eq3_flops(arch, layout, seq_len) / (gpus * value * 1e12)
    # model TFLOP/s: forward + backward, no recompute, full (unhalved) attention as PaLM App. B
    model = arch.training_flops_per_token(seq_len, "unhalved") * tokens
    return model / (gpus * value * 1e12)


@lru_cache(maxsize=1)
def load_rows() -> tuple[tuple[TimeRow, ...], tuple[MemoryRow, ...]]:
    """Every row of runs.toml, typed; a malformed row is a BudgetError naming it."""
    data = tomllib.loads(RUNS_FILE.read_text(encoding="utf-8"))
    models = data.get("model", {})
    catalog = load_catalog(use_env=False)
    times = []
    for row in data.get("run", []):
        given = [m for m in MEASURES if m in row]
        if len(given) != 1:
            raise BudgetError(f"validation row {row.get('id')!r} must give exactly one of {', '.join(MEASURES)}")
        arch = _arch(row, models)
        layout = parse_layout(row["layout"])
        gpu = catalog.get(row["device"])
        cluster = cluster_for(gpu, row["precision"], gpus_per_node=row.get("gpus_per_node"),
                              scale_out_gbs_per_dir=row.get("scale_out_gbs_per_dir"))
        if "scale_up_gbs_per_dir" in row:
            cluster = replace(cluster, scale_up_gbs_per_dir=float(row["scale_up_gbs_per_dir"]))
        overlap = Overlap(dp=0.0) if row["suite"] in NO_DP_OVERLAP_SUITES else Overlap()
        measure = given[0]
        times.append(TimeRow(
            suite=row["suite"], id=row["id"], arch=arch, seq_len=row["seq_len"], layout=layout,
            device=gpu.id, precision=row["precision"], cluster=cluster, overlap=overlap,
            measure=measure, measured_value=float(row[measure]),
            measured_step_s=_measured_step(measure, float(row[measure]), arch, layout, row["seq_len"]),
            assumed=row.get("assumed", ""), source=row["source"]))
    mems = [MemoryRow(suite=r["suite"], id=r["id"], kind=r["kind"], published_bytes=float(r["bytes"]),
                      spec={k: v for k, v in r.items() if k not in ("suite", "id", "kind", "bytes", "source")},
                      source=r["source"]) for r in data.get("memory", [])]
    return tuple(times), tuple(mems)
