"""Plans for a model you name: each law's reading of (N, D), and each law's optimal D for N.

For a fixed N trained on D tokens (C = 6 N D): tokens per parameter, each law's predicted loss at
(N, D) beside its loss at its own compute-optimal (N*, D*) for the same C, and the over-training
factor D / D*. Without D: each law's compute-optimal D for that N (the C whose N_opt is N).

Kaplan's loss at (N, D) is eq. 1.5 of Kaplan et al. 2020 with N non-embedding; the other laws'
is Hoffmann et al. 2022 eq. 2 with N total. Losses compare within a law, never across laws.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from budget.errors import BudgetError
from budget.scaling import laws

kaplan_loss_nd = laws.kaplan_loss_nd  # Kaplan et al. 2020 eq. 1.5 with the Table 2 fit
LAW_COUNTS = {law.id: law.params_count for law in laws.LAWS.values()}  # which N each law counts


def law_loss(law: str, params: float, tokens: float) -> float | None:
    """A law's predicted loss at (N, D), N counted as the law counts it; None for a rule of thumb."""
    if law == "kaplan":
        return kaplan_loss_nd(params, tokens)
    entry = laws.LAWS.get(law)
    return None if entry is None or entry.loss is None else entry.loss(params, tokens)


@dataclass(frozen=True)
class LawReading:
    """One law's view of training N parameters on D tokens at C = 6 N D."""

    law: str
    params_count: str
    params: float  # N as this law counts it
    loss: float | None  # at (N, D)
    optimal_params: float  # N* of the same C
    optimal_tokens: float  # D*
    optimal_loss: float | None  # at (N*, D*), by the same formula
    overtraining: float  # D / D*

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OptimalTokens:
    """A law's compute-optimal D for a fixed N, the C it implies and what it costs."""

    law: str
    tokens: float
    compute_flops: float  # 6 N D as the law counts N
    training_flops: float  # the model's real training FLOPs per token x D
    gpu_hours: float
    cost_usd: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def readings(params_total: float, params_non_embedding: float, tokens: float,
             compute_flops: float) -> tuple[LawReading, ...]:
    """Every literature law's reading of (N, D) against its own optimum at the same C."""
    out = []
    for law in laws.LAW_IDS:
        n = params_total if LAW_COUNTS[law] == "total" else params_non_embedding
        best = laws.compute_optimal(law, compute_flops)
        out.append(LawReading(
            law=law, params_count=LAW_COUNTS[law], params=n, loss=law_loss(law, n, tokens),
            optimal_params=best.params, optimal_tokens=best.tokens,
            optimal_loss=law_loss(law, best.params, best.tokens),
            overtraining=tokens / best.tokens))
    return tuple(out)


def optimal_compute_for_params(law: str, params: float) -> float:
    """The C whose compute-optimal N under `law` is `params` (N counted as the law counts it);
    found by bisection in log C, so it follows whatever reading `laws.compute_optimal` uses."""
    if not math.isfinite(params) or params <= 0:
        raise BudgetError(f"parameter count {params!r} must be a finite number > 0")
    lo, hi = math.log(1e6), math.log(1e40)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if laws.compute_optimal(law, math.exp(mid)).params < params:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def optimal_tokens(law: str, params: float) -> float:
    """The law's compute-optimal D for N (N counted as the law counts it)."""
    return laws.compute_optimal(law, optimal_compute_for_params(law, params)).tokens


@dataclass(frozen=True)
class FixedModel:
    """The fixed-model part of a plan."""

    name: str
    params: float  # total N the plan keeps exactly
    params_non_embedding: float
    tokens: float
    tokens_given: bool  # False: D is the recommended law's optimal D for N
    compute_flops: float
    readings: tuple[LawReading, ...]
    alternative: laws.Allocation  # the recommended law's compute-optimal (N*, D*) at the same C
    optimal_tokens: tuple[OptimalTokens, ...] = ()
    note: str = ""

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params,
                "params_non_embedding": self.params_non_embedding, "tokens": self.tokens,
                "tokens_given": self.tokens_given, "tokens_per_param": self.tokens_per_param,
                "compute_flops": self.compute_flops,
                "readings": [r.to_dict() for r in self.readings],
                "alternative": self.alternative.to_dict(),
                "optimal_tokens": [o.to_dict() for o in self.optimal_tokens], "note": self.note}
