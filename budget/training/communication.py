"""Communication and step time of a parallel layout: ring collectives, pipeline bubble, overlap.

Bandwidth-optimal ring collectives over n ranks moving S bytes (nccl-tests doc/PERFORMANCE.md):
all-reduce 2 (n-1)/n S / B, reduce-scatter and all-gather (n-1)/n S / B, all-to-all (n-1)/n S / B,
with B the per-direction link bandwidth per device times `link_efficiency` (about 80% of the
per-direction spec for large messages, ml-engineering network/README.md) plus a latency of
`latency_s` per collective step. Ranks are placed innermost first as [TP, CP, PP, DP] (Llama 3,
arXiv:2407.21783 §3.3.2): a group uses the scale-up link while it stays inside one node, else the
per-device NIC.

Per step and GPU:
- TP (Megatron, Narayanan et al. 2021 §2.3): 4 all-reduces of b s h per layer per micro-batch
  (2 forward, 2 backward; + 2 when fully recomputing; SP replaces each by an all-gather and a
  reduce-scatter of the same bytes, Korthikanti §4.2.2). On the critical path unless `tp_overlap`.
- CP: K and V all-gathered in forward, re-gathered and dK/dV reduce-scattered in backward
  (Megatron-LM context_parallel.md), hidden behind attention up to `cp_overlap`.
- PP: b s h / t sent forward and backward per micro-batch per virtual stage, exposed: SP leaves
  the activation sharded by t; without SP Megatron's scatter/gather sends each TP rank 1/t of it
  over its own NIC and all-gathers inside the node (Narayanan §4.1, on by default in Megatron-LM).
- EP: all-to-all dispatch and combine of b s k h per MoE layer, forward and backward (DeepSeek-V3
  §3.2.1), exposed unless `ep_overlap`.
- DP: gradient all-reduce 2 Psi (ZeRO 0-2) or ZeRO-3's all-gather, all-gather, reduce-scatter 3 Psi
  (Rajbhandari et al. 2020 §7), hierarchical when the group spans nodes (inside each node over the
  scale-up link, between nodes 1/g of it per GPU NIC, g = its ranks per node); hidden behind the last micro-batch's backward (ZeRO 0-2) or each
  micro-batch's compute (ZeRO-3's gathers) up to `dp_overlap`.
- bubble: (p-1)/(v m) of the compute (Narayanan Eq. (bubble), §2.2.2; Llama 3 §3.3.2).
Step time = compute + exposed communication + bubble + optimizer update (memory-bound).

Compute: hardware FLOPs (FlashAttention computes the causal half of the scores; without it the
whole s x s block, as 2021-22 Megatron did; full recompute adds a forward, selective the score
recompute) / (dense peak x achieved fraction). The achieved fraction is the device's best-shape
matmul efficiency (catalog `matmul_efficiency`) x `kernel_factor` x h / (h + h_half): small layers
run less efficiently. kernel_factor (per device and precision) and h_half are data
(budget/hardware/efficiency.toml), fitted once by `budget validate` on the published runs of
budget/validation/runs.toml, whose leave-one-out error is the out-of-sample check.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from budget.hardware.catalog import Accelerator
from budget.hardware.efficiency import efficiency
from budget.models.arch import Architecture
from budget.training.memory import bytes_per_param
from budget.training.parallel import Layout, stage_params

LATENCY_S = 10e-6  # per collective step; llm-analysis floors intra-node messages at 8 us (analysis.py)
DEFAULT_MATMUL_EFFICIENCY = 0.80  # when the catalog has none: H100 SXM's 80.3% MAMF (ml-engineering)
DEFAULT_GPUS_PER_NODE = 8  # assumed when neither the catalog nor --gpus-per-node gives one
DEFAULT_SCALE_OUT_GBS = 25.0  # assumed NIC per device (200 Gb/s) when the catalog has none
OPTIMIZER_PASSES = 2.0  # the update reads and writes the states once each (our accounting)


@dataclass(frozen=True)
class Cluster:
    """Links seen by one device: scale-up domain size, per-direction GB/s inside and out."""

    gpus_per_node: int
    scale_up_gbs_per_dir: float
    scale_out_gbs_per_dir: float
    hbm_gbs: float
    peak_flops: float
    matmul_efficiency: float
    kernel_factor: float  # efficiency.toml, per device and precision
    h_half: float  # efficiency.toml
    link_efficiency: float  # efficiency.toml
    latency_s: float = LATENCY_S
    assumed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["assumed"] = list(self.assumed)
        return out


def cluster_for(gpu: Accelerator, precision: str, *, gpus_per_node: int | None = None,
                scale_out_gbs_per_dir: float | None = None) -> Cluster:
    """The catalog's cluster fields for `gpu`, with overrides; missing ones assumed and listed."""
    assumed = []
    n = gpus_per_node or gpu.gpus_per_node
    if n is None:
        n = DEFAULT_GPUS_PER_NODE
        assumed.append(f"{n} GPUs per node (not in the catalog)")
    up = gpu.scale_up_gbs_per_dir or (gpu.interconnect_gbs_bidir or 0) / 2
    if not up:
        up = 16.0
        assumed.append("16 GB/s per direction between GPUs (PCIe3 x16; no link in the catalog)")
    out = scale_out_gbs_per_dir or gpu.scale_out_gbs_per_dir
    if out is None:
        out = DEFAULT_SCALE_OUT_GBS
        assumed.append(f"{out:g} GB/s per GPU between nodes (200 Gb/s NIC; not in the catalog)")
    eff = gpu.matmul_efficiency
    if eff is None:
        eff = DEFAULT_MATMUL_EFFICIENCY
        assumed.append(f"matmul efficiency {eff:.0%} of peak (no measurement in the catalog)")
    k = efficiency()
    kernel, _ = k.kernel_factor(gpu.id, precision)
    return Cluster(gpus_per_node=n, scale_up_gbs_per_dir=up, scale_out_gbs_per_dir=out,
                   hbm_gbs=gpu.memory_bandwidth_gbs, peak_flops=gpu.peak_flops(precision),
                   matmul_efficiency=eff, kernel_factor=kernel, h_half=k.h_half,
                   link_efficiency=k.link_efficiency, assumed=tuple(assumed))


@dataclass(frozen=True)
class Overlap:
    """Share of each kind of communication hidden behind compute (0 = all exposed)."""

    tp: float = 0.0  # Megatron exposes TP unless --tp-comm-overlap
    cp: float = 1.0  # ring attention overlaps KV exchange with attention compute
    ep: float = 0.0  # all-to-all exposed without DualPipe-style overlap
    dp: float = 1.0  # --overlap-grad-reduce / --overlap-param-gather (Megatron-LM README)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepTime:
    """One optimizer step: seconds by part, bytes moved per GPU, and the utilisation that follows."""

    step_time_s: float
    compute_s: float
    communication_s: float
    bubble_s: float
    optimizer_s: float
    communication_by_kind_s: dict[str, float]
    exposed_by_kind_s: dict[str, float]
    bytes_per_gpu: dict[str, float]
    tokens_per_step: float
    model_flops_per_step: float
    hardware_flops_per_step: float
    predicted_mfu: float
    predicted_hfu: float
    tflops_per_gpu: float  # model FLOPs
    hardware_tflops_per_gpu: float
    compute_efficiency: float
    overlap: Overlap = field(default_factory=Overlap)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens_per_second"] = self.tokens_per_step / self.step_time_s
        return out


def ring_time(kind: str, n: int, size_bytes: float, gbs: float, c: Cluster) -> float:
    """Seconds of one ring collective of `size_bytes` over n ranks (nccl-tests PERFORMANCE.md)."""
    if n <= 1 or size_bytes <= 0:
        return 0.0
    factor = {"all_reduce": 2.0, "all_gather": 1.0, "reduce_scatter": 1.0, "all_to_all": 1.0}[kind]
    steps = 2 * (n - 1) if kind == "all_reduce" else n - 1
    return factor * (n - 1) / n * size_bytes / (gbs * 1e9 * c.link_efficiency) + steps * c.latency_s


def group_time(kind: str, n: int, size_bytes: float, per_node: int, c: Cluster) -> float:
    """A collective over n ranks of which `per_node` share a node: inside the node over the scale-up
    link, then between nodes each GPU moves only its 1/per_node share over its own NIC (NCCL's
    hierarchical algorithms; ml-engineering network/README.md: intra reduce-scatter (g-1)/g P,
    inter all-reduce 2(k-1)/k P/g per GPU, intra all-gather). per_node = 1 is a flat ring over NICs."""
    if n <= 1 or size_bytes <= 0:
        return 0.0
    g = max(1, min(per_node, n))
    if g >= n:
        return ring_time(kind, n, size_bytes, c.scale_up_gbs_per_dir, c)
    inside = ring_time(kind, g, size_bytes, c.scale_up_gbs_per_dir, c) if g > 1 else 0.0
    return inside + ring_time(kind, max(2, n // g), size_bytes / g, c.scale_out_gbs_per_dir, c)


def compute_efficiency(arch: Architecture, c: Cluster) -> float:
    """Achieved fraction of the dense peak: matmul efficiency x kernel factor x h / (h + h_half)."""
    return c.matmul_efficiency * c.kernel_factor * arch.d_model / (arch.d_model + c.h_half)


def _links(layout: Layout, c: Cluster) -> dict[str, float]:
    """Per-direction GB/s each group sees, ranks placed innermost first as [tp, cp, pp, dp]."""
    node, up, out = c.gpus_per_node, c.scale_up_gbs_per_dir, c.scale_out_gbs_per_dir
    tp_span = layout.tp
    cp_span = tp_span * layout.cp
    pp_span = cp_span * layout.pp
    dp_span = pp_span * layout.dp
    ep_span = tp_span * layout.ep  # experts sit beside TP inside the data-parallel ranks
    return {"tp": up if tp_span <= node else out, "cp": up if cp_span <= node else out,
            "pp": up if pp_span <= node else out, "dp": up if dp_span <= node else out,
            "ep": up if ep_span <= node else out}


def step_time(arch: Architecture, layout: Layout, seq_len: int, c: Cluster, *,
              precision: str = "bf16", optimizer: str = "adam", overlap: Overlap = Overlap()) -> StepTime:
    """Seconds per optimizer step of `layout` and the MFU/HFU it implies (module docstring)."""
    t, p, v, m, b, cp, e = layout.tp, layout.pp, layout.vp, layout.ga, layout.mb, layout.cp, layout.ep
    act_bytes = 2.0  # 16-bit activations and gradients on the wire
    tokens_mb = b * seq_len  # per micro-batch per model replica
    model_per_token = arch.training_flops_per_token(seq_len, "unhalved")
    terms = arch.forward_flops_terms(seq_len, "causal" if layout.flash else "unhalved")
    forward = sum(terms.values())
    extra = {"none": 0.0, "full": forward,
             "selective": terms["attention_scores"] + terms["attention_values"]}[layout.recompute]
    hw_per_token = 3 * forward + extra
    shard = t * p * cp
    eff = compute_efficiency(arch, c)
    t_mb = hw_per_token * tokens_mb / shard / (c.peak_flops * eff)  # one micro-batch, one stage
    compute = m * t_mb
    bubble = (p - 1) / v * t_mb
    links = _links(layout, c)
    layers_stage = math.ceil(arch.n_layer / p)
    s_loc = seq_len / cp
    # TP: 4 (+2 with full recompute) all-reduces (or AG + RS pairs) of b s h per layer
    tp_msgs = 6 if layout.recompute == "full" else 4
    tp_size = b * s_loc * arch.d_model * act_bytes
    tp_time = m * layers_stage * tp_msgs * ring_time("all_reduce", t, tp_size, links["tp"], c)
    tp_bytes = m * layers_stage * tp_msgs * 2 * (t - 1) / t * tp_size if t > 1 else 0.0
    # CP: KV gather fwd, re-gather + dKV reduce-scatter bwd (3 collectives of the full KV)
    kv_size = 2 * b * seq_len * arch.kv_dim * act_bytes / t
    cp_time = m * layers_stage * 3 * ring_time("all_gather", cp, kv_size, links["cp"], c)
    cp_bytes = m * layers_stage * 3 * (cp - 1) / cp * kv_size if cp > 1 else 0.0
    # PP: activations forward, gradients backward, per micro-batch per virtual stage
    pp_size = b * s_loc * arch.d_model * act_bytes / t  # SP shards it; without SP scatter/gather does
    pp_time = m * 2 * v * (pp_size / (links["pp"] * 1e9 * c.link_efficiency) + c.latency_s) if p > 1 else 0.0
    pp_bytes = m * 2 * v * pp_size if p > 1 else 0.0
    # EP: dispatch + combine, forward and backward, per MoE layer
    moe_stage = math.ceil(arch.moe_layers / p) if arch.is_moe else 0
    a2a_size = b * s_loc * arch.experts_per_token * arch.d_model * act_bytes / t
    ep_time = m * moe_stage * 4 * ring_time("all_to_all", e, a2a_size, links["ep"], c)
    ep_bytes = m * moe_stage * 4 * (e - 1) / e * a2a_size if e > 1 else 0.0
    # DP: gradients (and ZeRO-3 weights) of this GPU's shard
    sp = stage_params(arch, layout)
    grad_b = bytes_per_param(precision, optimizer)[1]
    w_b = bytes_per_param(precision, optimizer)[0]
    d_dense, d_exp = layout.dp * cp, layout.dp * cp // e
    inner = t * cp * p  # data-parallel ranks sit outermost: this many GPUs apart
    dp_node = max(1, c.gpus_per_node // inner) if inner <= c.gpus_per_node else 1
    exp_node = max(1, dp_node // e) if e > 1 else dp_node
    dp_grad = (group_time("all_reduce", d_dense, sp.dense * grad_b, dp_node, c)
               + group_time("all_reduce", d_exp, sp.experts * grad_b, exp_node, c))
    dp_bytes = 2 * ((d_dense - 1) / d_dense * sp.dense + (d_exp - 1) / max(d_exp, 1) * sp.experts) * grad_b
    gather = 0.0
    if layout.zero == 3:  # all-gather before forward and again before backward, every micro-batch
        one = (group_time("all_gather", d_dense, sp.dense * w_b, dp_node, c)
               + group_time("all_gather", d_exp, sp.experts * w_b, exp_node, c))
        gather = 2 * m * one
        dp_grad *= 0.5  # ZeRO-3 reduce-scatters the gradients: half an all-reduce
        dp_bytes = dp_bytes / 2 + 2 * m * ((d_dense - 1) / d_dense * sp.dense
                                           + (d_exp - 1) / max(d_exp, 1) * sp.experts) * w_b
    window = 2.0 / 3.0 * t_mb  # the last micro-batch's backward
    dp_exposed = max(0.0, dp_grad - overlap.dp * window)
    gather_exposed = max(0.0, gather - overlap.dp * compute)
    cp_exposed = cp_time * (1 - overlap.cp)
    comm = {"tp": tp_time, "cp": cp_time, "pp": pp_time, "ep": ep_time, "dp": dp_grad + gather}
    exposed = {"tp": tp_time * (1 - overlap.tp), "cp": cp_exposed, "pp": pp_time,
               "ep": ep_time * (1 - overlap.ep), "dp": dp_exposed + gather_exposed}
    states_local = (sp.dense + sp.experts) * sum(bytes_per_param(precision, optimizer))
    shards = d_dense if layout.zero >= 1 else 1
    optimizer_s = OPTIMIZER_PASSES * states_local / shards / (c.hbm_gbs * 1e9)
    communication = sum(exposed.values())
    total = compute + communication + bubble + optimizer_s
    tokens_step = layout.global_batch * seq_len
    gpus = layout.num_gpus
    model_flops = model_per_token * tokens_step
    hw_flops = hw_per_token * tokens_step
    return StepTime(
        step_time_s=total, compute_s=compute, communication_s=communication, bubble_s=bubble,
        optimizer_s=optimizer_s, communication_by_kind_s=comm, exposed_by_kind_s=exposed,
        bytes_per_gpu={"tp": tp_bytes, "cp": cp_bytes, "pp": pp_bytes, "ep": ep_bytes, "dp": dp_bytes},
        tokens_per_step=tokens_step, model_flops_per_step=model_flops,
        hardware_flops_per_step=hw_flops,
        predicted_mfu=model_flops / (gpus * c.peak_flops * total),
        predicted_hfu=hw_flops / (gpus * c.peak_flops * total),
        tflops_per_gpu=model_flops / (gpus * total) / 1e12,
        hardware_tflops_per_gpu=hw_flops / (gpus * total) / 1e12,
        compute_efficiency=eff, overlap=overlap)
