"""A calibration from a fit that has no converged Approach 3: its N_opt(C) power law instead.

`budget fit` may keep Approach 2 (IsoFLOP minima) or Approach 1 (training-curve envelope) and
skip Approach 3 (too few sizes or token counts, or no convergence). Both give N_opt = k C^a
(Hoffmann et al. 2022 §3.1-3.2); the plan then takes N from it and D = C / (6 N), so 6ND = C as
for every law, with the loss from Approach 2's L_opt(C) = E + A C^-alpha where it was fitted.
The plan says which approach it used. Pure Python, like `budget.scaling.calibrated`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from budget.scaling import laws
from budget.scaling.calibrated import Calibration, finite_json, literature_rows, sweep_units

FALLBACK_ORDER = ("approach2", "approach1")  # IsoFLOP minima first: Hoffmann's most direct reading
_NAMES = {"approach2": "Approach 2, IsoFLOP minima", "approach1": "Approach 1, training-curve envelope"}


@dataclass(frozen=True)
class FrontierCalibration(Calibration):
    """N_opt = k_params C^a from Approach 2 or 1; D = C / (6 N); loss from L_opt(C) if fitted."""

    approach: str = "approach2"
    k_params: float = 1.0
    a: float = 0.5
    b: float = 0.5
    loss_law: tuple[float, float, float] | None = None  # (E, A, alpha) of L_opt(C) = E + A C^-alpha
    why: str = ""  # why Approach 3 was not used

    def allocation(self, compute_flops: float) -> laws.Allocation:
        C = laws.check_compute(compute_flops)
        N = self.k_params * C ** self.a
        loss = None if self.loss_law is None else self.loss_law[0] + self.loss_law[1] * C ** -self.loss_law[2]
        return laws.Allocation(
            "calibrated", C, N, C / (laws.FLOPS_PER_PARAM_TOKEN * N), loss, "total", self.source,
            note=self.warning(C) or f"{self.used()}; fitted on budgets up to {self.max_budget_flops:.2e} FLOPs",
            loss_unit=self.loss_unit)

    def used(self) -> str:
        return (f"calibrated with {_NAMES[self.approach]} (N_opt = k C^a, D = C / 6N): {self.why}; "
                "no intervals (this fit keeps no bootstrap draws of the whole law)")

    def comparison(self, compute_flops: float) -> list[dict[str, Any]]:
        mine = self.allocation(compute_flops)
        rows = [{"law": f"calibrated ({self.approach.replace('approach', 'approach ')})", "a": self.a,
                 "b": self.b, "params": mine.params, "params_ratio": 1.0}]
        return rows + literature_rows(mine.params, compute_flops)

    def to_dict(self, compute_flops: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source, "approach": self.approach, "used": self.used(),
            "law": {"k_params": self.k_params, "a": self.a, "b": self.b,
                    "loss_law": list(self.loss_law) if self.loss_law else None},
            "level": self.level, "bootstrap_draws": 0, "budgets_flops": list(self.budgets_flops),
            "max_budget_flops": self.max_budget_flops, "runs": self.n_runs,
            "approach2_exponents": [self.a, self.b] if self.approach == "approach2" else None,
            "holdout": self.holdout, "loss_unit": self.loss_unit,
            "units": self.units.to_dict() if self.units else None}
        if compute_flops is not None:
            out["extrapolation_decades"] = self.extrapolation_decades(compute_flops)
            out["warning"] = self.warning(compute_flops)
            out["comparison"] = self.comparison(compute_flops)
        return out


def frontier_calibration(fit: dict[str, Any], source: str, budgets: list[float],
                         why: str) -> FrontierCalibration | None:
    """The first converged power-law fit in FALLBACK_ORDER, or None when the fit has neither."""
    for key in FALLBACK_ORDER:
        res = fit.get(key)
        if not isinstance(res, dict) or not res.get("success", True) or res.get("a") is None:
            continue
        law = res.get("loss_law") or {}
        loss = (float(law["E"]), float(law["A"]), float(law["alpha"])) \
            if law.get("E") is not None and law.get("success", True) else None
        return FrontierCalibration(
            source=f"{source} ({_NAMES[key]})", law=None, draws=(),  # type: ignore[arg-type]
            level=float(fit.get("input", {}).get("level", 0.95)),
            budgets_flops=tuple(float(b) for b in budgets),
            n_runs=int(fit.get("input", {}).get("points", 0)),
            holdout=finite_json(fit.get("holdout")),
            approach=key, k_params=float(res["k_params"]), a=float(res["a"]), b=float(res["b"]),
            loss_law=loss, why=why, units=sweep_units(fit))
    return None
