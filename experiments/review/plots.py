"""Matplotlib (Agg) figures for sweeps: one run's loss curve and the sweep's IsoFLOP curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    """Lay out, write the PNG and release the figure (pyplot keeps every open figure)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def loss_curve_png(curve: Sequence[tuple[int, int, float]],
                   val: Sequence[tuple[float, float]], title: str, path: Path) -> Path:
    """Training loss (per step) and validation loss against tokens seen."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([c[1] for c in curve], [c[2] for c in curve], lw=0.8, label="train")
    if val:
        ax.plot([v[0] for v in val], [v[1] for v in val], "o-", label="validation")
    ax.set(xlabel="tokens seen", ylabel="loss (nats/byte)", title=title)
    ax.legend()
    return _save(plt, fig, path)


def isoflop_png(points: Sequence[tuple[float, float, float]], path: Path,
                title: str = "IsoFLOP curves") -> Path:
    """Final validation loss against N, one curve per budget C; points are (C, N, loss)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    budgets = sorted({p[0] for p in points})
    cmap = plt.get_cmap("viridis")
    for i, budget in enumerate(budgets):
        row = sorted((p[1], p[2]) for p in points if p[0] == budget)
        color = cmap(i / max(1, len(budgets) - 1))
        ax.plot([r[0] for r in row], [r[1] for r in row], "o-", color=color,
                label=f"C = {budget:.1e} FLOPs")
        best = min(row, key=lambda r: r[1])
        ax.plot([best[0]], [best[1]], "*", ms=14, color=color, mec="black")
    ax.set_xscale("log")
    ax.set(xlabel="parameters N (total)", ylabel="final validation loss (nats/byte)", title=title)
    ax.legend()
    return _save(plt, fig, path)
