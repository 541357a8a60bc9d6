"""The proposal's figures (matplotlib's object API with the Agg canvas: no pyplot, no global backend).

matplotlib is imported inside `make_figures` only, so importing `budget.report.build` stays light.
"""

from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from budget.report.sections import Figure, Report
from budget.scaling import laws

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

GIB = 2.0 ** 30
SPAN_BELOW, SPAN_ABOVE = 1e3, 1e2  # compute axis: C / 1e3 to C x 1e2
LAW_COLORS = {"epoch": "#1f77b4", "chinchilla": "#ff7f0e", "tokens-per-param": "#2ca02c",
              "kaplan": "#d62728", "chinchilla-unrounded": "#8c564b"}  # calibrated: black
MEMORY_PARTS = (("params_bytes", "weights", "#4c72b0"), ("grads_bytes", "gradients", "#55a868"),
                ("optimizer_bytes", "optimizer state", "#c44e52"),
                ("activations_bytes", "activations", "#8172b2"))


def make_figures(report: Report) -> tuple[Figure, ...]:
    """The four standard figures: loss, allocation, accelerators, memory.

    Text is drawn literally (no mathtext): a catalog name or title with `$...$` in it is shown as
    typed instead of being parsed (and failing) as TeX."""
    from matplotlib import rc_context

    with rc_context({"text.parse_math": False}):
        return (loss_figure(report), allocation_figure(report), accelerator_figure(report),
                memory_figure(report))


def _new(width: float, height: float, ncols: int = 1) -> tuple["MplFigure", Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols)


SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def power_of_ten(value: float, pos: int | None = None) -> str:
    """A log axis tick as plain text, 10¹² (text is drawn without mathtext here, so matplotlib's
    own `$\\mathdefault{10^{12}}$` labels would be printed literally)."""
    if value <= 0:
        return ""
    exponent = np.log10(value)
    if abs(exponent - round(exponent)) > 1e-9:
        return ""
    return "10" + str(int(round(exponent))).translate(SUPERSCRIPT)


def _png(fig: "MplFigure") -> bytes:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for ax in fig.axes:  # every log axis: plain-text decade labels, no minor labels
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale == "log":
                axis.set_major_formatter(FuncFormatter(power_of_ten))
                axis.set_minor_formatter(NullFormatter())
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _allocators(report: Report) -> dict[str, Callable[[float], laws.Allocation] | None]:
    """law id -> C -> Allocation, for every law of the plan (None when only the point is known)."""
    out: dict[str, Callable[[float], laws.Allocation] | None] = {}
    for a in report.plan.allocations:
        if a.law in laws.LAW_IDS:
            out[a.law] = functools.partial(laws.compute_optimal, a.law)
        else:
            cal = report.calibration
            out[a.law] = cal.allocate if cal is not None else None
    return out


def _compute_grid(report: Report) -> np.ndarray:
    C = report.plan.compute_flops
    return np.logspace(np.log10(C / SPAN_BELOW), np.log10(C * SPAN_ABOVE), 60)


def _label(law: str, recommended: str) -> str:
    return f"{law} (recommended)" if law == recommended else law


def loss_figure(report: Report) -> Figure:
    """Predicted loss at each law's compute-optimal allocation vs C, budget marked."""
    plan, grid = report.plan, _compute_grid(report)
    fig, ax = _new(7.5, 4.2)
    own = laws.own_unit_losses(plan.allocations)
    # a calibrated loss in the sweep's own unit (nats per byte) gets an axis of its own
    twin = ax.twinx() if own else None
    for a in plan.allocations:
        allocate = _allocators(report)[a.law]
        if a.loss is None:
            continue
        target = twin if (twin is not None and a in own) else ax
        color = LAW_COLORS.get(a.law, "black")
        label = f"{_label(a.law, plan.recommended)}: {a.loss:.3f} at the budget"
        if target is twin:
            label += f" ({a.loss_unit}, right axis)"
        if allocate is not None:
            losses = [allocate(float(c)).loss for c in grid]
            target.plot(grid, losses, color=color, lw=2.5 if a.law == plan.recommended else 1.5,
                        label=label, zorder=3 if a.law == plan.recommended else 2,
                        ls=":" if target is twin else "-")
        target.plot([plan.compute_flops], [a.loss], "o", color=color,
                    label=None if allocate is not None else label)
    ax.axvline(plan.compute_flops, color="grey", ls="--", lw=1,
               label=f"budget {plan.compute_flops:.3g} FLOPs")
    ax.set(xscale="log", xlabel="training compute C (FLOPs)",
           ylabel="literature laws: predicted loss (nats/token)",
           title="Predicted loss at the compute-optimal allocation")
    ax.grid(True, which="major", alpha=0.3)
    ax.minorticks_off()
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        twin.set_ylabel(f"{own[0].law}: predicted loss ({own[0].loss_unit})")
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize=8)
    caption = ("Loss of each law's compute-optimal (N, D) as C grows; the dashed line is the "
               "budget. Losses are on each law's own data: compare shapes, not levels.")
    if own:
        caption += (f" The {own[0].law} loss is {own[0].loss_unit} of our sweep, on the right-hand "
                    "axis: it is not on the literature's nats-per-token scale.")
    return Figure("loss_vs_compute", "Predicted loss vs compute", caption, _png(fig))


def allocation_figure(report: Report) -> Figure:
    """N_opt(C) and D_opt(C) per law, with the budget's allocation marked."""
    plan, grid = report.plan, _compute_grid(report)
    fig, (ax_n, ax_d) = _new(10, 4.2, ncols=2)
    for a in plan.allocations:
        color = LAW_COLORS.get(a.law, "black")
        allocate = _allocators(report)[a.law]
        width = 2.5 if a.law == plan.recommended else 1.5
        label = _label(a.law, plan.recommended) + ("" if a.params_count == "total" else
                                                    " (non-emb. N)")
        for ax, value, attr in ((ax_n, a.params, "params"), (ax_d, a.tokens, "tokens")):
            if allocate is not None:
                ax.plot(grid, [getattr(allocate(float(c)), attr) for c in grid], color=color,
                        lw=width, label=label, zorder=3 if a.law == plan.recommended else 2)
            ax.plot([plan.compute_flops], [value], "o", color=color)
    for ax, what in ((ax_n, "parameters N"), (ax_d, "training tokens D")):
        ax.axvline(plan.compute_flops, color="grey", ls="--", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="training compute C (FLOPs)", ylabel=what,
               title=f"Compute-optimal {what}")
        ax.grid(True, which="major", alpha=0.3)
        ax.minorticks_off()  # log minor ticks on four decades cost more than the rest of the plot
    ax_n.legend(fontsize=8)
    return Figure("allocation", "N and D per law",
                  "Compute-optimal parameters and tokens under each law (6ND = C); dots mark the "
                  "budget. kaplan counts non-embedding parameters.", _png(fig))


def accelerator_figure(report: Report) -> Figure:
    """Cost and wall clock of the same run on each accelerator, MFU band as error bars."""
    rows = report.compare
    labels = [f"{r.gpu.id} x{r.num_gpus} @ MFU {r.cost.mfu:.1%}" for r in rows]
    y = np.arange(len(rows))[::-1]
    fig, (ax_c, ax_t) = _new(10, 1.2 + 0.55 * len(rows), ncols=2)
    costs = [r.cost.cost_usd or 0.0 for r in rows]
    cost_err = _band_err(costs, [r.cost.cost_usd_range for r in rows])
    ax_c.barh(y, costs, xerr=cost_err, color="#4c72b0", capsize=3)
    for yi, r, cost, hi in zip(y, rows, costs, cost_err[1]):
        ax_c.text(cost + hi, yi, "  no price" if r.cost.cost_usd is None else f"  ${cost:,.0f}",
                  va="center", fontsize=8)
    days = [r.cost.wall_clock_days for r in rows]
    day_err = _band_err(days, [tuple(h / 24 for h in r.cost.wall_clock_hours_range) for r in rows])
    ax_t.barh(y, days, xerr=day_err, color="#55a868", capsize=3)
    for yi, d, hi in zip(y, days, day_err[1]):
        ax_t.text(d + hi, yi, f"  {d:,.1f} d", va="center", fontsize=8)
    band = report.plan.cost.mfu_band
    one = len({r.cost.mfu for r in rows}) == 1  # else each bar at its own MFU, named in its label
    at = (f"at MFU {report.plan.mfu:.0%} (bars: {band[0]:.0%}-{band[1]:.0%})" if one else
          "at each device's own MFU (bars: its band)")
    for ax, what in ((ax_c, "cost (USD)"), (ax_t, "wall clock (days)")):
        ax.set_yticks(y, labels, fontsize=8)
        ax.set(xlabel=what, title=f"{what.split(' (')[0].capitalize()} {at}")
        ax.grid(True, axis="x", alpha=0.3)
        ax.margins(x=0.25)
    return Figure("accelerators", "Cost and wall clock across accelerators",
                  "The same training run (same C) on each accelerator at its GPU count; error "
                  "bars span the MFU band.", _png(fig))


def _band_err(values: list[float], ranges: list[Any]) -> np.ndarray:
    """Asymmetric error bars (2 x n) from (low, high) ranges; zero where a range is missing."""
    err = np.zeros((2, len(values)))
    for i, (v, rng) in enumerate(zip(values, ranges)):
        if rng is not None:
            err[0, i], err[1, i] = max(v - rng[0], 0.0), max(rng[1] - v, 0.0)
    return err


def memory_figure(report: Report) -> Figure:
    """Per-GPU memory, stacked by part, against each device's usable memory."""
    rows = report.compare
    y = np.arange(len(rows))[::-1]
    fig, ax = _new(8, 1.8 + 0.55 * len(rows))
    left = np.zeros(len(rows))
    for key, name, color in MEMORY_PARTS:
        part = np.array([getattr(r.memory, key) / GIB for r in rows])
        ax.barh(y, part, left=left, color=color, label=name)
        left += part
    for i, (yi, r) in enumerate(zip(y, rows)):
        usable = (r.memory.gpu_memory_bytes or 0) * r.memory.usable_fraction / GIB
        ax.plot([usable, usable], [yi - 0.4, yi + 0.4], color="black", lw=2,
                label=None if i else f"usable ({r.memory.usable_fraction:.0%} of device)")
        ax.text(max(left[i], usable), yi, f"  {left[i]:,.1f} of {usable:,.1f} GiB usable",
                va="center", fontsize=8)
    m = report.plan.memory
    ax.set_yticks(y, [f"{r.gpu.id} x{r.num_gpus}" for r in rows], fontsize=8)
    ax.set(xlabel="GiB per GPU", title=f"Training memory per GPU ({m.precision} {m.optimizer}, "
                                       f"ZeRO-{m.zero_stage}, recompute {m.recompute})")
    ax.margins(x=0.35)
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=5, fontsize=8)
    return Figure("memory", "Memory breakdown",
                  f"Weights, gradients, optimizer state and activations per GPU for the proposed "
                  f"shape at each accelerator's GPU count; the black tick is "
                  f"{m.usable_fraction:.0%} of device memory.", _png(fig))
