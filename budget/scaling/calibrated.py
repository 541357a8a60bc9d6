"""A team's own fitted law as a planner allocation: `budget plan --calibrate EXP|FILE`.

The calibration is Chinchilla Approach 3 fitted to the team's sweep (`budget fit`), read from a
saved fit file (`budget fit --json > fit.json`) or from the newest fit logged to an MLflow
experiment (`budget.wiring.load_calibration`).

The fit file is versioned: `kind` = FIT_KIND and `schema_version` = FIT_SCHEMA_VERSION (written by
`fits.report.FitReport.to_dict`, which states the same two constants: fits never imports budget).
Schema version 1 is read exactly as: `approach3` {E, A, B, alpha, beta, success, message,
bootstrap_draws (optional list of [E, A, B, alpha, beta]), bootstrap {level}}; the swept budgets
from `sweep.budgets_flops` (an experiment fit) or else `input.budgets_flops`; `input.points`
(runs); optional `approach2` {a, b} and `holdout`. Any other kind or version is refused in one
line. Its compute-optimal allocation is the closed form of Hoffmann et al. 2022 eq. 4, so
6 N D = C like every literature law, and each of N, D and the predicted loss carries a percentile
interval over the fit's bootstrap refits (each refit's own frontier evaluated at C).

Pure Python: no numpy, scipy or mlflow here (the MLflow side lives in `experiments.review.fitting`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from budget.errors import BudgetError
from budget.scaling import laws

LONG_EXTRAPOLATION_DECADES = 1.0  # warn beyond 10x the largest swept budget
VERY_LONG_EXTRAPOLATION_DECADES = 3.0  # and loudly beyond 1,000x

FIT_KIND = "compute-budget.fit"  # the fit file's `kind` (fits.report.FIT_KIND says the same)
FIT_SCHEMA_VERSION = 1  # the one schema this module reads (fits.report.FIT_SCHEMA_VERSION)

# (a, b) with N_opt ~ C^a, D_opt ~ C^b, from the law registry
LITERATURE_EXPONENTS = {law_id: law.exponents for law_id, law in laws.LAWS.items()}


def literature_rows(params: float, compute_flops: float) -> list[dict[str, Any]]:
    """Every registered law's exponents and N at C beside a calibrated N (its ratio to theirs)."""
    rows = []
    for law_id in laws.LAW_IDS:
        other = laws.compute_optimal(law_id, compute_flops)
        a, b = LITERATURE_EXPONENTS[law_id]
        rows.append({"law": law_id, "a": a, "b": b, "params": other.params,
                     "params_ratio": params / other.params})
    return rows


@dataclass(frozen=True)
class SweepUnits:
    """What a sweep measured with: its loss unit, tokenizer vocabulary, context and data. The
    calibrated law's N counts that vocabulary's embeddings and its loss is in that unit, so the
    planner sizes the calibrated shape with them (unless --vocab / --seq-len are given)."""

    loss_unit: str
    vocab_size: int | None = None
    n_ctx: int | None = None
    dataset: str = ""

    def setup(self) -> str:
        """'plays, vocabulary 256, context 64': what the sweep was measured with ('' if unknown)."""
        return ", ".join(b for b in (self.dataset,
                                     f"vocabulary {self.vocab_size:,}" if self.vocab_size else "",
                                     f"context {self.n_ctx:,}" if self.n_ctx else "") if b)

    def describe(self) -> str:
        setup = self.setup()
        return f"{self.loss_unit} ({setup})" if setup else self.loss_unit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep_units(fit: dict[str, Any]) -> SweepUnits | None:
    """The units a fit file records (`sweep.loss_unit`, `vocab_size`, `n_ctx`, `dataset`);
    None for a CSV fit, which says nothing of them."""
    sweep = fit.get("sweep") or {}
    if not isinstance(sweep, dict) or not sweep.get("loss_unit"):
        return None
    def whole(key: str) -> int | None:
        value = sweep.get(key)
        return int(value) if isinstance(value, (int, float)) and value > 0 else None
    return SweepUnits(str(sweep["loss_unit"]), whole("vocab_size"), whole("n_ctx"),
                      str(sweep.get("dataset") or ""))


@dataclass(frozen=True)
class Calibration:
    """An Approach 3 fit of a team's sweep, with its bootstrap draws and the budgets it saw."""

    source: str
    law: laws.ParametricLaw
    draws: tuple[tuple[float, float, float, float, float], ...]  # (E, A, B, alpha, beta)
    level: float
    budgets_flops: tuple[float, ...]
    n_runs: int
    approach2_exponents: tuple[float, float] | None = None
    holdout: dict[str, Any] | None = None
    units: SweepUnits | None = None  # what the sweep's losses and N were measured with

    @property
    def loss_unit(self) -> str:
        """The calibrated loss's unit: the sweep's (nats per byte for a byte-level sweep)."""
        return self.units.loss_unit if self.units else laws.LITERATURE_LOSS_UNIT

    @property
    def max_budget_flops(self) -> float:
        return max(self.budgets_flops)

    def extrapolation_decades(self, compute_flops: float) -> float:
        """log10(C / largest swept budget): how far beyond the evidence the plan reaches."""
        return math.log10(compute_flops / self.max_budget_flops)

    def allocation(self, compute_flops: float) -> laws.Allocation:
        """N, D, loss at C from the fit, with bootstrap percentile intervals."""
        C = laws.check_compute(compute_flops)
        N, D = self.law.frontier(C)
        samples = [_frontier_at(draw, C) for draw in self.draws]
        def interval(i: int) -> tuple[float, float] | None:
            return percentile_interval([s[i] for s in samples], self.level) if samples else None
        return laws.Allocation(
            "calibrated", C, N, D, self.law.loss(N, D), "total", self.source,
            note=self.warning(C) or f"fitted on budgets up to {self.max_budget_flops:.2e} FLOPs",
            params_ci=interval(0), tokens_ci=interval(1), loss_ci=interval(2),
            interval_level=self.level if samples else None, loss_unit=self.loss_unit)

    def warning(self, compute_flops: float) -> str:
        """Empty within reach of the sweep; otherwise how many orders of magnitude it extrapolates."""
        decades = self.extrapolation_decades(compute_flops)
        if decades <= LONG_EXTRAPOLATION_DECADES:
            return ""
        loud = "VERY LONG extrapolation: " if decades > VERY_LONG_EXTRAPOLATION_DECADES else ""
        return (f"{loud}the budget is {decades:.1f} orders of magnitude beyond the largest swept "
                f"budget ({self.max_budget_flops:.2e} FLOPs); treat the calibrated N and D as a "
                "trend, not a measurement")

    def comparison(self, compute_flops: float) -> list[dict[str, Any]]:
        """Exponents a, b and N_opt(C) of the fit against each literature law, side by side."""
        mine = self.allocation(compute_flops)
        rows = [{"law": "calibrated (approach 3)", "a": self.law.a, "b": self.law.b,
                 "params": mine.params, "params_ratio": 1.0}]
        if self.approach2_exponents:
            a2, b2 = self.approach2_exponents
            rows.append({"law": "calibrated (approach 2)", "a": a2, "b": b2, "params": None,
                         "params_ratio": None})
        return rows + literature_rows(mine.params, compute_flops)

    def to_dict(self, compute_flops: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source, "law": self.law.to_dict(), "level": self.level,
            "bootstrap_draws": len(self.draws), "budgets_flops": list(self.budgets_flops),
            "max_budget_flops": self.max_budget_flops, "runs": self.n_runs,
            "approach2_exponents": list(self.approach2_exponents) if self.approach2_exponents else None,
            "holdout": self.holdout, "loss_unit": self.loss_unit,
            "units": self.units.to_dict() if self.units else None}
        if compute_flops is not None:
            out["extrapolation_decades"] = self.extrapolation_decades(compute_flops)
            out["warning"] = self.warning(compute_flops)
            out["comparison"] = self.comparison(compute_flops)
        return out


@dataclass(frozen=True)
class PlanCalibration:
    """The calibration a plan used, at the plan's budget: the fit and how far the budget lies
    from its evidence. `to_dict()` is the plan's `calibration` key."""

    calibration: Calibration
    compute_flops: float

    @property
    def extrapolation_decades(self) -> float:
        return self.calibration.extrapolation_decades(self.compute_flops)

    @property
    def warning(self) -> str:
        return self.calibration.warning(self.compute_flops)

    def comparison(self) -> list[dict[str, Any]]:
        return self.calibration.comparison(self.compute_flops)

    def to_dict(self) -> dict[str, Any]:
        return self.calibration.to_dict(self.compute_flops)


def _frontier_at(draw: Sequence[float], compute_flops: float) -> tuple[float, float, float]:
    E, A, B, alpha, beta = draw
    law = laws.ParametricLaw(E=E, A=A, B=B, alpha=alpha, beta=beta, source="bootstrap draw")
    N, D = law.frontier(compute_flops)
    return N, D, law.loss(N, D)


def percentile_interval(values: Sequence[float], level: float) -> tuple[float, float]:
    """The central `level` percentile interval (linear interpolation, like numpy's default)."""
    xs = sorted(v for v in values if math.isfinite(v))
    if not xs:
        raise BudgetError("no finite bootstrap values to form an interval")
    tail = (1.0 - level) / 2.0
    return _quantile(xs, tail), _quantile(xs, 1.0 - tail)


def _quantile(xs: Sequence[float], q: float) -> float:
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def calibration_from_fit(fit: dict[str, Any], source: str) -> Calibration:
    """Build a Calibration from a `budget fit --json` object (or the fit JSON logged to MLflow)."""
    check_schema(fit, source)
    a3 = fit.get("approach3")
    budgets = fit.get("sweep", {}).get("budgets_flops") or fit.get("input", {}).get("budgets_flops")
    if not budgets:
        raise BudgetError(f"{source} does not say which budgets were swept (budgets_flops)")
    if not isinstance(a3, dict) or not a3.get("success", False):
        why = (f"the Approach 3 fit did not converge ({a3.get('message') or 'no message'})"
               if isinstance(a3, dict) else "the fit has no Approach 3 "
               f"({fit.get('input', {}).get('skipped', {}).get('approach3') or 'not asked for'})")
        from budget.scaling.calibrated_frontier import frontier_calibration

        fallback = frontier_calibration(fit, source, budgets, why)
        if fallback is None:
            raise BudgetError(f"{source}: {why}, and no converged Approach 2 or 1 fit to fall back on; "
                              "run 'budget fit' with --approach all")
        return fallback
    law = laws.ParametricLaw(E=a3["E"], A=a3["A"], B=a3["B"], alpha=a3["alpha"], beta=a3["beta"],
                             source=f"fitted to {source} (Approach 3, Hoffmann et al. 2022 App. D.2)")
    draws = tuple(tuple(float(x) for x in d) for d in a3.get("bootstrap_draws") or ())
    a2 = fit.get("approach2")
    exps = (float(a2["a"]), float(a2["b"])) if isinstance(a2, dict) and "a" in a2 else None
    level = float((a3.get("bootstrap") or {}).get("level") or fit.get("input", {}).get("level", 0.95))
    return Calibration(source=source, law=law, draws=draws, level=level,  # type: ignore[arg-type]
                       budgets_flops=tuple(float(b) for b in budgets),
                       n_runs=int(fit.get("input", {}).get("points", 0)),
                       approach2_exponents=exps, holdout=finite_json(fit.get("holdout")),
                       units=sweep_units(fit))


def finite_json(x: Any) -> Any:
    """`x` with every NaN or infinity replaced by None (a fit file written before hold-out
    predictions said null for "not predicted" holds NaN, which strict JSON cannot carry)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: finite_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite_json(v) for v in x]
    return x


def check_schema(fit: dict[str, Any], source: str) -> None:
    """BudgetError in one line unless `fit` is kind FIT_KIND, schema_version FIT_SCHEMA_VERSION."""
    kind, version = fit.get("kind"), fit.get("schema_version")
    if kind == FIT_KIND and version == FIT_SCHEMA_VERSION and not isinstance(version, bool):
        return
    found = ("no kind/schema_version (an unversioned fit from an older 'budget fit')"
             if kind is None and version is None else f"kind {kind!r}, schema_version {version!r}")
    raise BudgetError(f"{source} has {found}; this version reads kind {FIT_KIND!r} schema_version "
                      f"{FIT_SCHEMA_VERSION}: re-run 'budget fit ... --json' to write one")


def load_calibration_file(path: str | Path) -> Calibration:
    """A fit JSON saved with `budget fit --json > fit.json` (CSV or experiment fits alike)."""
    path = Path(path)
    if not path.is_file():
        raise BudgetError(f"--calibrate {str(path)!r}: no such fit JSON file")
    try:
        fit = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BudgetError(f"--calibrate {str(path)!r} is not a readable fit JSON: {exc}") from None
    except RecursionError:
        raise BudgetError(f"--calibrate {str(path)!r} nests objects too deeply to be a fit JSON") from None
    if not isinstance(fit, dict):
        raise BudgetError(f"--calibrate {str(path)!r} is not a fit JSON object")
    return calibration_from_fit(fit, f"fit file {path.name}")


def is_fit_file(name: str) -> bool:
    """--calibrate takes a JSON file path or an MLflow experiment name."""
    return name.endswith(".json") or Path(name).is_file()
