"""Layout search: the fewest GPUs that hold a run, and the fastest layout on a given GPU count.

Candidates follow the usual recipe (Narayanan et al. 2021 §3.2-3.3, Takeaways 1-2): tp a power of
two dividing the heads and at most the GPUs of one node; cp (only at 8K tokens and longer) a power
of two; pp any count up to the layers (vp in 1, 2, 4 when pp > 2, with m a multiple of pp);
ep a power of two dividing the experts and dp x cp; micro-batch 1, 2, 4 or 8; ZeRO-1 (Megatron's
distributed optimizer) or ZeRO-3 (FSDP): ZeRO-0 never beats ZeRO-1 in this model (same traffic,
more memory), and ZeRO-2 moves the same bytes as ZeRO-1 here, so it is left to `--layout`.
The global batch dp x mb x m stays within the useful batch (m = as many micro-batches as fit).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from budget.errors import BudgetError
from budget.models.arch import Architecture
from budget.training.communication import Cluster, Overlap, StepTime, step_time
from budget.training.memory import USABLE_FRACTION
from budget.training.parallel import (
    Layout,
    LayoutMemory,
    check_fits_model,
    layout_memory,
)

MICRO_BATCHES = (1, 2, 4, 8)
VIRTUAL_STAGES = (1, 2, 4)
ZERO_STAGES = (1, 3)
CP_MIN_SEQ = 8192  # context parallelism only pays at long context (Llama 3 used it at 131K, §3.3.2)
MAX_DP = 1 << 22


@dataclass(frozen=True)
class Setting:
    """What every candidate shares: model, sequence, device memory, cluster, precision, policy."""

    arch: Architecture
    seq_len: int
    gpu_memory_bytes: float
    cluster: Cluster
    precision: str = "bf16"
    optimizer: str = "adam"
    recompute: str = "auto"  # auto: search selective and full
    flash: bool = True
    sp: bool = True
    overlap: Overlap = field(default_factory=Overlap)
    usable_fraction: float = USABLE_FRACTION


@dataclass(frozen=True)
class LayoutResult:
    """One evaluated layout: memory per GPU and step time."""

    layout: Layout
    memory: LayoutMemory
    step: StepTime

    @property
    def tokens_per_second(self) -> float:
        return self.step.tokens_per_step / self.step.step_time_s

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout.to_dict(), "memory": self.memory.to_dict(),
                "step": self.step.to_dict()}


@dataclass(frozen=True)
class SearchResult:
    """The chosen layout (None when nothing fits), how many were tried, and the fewest GPUs."""

    best: LayoutResult | None
    candidates: int
    fitting: int
    fewest_gpus: int | None
    fewest_layout: Layout | None
    reason: str
    why: str = ""  # one line: why this micro-batch and recomputation

    def to_dict(self) -> dict[str, Any]:
        return {"best": None if self.best is None else self.best.to_dict(),
                "candidates": self.candidates, "fitting": self.fitting,
                "fewest_gpus": self.fewest_gpus,
                "fewest_layout": None if self.fewest_layout is None else self.fewest_layout.to_dict(),
                "reason": self.reason, "why": self.why}


def evaluate(st: Setting, layout: Layout) -> LayoutResult:
    """Memory and step time of one layout (BudgetError if the model cannot be split so)."""
    check_fits_model(st.arch, layout)
    memory = layout_memory(st.arch, layout, st.seq_len, st.gpu_memory_bytes, precision=st.precision,
                           optimizer=st.optimizer, usable_fraction=st.usable_fraction)
    return LayoutResult(layout, memory, step_time(st.arch, layout, st.seq_len, st.cluster,
                                                  precision=st.precision, optimizer=st.optimizer,
                                                  overlap=st.overlap))


def _powers_of_two(limit: int) -> list[int]:
    return [1 << k for k in range(max(limit, 1).bit_length()) if (1 << k) <= limit]


def _tp_options(st: Setting) -> list[int]:
    return [t for t in _powers_of_two(min(st.cluster.gpus_per_node, st.arch.n_head))
            if st.arch.n_head % t == 0]


def _cp_options(st: Setting) -> list[int]:
    if st.seq_len < CP_MIN_SEQ:
        return [1]
    return [c for c in _powers_of_two(32) if st.seq_len // c >= 1024]


def _recomputes(st: Setting) -> tuple[str, ...]:
    return ("selective", "full") if st.recompute == "auto" else (st.recompute,)


def candidates(st: Setting, num_gpus: int, global_batch: int) -> Iterator[Layout]:
    """Every layout of exactly `num_gpus` GPUs with dp x mb <= global_batch (module docstring)."""
    arch = st.arch
    for tp in _tp_options(st):
        for cp in _cp_options(st):
            if num_gpus % (tp * cp):
                continue
            rest = num_gpus // (tp * cp)
            for pp in (p for p in range(1, min(rest, arch.n_layer) + 1) if rest % p == 0):
                dp = rest // pp
                eps = [1] if not arch.is_moe else [e for e in _powers_of_two(arch.n_experts)
                                                   if arch.n_experts % e == 0 and (dp * cp) % e == 0]
                for mb in MICRO_BATCHES:
                    m = global_batch // (dp * mb)
                    if m < 1:
                        continue
                    for vp in VIRTUAL_STAGES:
                        if vp > 1 and (pp <= 2 or pp * vp > arch.n_layer or m < pp):
                            continue
                        ga = m - m % pp if vp > 1 else m
                        for ep in eps:
                            for zero in ZERO_STAGES:
                                for rc in _recomputes(st):
                                    yield Layout(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, vp=vp, sp=st.sp,
                                                 zero=zero, mb=mb, ga=ga, recompute=rc, flash=st.flash)


def fastest(st: Setting, num_gpus: int, global_batch: int) -> tuple[LayoutResult | None, int, int, str]:
    """The layout with the most tokens per second that fits; (best, candidates, fitting, why:
    one line on the micro-batch and recomputation against the best layout with the others)."""
    best: LayoutResult | None = None
    by_choice: dict[tuple[str, Any], LayoutResult] = {}
    tried = fitting = 0
    for layout in candidates(st, num_gpus, global_batch):
        tried += 1
        memory = layout_memory(st.arch, layout, st.seq_len, st.gpu_memory_bytes,
                               precision=st.precision, optimizer=st.optimizer,
                               usable_fraction=st.usable_fraction)
        if not memory.fits:
            continue
        fitting += 1
        step = step_time(st.arch, layout, st.seq_len, st.cluster, precision=st.precision,
                         optimizer=st.optimizer, overlap=st.overlap)
        result = LayoutResult(layout, memory, step)
        for key in (("recompute", layout.recompute), ("mb", layout.mb)):
            held = by_choice.get(key)
            if held is None or result.tokens_per_second > held.tokens_per_second * (1 + 1e-9):
                by_choice[key] = result
        if best is None or result.tokens_per_second > best.tokens_per_second * (1 + 1e-9):
            best = result
    return best, tried, fitting, _why(st, best, by_choice)


def _why(st: Setting, best: LayoutResult | None, by_choice: dict[tuple[str, Any], LayoutResult]) -> str:
    """'mb=2, ga=8, recompute=selective: full recomputation +12% step time; mb=4 does not fit'."""
    if best is None:
        return ""
    lay = best.layout

    def versus(key: tuple[str, Any], name: str) -> str:
        other = by_choice.get(key)
        if other is None:
            return f"{name} does not fit"
        return f"{name} {best.tokens_per_second / other.tokens_per_second - 1:+.0%} step time"

    parts = []
    if st.recompute == "auto":
        alt = "full" if lay.recompute == "selective" else "selective"
        parts.append(versus(("recompute", alt), f"{alt} recomputation"))
    bigger = [m for m in MICRO_BATCHES if m > lay.mb]
    if bigger:
        parts.append(versus(("mb", bigger[0]), f"mb={bigger[0]}"))
    if lay.mb > 1:
        parts.append(versus(("mb", lay.mb // 2), f"mb={lay.mb // 2}"))
    return f"mb={lay.mb}, ga={lay.ga}, recompute={lay.recompute} chosen: " + "; ".join(parts)


def fixed_completed(st: Setting, fixed: Layout, given: str, global_batch: int) -> Layout:
    """A --layout without mb= (or recompute= under auto) gets the fastest fitting micro-batch (and
    recomputation), its ga from the batch: ZeRO-3 would otherwise re-gather the weights for every
    one of many micro-batches of 1."""
    keys = {item.partition("=")[0].strip().lower() for item in given.split(",")}
    mbs = MICRO_BATCHES if "mb" not in keys else (fixed.mb,)
    rcs = _recomputes(st) if "recompute" not in keys else (fixed.recompute,)
    best: tuple[float, Layout] | None = None
    for mb in mbs:
        ga = fixed.ga if "ga" in keys else max(1, global_batch // (fixed.dp * mb))
        if "ga" not in keys and fixed.dp * mb > global_batch and mb > 1:
            continue
        for rc in rcs:
            lay = replace(fixed, mb=mb, ga=ga, recompute=rc)
            if not _fits(st, lay):
                continue
            step = step_time(st.arch, lay, st.seq_len, st.cluster, precision=st.precision,
                             optimizer=st.optimizer, overlap=st.overlap)
            speed = step.tokens_per_step / step.step_time_s
            if best is None or speed > best[0] * (1 + 1e-9):
                best = (speed, lay)
    if best is not None:
        return best[1]
    ga = fixed.ga if "ga" in keys else max(1, global_batch // (fixed.dp * fixed.mb))
    return replace(fixed, ga=ga)


def fewest_gpus(st: Setting) -> tuple[int | None, Layout | None]:
    """The smallest tp x pp x cp x dp whose first stage fits (full recompute, mb 1, ZeRO-3
    over dp, m = pp micro-batches in flight); None when no layout fits at any count."""
    best_n: int | None = None
    best_layout: Layout | None = None
    for tp in _tp_options(st):
        for cp in _cp_options(st):
            for pp in range(1, st.arch.n_layer + 1):
                base = tp * cp * pp
                if best_n is not None and base >= best_n:
                    break
                layout = Layout(tp=tp, pp=pp, cp=cp, dp=1, sp=st.sp, zero=3, mb=1, ga=pp,
                                recompute="full" if st.recompute == "auto" else st.recompute,
                                flash=st.flash)
                dp = _min_dp(st, layout, limit=None if best_n is None else best_n // base)
                if dp is not None and (best_n is None or base * dp < best_n):
                    best_n, best_layout = base * dp, replace(layout, dp=dp)
    return best_n, best_layout


def _fits(st: Setting, layout: Layout) -> bool:
    return layout_memory(st.arch, layout, st.seq_len, st.gpu_memory_bytes, precision=st.precision,
                         optimizer=st.optimizer, usable_fraction=st.usable_fraction).fits


def _min_dp(st: Setting, layout: Layout, limit: int | None) -> int | None:
    """Smallest dp that fits (memory falls as ZeRO-3 shards over more ranks); None if none."""
    top = min(limit or MAX_DP, MAX_DP)
    if not _fits(st, replace(layout, dp=top)):
        return None
    lo, hi = 1, top
    while lo < hi:
        mid = (lo + hi) // 2
        if _fits(st, replace(layout, dp=mid)):
            hi = mid
        else:
            lo = mid + 1
    return lo


def search(st: Setting, num_gpus: int, global_batch: int, fixed: Layout | None = None,
           fixed_why: str = "") -> SearchResult:
    """`fixed` evaluated as given; otherwise the fastest layout on `num_gpus` within the batch."""
    if global_batch < 1:
        raise BudgetError(f"global batch {global_batch!r} must be at least one sequence")
    n_min, min_layout = fewest_gpus(st)
    if fixed is not None:
        result = evaluate(st, fixed)
        return SearchResult(result, 1, int(result.memory.fits), n_min, min_layout, "given with --layout", fixed_why)
    best, tried, fitting, why = fastest(st, num_gpus, global_batch)
    if best is None:
        reason = ("no layout of these GPUs fits in memory" if tried else
                  f"every layout needs more than {global_batch} sequences per step")
        return SearchResult(None, tried, 0, n_min, min_layout, reason)
    return SearchResult(best, tried, fitting, n_min, min_layout,
                        f"fastest of {fitting:,} fitting layouts ({tried:,} tried) on {num_gpus} GPUs", why)


def summary_fields(result: SearchResult) -> dict[str, Any]:
    """The flat JSON keys the plan carries (units in the names)."""
    b = result.best
    if b is None:
        return {"layout": None, "memory_per_gpu_bytes": None, "step_time_s": None,
                "compute_s": None, "communication_s": None, "bubble_s": None, "predicted_mfu": None}
    s = b.step
    return {"layout": b.layout.describe(), "memory_per_gpu_bytes": b.memory.total_bytes,
            "step_time_s": s.step_time_s, "compute_s": s.compute_s,
            "communication_s": s.communication_s, "bubble_s": s.bubble_s,
            "predicted_mfu": s.predicted_mfu}


def steps_for(tokens: float, layout: Layout, seq_len: int) -> float:
    """Optimizer steps to train on `tokens`: tokens / (global batch x sequence length)."""
    return math.ceil(tokens / (layout.global_batch * seq_len))
