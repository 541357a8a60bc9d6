"""Plain-text rendering helpers: aligned tables and human-readable numbers (no dependencies)."""

from __future__ import annotations

from typing import Any, Sequence

_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))


def human(x: float | None, digits: int = 3) -> str:
    """1234567 -> '1.23M'; None -> '-'. For counts (params, tokens)."""
    if x is None:
        return "-"
    for scale, suffix in _SUFFIXES:
        if abs(x) >= scale:
            return f"{x / scale:.{digits}g}{suffix}"
    return f"{x:.{digits}g}"


def sci(x: float | None, digits: int = 3) -> str:
    """Scientific notation for FLOPs: 1e21 -> '1.00e+21'."""
    return "-" if x is None else f"{x:.{digits - 1}e}"


def money(x: float | None) -> str:
    if x is None:
        return "-"
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def hours(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


def gib(x: float | None) -> str:
    """Bytes in GiB (binary) with the unit."""
    return "-" if x is None else f"{x / 2**30:,.1f} GiB"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Left-aligned first column, right-aligned others, two spaces apart."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    def fmt(row: Sequence[str]) -> str:
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        return indent + "  ".join(cells).rstrip()
    rule = indent + "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule] + [fmt(r) for r in rows])


def loss_cell(a: Any) -> str:
    """An allocation's loss for a table; a loss in another unit than the literature's nats per
    token (a byte-level sweep's nats per byte) says so in the cell."""
    from budget.scaling.laws import LITERATURE_LOSS_UNIT  # inside: render stays light to import

    if a.loss is None:
        return "-"
    if a.loss_unit == LITERATURE_LOSS_UNIT:
        return f"{a.loss:.3f}"
    return f"{a.loss:.3f} {a.loss_unit.replace('nats per ', 'nats/').split(' (')[0]}"


def loss_units_line(plan: Any) -> str:
    """Which loss is in which unit: the literature's nats per token on each paper's data, and a
    calibrated law's own unit when the plan has one."""
    from budget.scaling.laws import own_unit_losses

    base = "Predicted losses are nats/token on each law's own data: compare within a law only."
    other = own_unit_losses(plan.allocations)
    if not other:
        return base
    units = plan.calibration.calibration.units if plan.calibration is not None else None
    setup = units.setup() if units else ""
    return (f"{base} The {', '.join(a.law for a in other)} loss is {other[0].loss_unit} of your "
            f"sweep" + (f" ({setup})" if setup else "") + ": not on the literature's scale.")
