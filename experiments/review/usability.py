"""Whether a sweep's fit may calibrate a plan: a fit that cannot place N_opt says so, once.

Two tests, both on what the sweep measured:
- interior minima: a budget brackets its optimum only when its lowest loss is not at its
  smallest or largest sampled size (the per-budget minimum of Hoffmann et al. 2022, Approach 2,
  Sec. 3.2); a fit needs `MIN_INTERIOR_BUDGETS` such budgets, else its N_opt is extrapolated
  past every size it saw (the smoke preset: its smallest model wins at every budget);
- interval: the fit's bootstrap interval of N_opt at its own target budget may span at most
  `MAX_NOPT_SPAN` (high / low); a wider one cannot choose a model size.

`planning_verdict(points, fit_dict)` is recorded in the fit (`"planning"`) and as tags of the fit
run; `budget plan --calibrate` and the proposal refuse a fit whose verdict is not usable
(`budget.wiring.load_calibration`).
"""

from __future__ import annotations

from typing import Any

MIN_INTERIOR_BUDGETS = 2  # Approach 2 needs a minimum at >= 2 budgets to draw a frontier
MAX_NOPT_SPAN = 10.0  # one decade of N: wider, and the interval cannot pick a model size
INSTEAD = "the cpu preset, whose adaptive budgets bracket the optimum (budget sweep --preset cpu)"


def interior_budgets(points: Any) -> tuple[int, int]:
    """(budgets whose lowest loss is at an inner size, budgets with >= 3 sizes)."""
    from fits import cluster_budgets

    labels = cluster_budgets(points["flops"].to_numpy())
    inner = counted = 0
    for k in set(labels):
        group = points[labels == k].sort_values("params")
        if group["params"].nunique() < 3:
            continue
        counted += 1
        best = int(group["loss"].to_numpy().argmin())
        inner += 0 < best < len(group) - 1
    return inner, counted


def nopt_span(fit: dict[str, Any]) -> float | None:
    """high / low of the Approach 3 bootstrap interval of N_opt at the fit's target, if any."""
    ci = ((fit.get("approach3") or {}).get("ci") or {}).get("params_opt") or {}
    low, high = ci.get("low"), ci.get("high")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or low <= 0:
        return None
    return float(high) / float(low)


def planning_verdict(points: Any, fit: dict[str, Any]) -> dict[str, Any]:
    """{"usable", "reasons", "interior_budgets", "budgets", "params_opt_span", "max_span"}."""
    inner, counted = interior_budgets(points)
    span = nopt_span(fit)
    reasons = []
    if inner < MIN_INTERIOR_BUDGETS:
        reasons.append(f"{inner} of {counted} budget(s) have their lowest loss inside the sampled "
                       f"sizes (at least {MIN_INTERIOR_BUDGETS} needed: N_opt is extrapolated)")
    if span is not None and span > MAX_NOPT_SPAN:
        reasons.append(f"the N_opt interval spans {span:.3g}x (at most {MAX_NOPT_SPAN:g}x)")
    return {"usable": not reasons, "reasons": reasons, "interior_budgets": inner,
            "budgets": counted, "params_opt_span": span, "max_span": MAX_NOPT_SPAN,
            "instead": INSTEAD if reasons else None}


def refusal(fit: dict[str, Any]) -> str | None:
    """Why a fit may not calibrate a plan (None: it may). A fit without a recorded verdict (a
    CSV fit) is judged on its interval alone."""
    verdict = fit.get("planning")
    if isinstance(verdict, dict):
        if verdict.get("usable", True):
            return None
        return "; ".join(verdict.get("reasons") or ["recorded as not usable"])
    span = nopt_span(fit)
    if span is not None and span > MAX_NOPT_SPAN:
        return f"the N_opt interval spans {span:.3g}x (at most {MAX_NOPT_SPAN:g}x)"
    return None
