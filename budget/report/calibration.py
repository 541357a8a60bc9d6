"""The proposal's calibration section (`budget report --calibrate EXP|FILE`): the team's fitted
law, its evidence, how far the budget lies beyond it, the hold-out check, the side-by-side
comparison with the literature and the sweep's own figures (IsoFLOP curves, fitted frontier)."""

from __future__ import annotations

from typing import Any, Mapping

from budget.render import human
from budget.report.sections import CalibrationSection, Figure
from budget.scaling.calibrated import Calibration

FIGURE_TEXT = {  # logged figure stem -> (title, caption)
    "fit_isoflop": ("IsoFLOP curves of the sweep",
                    "Final validation loss against N at each swept budget, the parabola in log N "
                    "fitted to each, and its minimum (Chinchilla Approach 2)."),
    "fit_frontier": ("Fitted frontier against the literature",
                     "Compute-optimal N from each fitted approach over the swept budgets, beside "
                     "the literature laws (dashed)."),
}


def calibration_section(cal: Calibration, compute_flops: float,
                        figures: Mapping[str, bytes] | None = None) -> CalibrationSection:
    """A CalibrationSection whose plan is `make_plan(..., calibration=cal)`."""
    mine = cal.allocation(compute_flops)
    decades = cal.extrapolation_decades(compute_flops)
    budgets = ', '.join(f'{b:.1e}' for b in cal.budgets_flops)
    if hasattr(cal, "used"):  # no Approach 3 in the fit (budget.scaling.calibrated_frontier)
        law = (f"Source: {cal.source}, fitted to {cal.n_runs} finished runs over budgets {budgets} "
               f"FLOPs: {cal.used()}.")
    else:
        law = (f"Source: {cal.source}: Chinchilla Approach 3 (L = E + A/N^alpha + B/D^beta) fitted "
               f"to {cal.n_runs} finished runs over budgets {budgets} FLOPs; E {cal.law.E:.3g}, "
               f"A {cal.law.A:.3g}, B {cal.law.B:.3g}, alpha {cal.law.alpha:.3f}, beta "
               f"{cal.law.beta:.3f}, so N_opt ~ C^{cal.law.a:.3f} and D_opt ~ C^{cal.law.b:.3f}.")
    units = (f"Its losses are {cal.units.describe()} of our sweep, not the literature's nats per "
             "token of each paper's data: compare its N and D with theirs, not its loss."
             if cal.units else "")
    text = [law, *([units] if units else []), _interval_text(mine, len(cal.draws)),
            f"The budget lies {decades:.1f} orders of magnitude beyond the largest swept budget. "
            + (cal.warning(compute_flops) or "That is within reach of the evidence.")]
    if cal.holdout:
        text.append(_holdout_text(cal.holdout))
    rows = [("law", "a", "b", "N_opt at the budget", "your N_opt / theirs")]
    rows += [(r["law"], f"{r['a']:.3f}", f"{r['b']:.3f}", human(r["params"]),
              "-" if r["params_ratio"] is None else f"{r['params_ratio']:.3g}")
             for r in cal.comparison(compute_flops)]
    figs = tuple(Figure(f"calibration_{name}", *FIGURE_TEXT[name], png)
                 for name, png in (figures or {}).items() if name in FIGURE_TEXT)
    return CalibrationSection(
        title="Calibration against our own sweep", paragraphs=tuple(text), figures=figs,
        allocation=mine, allocate=cal.allocation,
        fitted_compute_range=(min(cal.budgets_flops), cal.max_budget_flops), table=tuple(rows),
        sources=(("calibrated law", f"{cal.source}; method Hoffmann et al. 2022 App. D.2 as "
                                    "refit by Besiroglu et al. 2024"),), law=cal)


def _interval_text(mine: Any, draws: int) -> str:
    if not (mine.params_ci and mine.tokens_ci and mine.loss_ci):
        loss = "no loss prediction" if mine.loss is None else f"loss {mine.loss:.3f}"
        return (f"At the budget it gives N {human(mine.params)}, D {human(mine.tokens)}, {loss} "
                f"(no bootstrap intervals in the fit).")
    level = f"{mine.interval_level:.0%}"
    return (f"At the budget it gives N {human(mine.params)} ({level} interval "
            f"{human(mine.params_ci[0])}-{human(mine.params_ci[1])}), D {human(mine.tokens)} "
            f"({human(mine.tokens_ci[0])}-{human(mine.tokens_ci[1])}) and loss {mine.loss:.3f} "
            f"({mine.loss_ci[0]:.3f}-{mine.loss_ci[1]:.3f}) {mine.loss_unit} on our data, over "
            f"{draws} bootstrap refits.")


def _holdout_text(holdout: Mapping[str, Any]) -> str:
    def pct(x: Any) -> str:
        return "not predicted" if x is None or x != x else f"{x:+.1%}"  # None or NaN: no law

    parts = [f"{k}: best loss {pct(p.get('best_loss_rel_error'))}, optimal N "
             f"{pct(p.get('params_opt_rel_error'))}" for k, p in holdout.get("predictions", {}).items()]
    return (f"Hold-out check: fitted without the largest budget ({holdout['budget_flops']:.1e} "
            f"FLOPs), the fit predicted that budget's measurements with relative errors "
            f"{'; '.join(parts) or 'none (no approach could be fitted)'}.")
