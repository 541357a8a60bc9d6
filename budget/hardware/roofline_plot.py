"""The roofline picture: attainable FLOP/s against arithmetic intensity, log-log, layers on it.

matplotlib is imported inside `plot_roofline` only, so `budget roofline` without `--plot` starts
fast (the CLI contract in DESIGN.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WIDTH_PX, HEIGHT_PX, DPI = 1200, 750, 150
# drawn in this order, so the matmuls (the ones that matter) sit on top
_COLOURS = {"elementwise": "tab:red", "norm": "tab:orange", "attention": "tab:purple",
            "matmul": "tab:blue"}
_SIZES = {"elementwise": 22, "norm": 30, "attention": 45, "matmul": 60}


def plot_roofline(result: Any, path: str | Path, width_px: int = WIDTH_PX,
                  height_px: int = HEIGHT_PX) -> Path:
    """Write a PNG of `result` (a Roofline): the memory slope, the compute roofs, one dot per op."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    fig, ax = plt.subplots(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    ais = [o.intensity for o in result.ops if 0 < o.intensity < float("inf")]
    lo, hi = min(ais + [0.05]) / 2, max(ais + [result.ridge * 10]) * 2
    bw = result.bandwidth_bytes_per_s
    for peak, label, style in ((result.peak_flops, f"{result.precision} tensor peak", "-"),
                               (result.vector_peak_flops, "vector (fp32) peak", ":")):
        ridge = peak / bw
        ax.plot([lo, ridge, hi], [lo * bw, peak, peak], style, color="black", lw=1.2,
                label=f"{label} {peak / 1e12:,.0f} TFLOP/s, ridge {ridge:,.0f} FLOP/B")
    labelled: list[tuple[float, int]] = []
    for kind, colour in _COLOURS.items():
        pts = [o for o in result.ops if o.kind == kind and 0 < o.intensity < float("inf")]
        if not pts:
            continue
        ax.scatter([o.intensity for o in pts], [o.attainable_flops for o in pts], s=_SIZES[kind],
                   color=colour, label=kind, zorder=3, alpha=0.8, edgecolors="black",
                   linewidths=0.4)
        for o in pts:  # stack the labels of ops at the same intensity instead of overprinting
            same = sum(1 for ai, _ in labelled if abs(ai / o.intensity - 1) < 0.15)
            labelled.append((o.intensity, same))
            ax.annotate(o.name, (o.intensity, o.attainable_flops), fontsize=6,
                        xytext=(4, 4 + 7 * same), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte of HBM traffic)")
    ax.set_ylabel("attainable FLOP/s")
    ax.set_title(f"{result.model} {result.phase}, batch {result.batch}, seq {result.seq_len} "
                 f"on {result.accelerator}", fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out
