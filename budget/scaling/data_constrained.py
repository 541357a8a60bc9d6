"""Data-constrained scaling (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models",
arXiv:2305.16264): what repeating a capped set of U unique tokens is worth.

The law replaces D and N in the Chinchilla form with effective values (their eq. 5 and 6):

    L = E + A / N'^alpha + B / D'^beta
    D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),   R_D = D / U_D - 1 (repetitions: epochs - 1)
    N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),   U_N = min(N, N_opt(U_D)),  R_N = N / U_N - 1

with U_D = min(U, D) and N_opt(U_D) the compute-optimal size for U_D tokens. An epoch after the
first is worth exp(-R_D / R_D*) of a fresh one, so D' never exceeds (1 + R_D*) U_D: past that,
more passes over the same text buy (almost) nothing. Constants and code: the "Parametric Fit"
section of huggingface/datablations README.md (the authors' repository), fitted on C4.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from budget.errors import BudgetError
from budget.scaling import laws
from budget.scaling.search import minimize_log

# (a, b, e, alpha, beta, R_D*, R_N*) = (6.255414, 7.3049974, 0.6254804, 0.3526596, 0.3526596,
# 15.387756, 5.309743): huggingface/datablations README.md "Parametric Fit" (Muennighoff et al. 2023)
MUENNIGHOFF_C4 = laws.ParametricLaw(
    E=math.exp(0.6254804), A=math.exp(6.255414), B=math.exp(7.3049974),
    alpha=0.3526596, beta=0.3526596,
    source="Muennighoff et al. 2023, arXiv:2305.16264, C4 fit (huggingface/datablations README)")
R_D_STAR = 15.387756  # repetitions at which an extra epoch is worth 1/e of fresh data (datablations README)
R_N_STAR = 5.309743  # the same decay for parameters beyond N_opt(U) (datablations README)
# "up to 4 epochs of repeated data yields negligible changes to loss compared to having unique
# data" (Muennighoff et al. 2023, abstract)
NEGLIGIBLE_EPOCHS = 4.0
# Past 1 + R_D* epochs each further epoch is worth less than 1/e (37%) of fresh data and the
# effective data is within 1/e of its ceiling (1 + R_D*) U: our reading of where returns vanish.
VANISHING_EPOCHS = 1.0 + R_D_STAR
SEARCH_SPAN = 100.0  # the capped optimum is searched over N_0 / 100 .. 100 N_0
SOURCE = MUENNIGHOFF_C4.source


def _check(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise BudgetError(f"{name} {value!r} must be a finite number > 0")
    return float(value)


def effective_data(tokens: np.ndarray | float, unique_tokens: float) -> np.ndarray:
    """D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)), U_D = min(U, D), R_D = D / U_D - 1 (eq. 5)."""
    d = np.asarray(tokens, dtype=float)
    u = np.minimum(unique_tokens, d)
    repeats = np.maximum(d / u - 1.0, 0.0)
    return u + u * R_D_STAR * (1.0 - np.exp(-repeats / R_D_STAR))


def epochs_worth(epochs: float) -> float:
    """How many epochs of fresh data `epochs` passes over the same data are worth: D' / U."""
    return float(effective_data(_check("epochs", epochs), 1.0))


def optimal_params_for_tokens(law: laws.ParametricLaw, tokens: np.ndarray | float) -> np.ndarray:
    """N_opt(D) = (D G)^(beta/alpha) G: the frontier size for D tokens (datablations `D_to_N`)."""
    return (np.asarray(tokens, dtype=float) * law.G) ** (law.beta / law.alpha) * law.G


def effective_params(params: np.ndarray | float, tokens: np.ndarray | float,
                     unique_tokens: float, law: laws.ParametricLaw = MUENNIGHOFF_C4) -> np.ndarray:
    """N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)), U_N = min(N, N_opt(U_D)), R_N = N / U_N - 1 (eq. 6)."""
    n = np.asarray(params, dtype=float)
    u_d = np.minimum(unique_tokens, np.asarray(tokens, dtype=float))
    u_n = np.minimum(n, optimal_params_for_tokens(law, u_d))
    repeats = np.maximum(n / u_n - 1.0, 0.0)
    return u_n + u_n * R_N_STAR * (1.0 - np.exp(-repeats / R_N_STAR))


def loss(params: np.ndarray | float, tokens: np.ndarray | float, unique_tokens: float,
         law: laws.ParametricLaw = MUENNIGHOFF_C4) -> np.ndarray:
    """L = E + A / N'^alpha + B / D'^beta (datablations `scaling_law`, with U_D = min(U, D))."""
    n_eff = effective_params(params, tokens, unique_tokens, law)
    d_eff = effective_data(tokens, unique_tokens)
    return law.E + law.A / n_eff ** law.alpha + law.B / d_eff ** law.beta


def optimal_allocation(compute_flops: float, unique_tokens: float | None,
                       law: laws.ParametricLaw = MUENNIGHOFF_C4) -> tuple[float, float, float]:
    """(N, D, L) minimising the data-constrained loss on 6 N D = C (U None: no cap, the eq.-4
    frontier). A bracketed search over N; the authors' README scans D = D_0 s for s in [1/3, 3]."""
    C = laws.check_compute(compute_flops)
    n0, d0 = law.frontier(C)
    if unique_tokens is None:
        return n0, d0, law.loss(n0, d0)
    cap = _check("unique tokens", unique_tokens)

    def along_isoflop(params: np.ndarray) -> np.ndarray:
        return loss(params, C / (laws.FLOPS_PER_PARAM_TOKEN * params), cap, law)

    n, value = minimize_log(along_isoflop, n0 / SEARCH_SPAN, n0 * SEARCH_SPAN)
    return n, C / (laws.FLOPS_PER_PARAM_TOKEN * n), value


@dataclass(frozen=True)
class Repetition:
    """One law's allocation seen through the cap: epochs over the U unique tokens and their worth."""

    law: str
    params: float
    tokens: float
    epochs: float
    effective_epochs: float  # D' / U: fresh-data epochs the repeated ones are worth

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DataConstrainedPlan:
    """What a cap of U unique tokens does to a plan at compute C under Muennighoff et al.'s law."""

    unique_tokens: float
    compute_flops: float
    repetitions: tuple[Repetition, ...]  # every law's allocation of the plan
    at_plan_law: str  # the allocation whose loss is judged below (the plan's chosen law)
    at_plan_loss_capped: float
    at_plan_loss_unique: float  # the same N, D with all-unique data
    capped_optimum: Repetition  # the compute-optimal allocation under the cap (this law)
    capped_optimum_loss: float
    unconstrained_optimum: Repetition  # the same law's optimum with no cap
    unconstrained_optimum_loss: float
    warnings: tuple[str, ...] = ()  # allocations past VANISHING_EPOCHS
    notes: tuple[str, ...] = ()  # allocations past NEGLIGIBLE_EPOCHS
    source: str = SOURCE
    r_d_star: float = R_D_STAR
    r_n_star: float = R_N_STAR

    @property
    def loss_lost_to_repetition(self) -> float:
        return self.at_plan_loss_capped - self.at_plan_loss_unique

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(repetitions=[r.to_dict() for r in self.repetitions],
                   capped_optimum=self.capped_optimum.to_dict(),
                   unconstrained_optimum=self.unconstrained_optimum.to_dict(),
                   loss_lost_to_repetition=self.loss_lost_to_repetition,
                   warnings=list(self.warnings), notes=list(self.notes))
        return out


def repetition(law: str, params: float, tokens: float, unique_tokens: float) -> Repetition:
    epochs = tokens / unique_tokens
    worth = float(effective_data(tokens, unique_tokens)) / unique_tokens
    return Repetition(law, params, tokens, epochs, worth)


def repetition_warnings(rows: tuple[Repetition, ...]) -> tuple[list[str], list[str]]:
    """(warnings, notes): a warning for each allocation past VANISHING_EPOCHS, a note for each
    past NEGLIGIBLE_EPOCHS."""
    warnings, notes = [], []
    for r in rows:
        if r.epochs > VANISHING_EPOCHS:
            warnings.append(f"{r.law}: {r.epochs:.1f} epochs over the unique data, past "
                       f"{VANISHING_EPOCHS:.1f} (1 + R_D*) where returns vanish: the repeats are "
                       f"worth {r.effective_epochs:.1f} fresh epochs and can never exceed "
                       f"{VANISHING_EPOCHS:.1f}, so a loss that assumes fresh data is out of "
                       f"reach: find more unique data or train on fewer tokens")
        elif r.epochs > NEGLIGIBLE_EPOCHS:
            notes.append(f"{r.law}: {r.epochs:.1f} epochs, past the {NEGLIGIBLE_EPOCHS:g} that cost "
                       f"almost nothing (Muennighoff et al. 2023): they are worth "
                       f"{r.effective_epochs:.1f} fresh epochs")
    return warnings, notes


def data_constrained_plan(compute_flops: float, unique_tokens: float,
                          allocations: tuple[tuple[str, float, float], ...],
                          chosen: str) -> DataConstrainedPlan:
    """Epochs of every (law, N, D) of a plan under a cap U, the loss the chosen one loses to
    repetition, and the compute-optimal allocation under the cap (all on Muennighoff's C4 law)."""
    U = _check("unique tokens", unique_tokens)
    C = laws.check_compute(compute_flops)
    rows = tuple(repetition(law, n, d, U) for law, n, d in allocations)
    at = next(r for r in rows if r.law == chosen)
    n_c, d_c, l_c = optimal_allocation(C, U)
    n_u, d_u, l_u = optimal_allocation(C, None)
    capped = repetition("muennighoff (capped)", n_c, d_c, U)
    free = repetition("muennighoff (no cap)", n_u, d_u, U)
    warnings, notes = repetition_warnings(rows + (capped,))
    return DataConstrainedPlan(
        unique_tokens=U, compute_flops=C, repetitions=rows, at_plan_law=chosen,
        at_plan_loss_capped=float(loss(at.params, at.tokens, U)),
        at_plan_loss_unique=float(loss(at.params, at.tokens, max(U, at.tokens))),
        capped_optimum=capped, capped_optimum_loss=l_c,
        unconstrained_optimum=free, unconstrained_optimum_loss=l_u,
        warnings=tuple(warnings), notes=tuple(notes))
