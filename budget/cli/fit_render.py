"""How `budget fit` renders what `budget.wiring.run_fit` made: a CSV fit, a CSV fit with the
hold-out check (`--holdout-largest`), or an experiment's fit with where it was logged and the
comparison with the registered literature laws."""

from __future__ import annotations

import math
from typing import Any


def render_fit(outcome: Any) -> str:
    """The terminal text of a FitOutcome (numbers only formatted here, never computed)."""
    from budget.cli.fit import render
    from budget.wiring import CsvFit

    result = outcome.result
    if isinstance(result, CsvFit):
        return render(result.report) + "\n\n" + render_holdout(result.holdout)
    if hasattr(result, "sweep_parents"):
        return render_experiment_fit(result)
    return render(result)


def render_experiment_fit(result: Any) -> str:
    """The fit's summary, where it came from, the hold-out check and the literature comparison."""
    from budget.cli.fit import render

    sweep = result.to_dict()["sweep"]
    lines = [f"experiment {sweep['experiment']!r}: {sweep['runs']} finished runs over "
             f"{len(sweep['budgets_flops'])} budgets "
             f"({', '.join(f'{b:.1e}' for b in sweep['budgets_flops'])} FLOPs)",
             f"logged as fit run {sweep['fit_run_id']} (tag budget.role=fit; sweep run(s) "
             f"{', '.join(sweep['sweep_parents'])})"]
    if sweep.get("loss_unit"):
        lines.append(f"losses are {sweep['loss_unit']} ({sweep.get('dataset') or 'the sweep'}, "
                     f"vocabulary {sweep['vocab_size']:,}, context {sweep['n_ctx']}): not "
                     f"comparable with the literature's nats per GPT-2/Chinchilla token")
    lines += ["", render(result.report)]
    if result.holdout is not None:
        lines += ["", render_holdout(result.holdout)]
    lines += ["", render_comparison(result)]
    lines += [f"WARNING: {w}" for w in getattr(result, "warnings", ())]
    return "\n".join(lines)


def render_holdout(holdout: Any) -> str:
    lines = [f"hold-out: fitted without the largest budget ({holdout.budget_flops:.2e} FLOPs); "
             f"measured there: best loss {holdout.observed_best_loss:.4f}, optimal N "
             f"{holdout.observed_params_opt:,.0f}"]
    for key, p in holdout.predictions.items():
        loss = f"predicted best loss {p['best_loss']:.4f} ({p['best_loss_rel_error']:+.1%})" \
            if math.isfinite(p["best_loss"]) else "best loss not predicted (no loss law fitted)"
        lines.append(f"  {key}: {loss}, optimal N {p['params_opt']:,.0f} "
                     f"({p['params_opt_rel_error']:+.1%})")
    lines += [f"  {key}: not fitted without the largest budget ({why})"
              for key, why in holdout.skipped.items()]
    return "\n".join(lines)


def render_comparison(result: Any) -> str:
    """Exponents and N_opt at the target budget: the team's fit beside the literature laws."""
    from budget.errors import BudgetError
    from budget.render import human, table
    from budget.wiring import literature_comparison

    target = result.report.target_flops
    try:
        rows = literature_comparison(result)
    except BudgetError as exc:
        return f"no comparison with the literature: {exc}"
    from budget.cli.fit import ONE_BUDGET

    one = len(result.report.budgets_flops) == 1  # the team's exponents rest on one budget
    mark = ONE_BUDGET.strip()

    def exponent(r: dict[str, Any], key: str) -> str:
        own = one and r["law"].startswith("calibrated")
        return f"{r[key]:.3f}" + (f" {mark}" if own else "")
    body = [[r["law"], exponent(r, "a"), exponent(r, "b"), human(r["params"]),
             "-" if r["params_ratio"] is None else f"{r['params_ratio']:.3g}"] for r in rows]
    return "\n".join([f"against the literature at C = {target:.2e} FLOPs (N_opt ~ C^a, D_opt ~ C^b; "
                      "ratio = your N_opt / theirs; kaplan's N is non-embedding):",
                      table(["law", "a", "b", "N_opt", "ratio"], body)])
