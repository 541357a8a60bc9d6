"""Efficiency techniques as numbers: what each buys in memory, FLOPs and expected speed, sourced.

Factors are relative to the dense model as served (1.0 = unchanged). "Expected speed-up" is a
range where the source measured one, else the roofline bound our model gives for this plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from budget.hardware import roofline as R
from budget.hardware.catalog import Accelerator
from budget.models.arch import Architecture

UNSTRUCTURED_SPARSITY = 0.9
GALE_SPEEDUP = (1.2, 2.1)  # Gale et al. 2020 (arXiv:2006.10901) abstract: sparse Transformer/MobileNet, V100
SPARSE_INDEX_BITS = 16  # CSR column index per kept value (our assumption for a 16-bit model)
TWO_FOUR_METADATA_BITS = 2  # per kept value (Mishra et al. 2021, arXiv:2104.08378, §3)
TWO_FOUR_MATH_SPEEDUP = 2.0  # sparse tensor-core peak = 2x dense (NVIDIA A100/H100 datasheets)
PRUNE_KEEP = 0.5  # structured pruning example: keep half the width (a smaller dense model)
TEACHER_RATIO = 10.0  # distillation example: a teacher 10x the student
FUSION_SEED_RANGE = (1.2, 2.0)  # seed 000 §20.1 for memory-bound chains (unverified)


@dataclass(frozen=True)
class Technique:
    name: str
    memory_factor: float | None
    flops_factor: float | None
    speedup_low: float | None
    speedup_high: float | None
    basis: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServeWithTechniques:
    plan: Any
    techniques: tuple[Technique, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "techniques": [t.to_dict() for t in self.techniques]}


def techniques_for(arch: Architecture, plan: Any, acc: Accelerator) -> tuple[Technique, ...]:
    """The table for `arch` as served in `plan` (a ServePlan) on `acc`."""
    bits = plan.weights["bits_per_weight"]
    s = UNSTRUCTURED_SPARSITY
    csr = (1 - s) * (bits + SPARSE_INDEX_BITS) / bits
    two_four = (0.5 * bits + 0.5 * TWO_FOUR_METADATA_BITS) / bits
    decode_bound = plan.decode.bound
    two_four_hi = TWO_FOUR_MATH_SPEEDUP if decode_bound == "compute" else 1 / two_four
    teacher = 1 + TEACHER_RATIO / 3  # (2 N_t D + 6 N_s D) / (6 N_s D) with N_t = 10 N_s
    fused_decode = _fusion_speedup(arch, plan, acc, "decode")
    fused_prefill = _fusion_speedup(arch, plan, acc, "prefill")
    return (
        Technique("structured pruning (keep 50% of width)", PRUNE_KEEP, PRUNE_KEEP,
                  1 / PRUNE_KEEP, 1 / PRUNE_KEEP, "a smaller dense model: memory, FLOPs and "
                  "time scale with the parameters kept", "derived (dense roofline)"),
        Technique(f"unstructured sparsity {s:.0%}", csr, 1 - s, *GALE_SPEEDUP,
                  f"FLOPs x (1 - s) on paper; CSR keeps values + {SPARSE_INDEX_BITS}-bit indices; "
                  "measured end-to-end speed-up far below 1/(1 - s)",
                  "Gale et al. 2020, Sparse GPU Kernels for Deep Learning (arXiv:2006.10901), "
                  "abstract: 1.2-2.1x"),
        Technique("2:4 structured sparsity (sparse tensor cores)", two_four, 0.5, 1.0, two_four_hi,
                  f"2x math peak; {TWO_FOUR_METADATA_BITS}-bit index per kept value; decode is "
                  f"{decode_bound}-bound here so at most {two_four_hi:.2f}x",
                  "Mishra et al. 2021 (arXiv:2104.08378); NVIDIA A100/H100 datasheets "
                  "(sparse = 2x dense)"),
        Technique(f"knowledge distillation (teacher {TEACHER_RATIO:g}x the student)", 1.0, 1.0,
                  1.0, 1.0, f"serving unchanged (the student is served); training FLOPs x "
                  f"{teacher:.2f} against training the student alone (2 N_t D teacher forward + "
                  f"6 N_s D)", "Hinton et al. 2015 (arXiv:1503.02531); FLOPs per token "
                  "2N forward, 6N training (Kaplan et al. 2020 §2.1)"),
        Technique("operator fusion (norms, activations, residuals into GEMMs)", 1.0, 1.0,
                  min(fused_decode, fused_prefill), max(fused_decode, fused_prefill),
                  "FLOPs unchanged; removes the element-wise ops' HBM round trips (our roofline: "
                  f"decode {fused_decode:.3f}x, prefill {fused_prefill:.3f}x); seed 000 §20.1 quotes "
                  f"{FUSION_SEED_RANGE[0]:g}-{FUSION_SEED_RANGE[1]:g}x for memory-bound chains",
                  "derived from budget roofline; seed range unverified"),
        Technique("batch-norm folding", None, None, None, None, "not applicable: this "
                  "transformer has no batch norm (for a CNN, 'budget roofline --network' shows "
                  "the batch-norm share it removes)", "Jacob et al. 2018 (arXiv:1712.05877) §3.2"),
    )


def _fusion_speedup(arch: Architecture, plan: Any, acc: Accelerator, phase: str) -> float:
    """A step's roofline time over the same step without its norm and element-wise ops."""
    from budget.serving.quantization import quant_format

    b_w = quant_format(plan.weights["name"], plan.weights["group_size"] or None).bytes_per_weight
    ctx = plan.prompt_len + (plan.gen_len + 1) // 2 if phase == "decode" else plan.prompt_len
    ops = R.transformer_ops(arch, phase, plan.batch, ctx, plan.compute_precision, b_w)
    r = R.analyse(ops, acc, plan.compute_precision, model=plan.model, phase=phase,
                  batch=plan.batch, seq_len=ctx)
    rest = r.total_time_s * (1 - r.time_share(("norm", "elementwise")))
    return r.total_time_s / rest if rest > 0 else 1.0


def render_techniques(rows: tuple[Technique, ...]) -> str:
    from budget.render import table

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3g}"

    body = [[t.name, f(t.memory_factor), f(t.flops_factor),
             "-" if t.speedup_low is None else f"{t.speedup_low:.3g}-{t.speedup_high:.3g}x"
             if t.speedup_high != t.speedup_low else f"{t.speedup_low:.3g}x"] for t in rows]
    notes = [f"  {t.name}: {t.basis} [{t.source}]" for t in rows]
    return "\n".join(["Efficiency techniques (factors against the dense model as served)",
                      table(["technique", "memory x", "FLOPs x", "speed-up"], body), *notes])
