"""Warnings for fits that look fine and are not: `weak_fit_warnings(report) -> list[str]`.

- Approach 2 from exactly two IsoFLOP minima: the line through two points is exact, so it has no
  residual to judge it by and its interval only reflects resampling runs within each budget.
- A parameter at the edge of what the fit allows: E ~ 0 (the irreducible loss pushed to its
  lower bound: the data cannot see an asymptote), exponents near 0 or far above 1, an Approach 2
  exponent a or b outside 0..1 (one of N or D would shrink as compute grows).
- Bootstrap refits that failed: how many, and what a failure is for that approach.
"""

from __future__ import annotations

import math
from typing import Any

E_FLOOR_RATIO = 1e-3  # E below this fraction of the smallest loss: pushed to its bound (0)
EXPONENT_EDGES = (0.02, 3.0)  # alpha or beta outside: at the edge of what the data can say
WHY_REFITS_FAIL = {
    "approach2": "resamples in which fewer than two budgets kept an interior parabola minimum "
                 "(a resampled budget with fewer than 3 distinct sizes, or its vertex outside "
                 "them, has none)",
    "approach3": "resamples on which L-BFGS-B did not converge or gave an exponent <= 0",
    "approach1": "resamples with too few envelope points to fit the power law",
    "kaplan": "resamples on which the fit found no finite optimum",
}


def weak_fit_warnings(report: Any) -> list[str]:
    """Plain-language warnings about the fits in a `fits.FitReport` (empty when none apply)."""
    out: list[str] = []
    results = getattr(report, "results", {})
    a2 = results.get("approach2")
    if a2 is not None:
        valid = [c for c in a2.curves if c.valid]
        if len(valid) == 2:
            out.append("approach2: the line N_opt ~ C^a passes exactly through the 2 IsoFLOP "
                       "minima (no residual to judge it by); its interval only reflects "
                       "resampling runs within each budget; 3 or more budgets are needed to "
                       "test the power law")
        for name in ("a", "b"):
            value = getattr(a2, name)
            if math.isfinite(value) and not 0.0 < value < 1.0:
                out.append(f"approach2: {name} = {value:.3g} lies outside 0..1 (the other of N "
                           f"and D would shrink as compute grows): the minima are too noisy or "
                           f"too few to place")
        dropped = [c for c in a2.curves if not c.valid]
        for c in dropped:
            out.append(f"approach2: budget {c.flops:.3g} FLOPs left out: {c.reason}")
    a3 = results.get("approach3")
    if a3 is not None:
        table = getattr(report, "table", None)
        low = float(min(table.loss)) if table is not None else float("nan")
        if math.isfinite(low) and a3.E < E_FLOOR_RATIO * low:
            out.append(f"approach3: E = {a3.E:.3g} sits at its lower bound (0): the runs show no "
                       f"irreducible loss, so A, B and the exponents absorb it; extrapolated "
                       f"losses fall towards 0 instead of levelling off")
        for name in ("alpha", "beta"):
            value = getattr(a3, name)
            if math.isfinite(value) and not EXPONENT_EDGES[0] < value < EXPONENT_EDGES[1]:
                out.append(f"approach3: {name} = {value:.3g} is at the edge of what the fit "
                           f"allows ({EXPONENT_EDGES[0]}..{EXPONENT_EDGES[1]})")
    for key, fit in results.items():
        boot = getattr(fit, "bootstrap", None)
        if boot is not None and boot.requested and boot.succeeded < boot.requested:
            failed = boot.requested - boot.succeeded
            why = WHY_REFITS_FAIL.get(key, "resamples on which the fit failed")
            out.append(f"{key}: {boot.succeeded} of {boot.requested} bootstrap refits "
                       f"succeeded; the {failed} failed one(s) were {why}; the intervals come "
                       f"from the {boot.succeeded}")
    return out
