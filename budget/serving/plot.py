"""Latency against load for one deployment: p50/p95 TTFT and TPOT over a sweep of request rates
(matplotlib's object API on the Agg canvas, imported only here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from budget.models.arch import Architecture
from budget.serving.deploy import Deployment, Replica, evaluate
from budget.serving.traffic import Targets, Traffic

LOAD_FRACTIONS = tuple(float(x) for x in np.round(np.linspace(0.1, 1.5, 15), 2))


@dataclass(frozen=True)
class LoadPoint:
    rate: float
    ttft_ms: dict[str, float]
    tpot_ms: dict[str, float]
    meets: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_sweep(arch: Architecture, rep: Replica, traffic: Traffic, targets: Targets,
               dep: Deployment, n: int, seed: int) -> tuple[LoadPoint, ...]:
    """The deployment's replicas at LOAD_FRACTIONS of the offered rate."""
    pools: int | tuple[int, int] = dep.replicas if dep.mode == "aggregated" else \
        (dep.prefill_replicas, dep.decode_replicas)
    out = []
    for f in LOAD_FRACTIONS:
        d = evaluate(arch, rep, replace(traffic, rate=traffic.rate * f), targets, pools, n, seed)
        out.append(LoadPoint(traffic.rate * f, d.ttft_ms, d.tpot_ms, d.meets))
    return tuple(out)


def save_plot(points: tuple[LoadPoint, ...], dep: Deployment, path: str | Path) -> Path:
    """Two panels (TTFT, TPOT) of p50/p95/p99 against requests/s, targets dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    rates = [p.rate for p in points]
    t = dep.targets
    for ax, key, target, title in ((axes[0], "ttft_ms", t["ttft_ms"], "time to first token"),
                                   (axes[1], "tpot_ms", t["tpot_ms"], "time per output token")):
        for q, style in (("p50", "-o"), ("p95", "-s"), ("p99", "-^")):
            ax.plot(rates, [getattr(p, key)[q] for p in points], style, ms=3, label=q)
        if target is not None:
            ax.axhline(target, color="k", ls="--", lw=1,
                       label=f"target p{t['percentile']:g} {target:g} ms")
        ax.axvline(dep.traffic["rate"], color="grey", ls=":", lw=1, label="offered load")
        ax.set_yscale("log")
        ax.set_xlabel("requests/s")
        ax.set_ylabel("ms")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.suptitle(f"{dep.model} on {dep.gpus} x {dep.gpu} (tp{dep.tp}, {dep.weights} weights, "
                 f"{dep.kv} KV, {dep.mode}, {dep.replicas} replicas)", fontsize=9)
    out = Path(path)
    fig.savefig(out)
    return out
