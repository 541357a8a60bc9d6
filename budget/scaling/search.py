"""A bracketed 1-D minimiser on a log axis (numpy only: `budget plan` must not import scipy.optimize).

A log-spaced grid finds the bracket holding the smallest value, then golden-section search narrows
it. The objectives here (training + inference FLOPs at a fixed loss, a capped-data loss along an
IsoFLOP line) are smooth and unimodal in log N over the brackets their callers give, so the grid
only guards against a poor bracket and the golden section supplies the precision.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

GRID_POINTS = 256
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618...
REL_TOLERANCE = 1e-12  # on log x: far below any digit we print


def minimize_log(objective: Callable[[np.ndarray], np.ndarray], low: float, high: float,
                 grid_points: int = GRID_POINTS) -> tuple[float, float]:
    """(x*, f(x*)) minimising a vectorised `objective` over x in [low, high] (0 < low < high)."""
    if not (0 < low < high and math.isfinite(high)):
        raise ValueError(f"bracket [{low!r}, {high!r}] must satisfy 0 < low < high < inf")
    xs = np.geomspace(low, high, grid_points)
    values = np.asarray(objective(xs), dtype=float)
    values = np.where(np.isfinite(values), values, np.inf)
    i = int(np.argmin(values))
    a = math.log(xs[max(i - 1, 0)])
    b = math.log(xs[min(i + 1, grid_points - 1)])

    def f(u: float) -> float:
        value = float(np.asarray(objective(np.array([math.exp(u)])), dtype=float)[0])
        return value if math.isfinite(value) else math.inf

    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    while b - a > REL_TOLERANCE * max(1.0, abs(a)):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + GOLDEN * (b - a)
            fd = f(d)
    best = math.exp((a + b) / 2.0)
    grid_best = float(values[i])
    value = f(math.log(best))
    if grid_best < value:  # the minimum sits on a bracket end the golden section cannot reach
        return float(xs[i]), grid_best
    return best, value
