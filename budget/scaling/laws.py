"""Published scaling laws and their compute-optimal allocations. Every allocation has 6 N D = C.

The law registry `LAWS` is the one place a law is described: adding a law is one `Law` entry
(id, one-line reading, which N it counts, constants each with its source, frontier, loss or
none). `budget plan`, `budget report`, the `--law` choices and the calibrated law's comparison
table all read it. Law ids:
- `epoch`: Besiroglu et al. 2024 (arXiv:2404.10102) refit of Approach 3 on Hoffmann's own data
  (Huber MLE; the raw fitted vector of their analysis notebook). N is total parameters.
- `chinchilla`: Hoffmann et al. 2022 (arXiv:2203.15556) Approach 3, eq. 10 constants as printed
  (rounded), frontier in closed form (eq. 4). N is total parameters.
- `chinchilla-unrounded`: the same Approach 3 fit with the unrounded (TeX source) constants; it
  reproduces Hoffmann's Table A3 Approach 3 column within about 7%, where the rounded eq. 10
  constants fall 18-30% below it. N is total parameters.
- `tokens-per-param`: D = 20 N (Hoffmann et al. 2022 Table 3: ~20 tokens per parameter at the
  optimum), so C = 6 N (20 N) and N = sqrt(C / 120).
- `kaplan`: Kaplan et al. 2020 (arXiv:2001.08361) N_opt = 1.3e9 C_min^0.73 with C_min in PF-days
  (Table 6 / Fig. 14). C_min is the compute at batch B << B_crit; training at the critical batch
  costs C = 2 C_min (eq. 5.5), so N_opt is evaluated at C_min = C / 2: 4.68B non-embedding
  parameters at 1e21 FLOPs, as Hoffmann et al. 2022 App. D.4 read it. D = C / (6 N).

Losses are in nats per token on each paper's own data (MassiveText for Chinchilla and Epoch,
WebText2 for Kaplan): they are not comparable with each other or with your data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

from budget.errors import BudgetError

PF_DAY_FLOPS = 1e15 * 24 * 3600  # 1 PF-day = 8.64e19 FLOPs (Kaplan et al. 2020 §1.3)
# the literature laws' losses: nats per token of each paper's own tokenizer and data
LITERATURE_LOSS_UNIT = "nats per token"
FLOPS_PER_PARAM_TOKEN = 6.0  # C = 6 N D: 2 forward + 4 backward (Kaplan et al. 2020 §2.1)


@dataclass(frozen=True)
class ParametricLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022 eq. 2) with its source."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str

    @property
    def a(self) -> float:
        """N_opt exponent a = beta / (alpha + beta) (Hoffmann et al. 2022 eq. 4)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """D_opt exponent b = alpha / (alpha + beta) (Hoffmann et al. 2022 eq. 4)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        """G = (alpha A / (beta B))^(1 / (alpha + beta)) (Hoffmann et al. 2022 eq. 4)."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def loss(self, params: float, tokens: float) -> float:
        """Predicted loss E + A N^-alpha + B D^-beta (nats/token on the fitting data)."""
        return self.E + self.A * params ** -self.alpha + self.B * tokens ** -self.beta

    def frontier(self, compute_flops: float) -> tuple[float, float]:
        """(N_opt, D_opt) = (G (C/6)^a, G^-1 (C/6)^b), the minimiser of L subject to 6ND = C."""
        scaled = compute_flops / FLOPS_PER_PARAM_TOKEN
        return self.G * scaled ** self.a, scaled ** self.b / self.G

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(a=self.a, b=self.b, G=self.G)
        return out


# Hoffmann et al. 2022 eq. 10 (Approach 3), as printed in the paper.
CHINCHILLA = ParametricLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
                           source="Hoffmann et al. 2022, arXiv:2203.15556, eq. 10 and eq. 4")
# Hoffmann et al. 2022 eq. 10 unrounded: (log A, log B, log E, alpha, beta) = (6.0073404, 6.0179186,
# 0.5267228, 0.33917084, 0.2849083), the TeX-source values in epoch-research/analyzing-chinchilla
# data_analysis.ipynb (Besiroglu et al. 2024: the body's eq. 10 rounds these).
CHINCHILLA_UNROUNDED = ParametricLaw(
    E=math.exp(0.5267228), A=math.exp(6.0073404), B=math.exp(6.0179186), alpha=0.33917084,
    beta=0.2849083, source="Hoffmann et al. 2022, arXiv:2203.15556, eq. 10 unrounded (TeX source "
                           "values, via Besiroglu et al. 2024's notebook) and eq. 4")
# Besiroglu et al. 2024: raw fitted vector (log A, log B, log E, alpha, beta) =
# (6.17795598, 7.64273236, 0.59711196, 0.34781303, 0.36585412) from epoch-research/analyzing-chinchilla
# data_analysis.ipynb; the paper rounds these (A 482.01, B 2085.43, E 1.82, alpha 0.3478, beta 0.3658).
EPOCH = ParametricLaw(E=math.exp(0.59711196), A=math.exp(6.17795598), B=math.exp(7.64273236),
                      alpha=0.34781303, beta=0.36585412,
                      source="Besiroglu et al. 2024, arXiv:2404.10102, Approach 3 refit (Huber MLE)")

TOKENS_PER_PARAM = 20.0  # Hoffmann et al. 2022 Table 3 (~20 tokens/parameter; 70B on 1.4T tokens)

KAPLAN_N_COEF = 1.3e9  # N_opt = 1.3e9 * C_min^0.73, C_min in PF-days (Kaplan et al. 2020 Table 6, Fig. 14)
KAPLAN_N_EXP = 0.73  # (Kaplan et al. 2020 eq. 6.1, Table 6)
KAPLAN_C_PER_C_MIN = 2.0  # at B = B_crit, C = 2 C_min (Kaplan et al. 2020 eq. 5.5; eq. 6.7's D = 2 C_min / 6N)
KAPLAN_C_C_MIN_PF_DAYS = 3.1e8  # L(C_min) = (C_c^min / C_min)^alpha_C^min (Kaplan et al. 2020 eq. 1.3, Table 5)
KAPLAN_ALPHA_C_MIN = 0.050  # (Kaplan et al. 2020 eq. 1.3, Table 5)
# L(N, D) of eq. 1.5 uses the joint fit of §4.2 Table 2, not the single-variable fits of eq. 1.1/1.2
# (Table 5: N_c 8.8e13, alpha_N 0.076; D_c 5.4e13, alpha_D 0.095)
KAPLAN_N_C, KAPLAN_ALPHA_N = 6.4e13, 0.076  # non-embedding params (Kaplan et al. 2020 Table 2)
KAPLAN_D_C, KAPLAN_ALPHA_D = 1.8e13, 0.103  # tokens (Kaplan et al. 2020 Table 2)

DEEPSEEK_LR_COEF, DEEPSEEK_LR_EXP = 0.3118, -0.1250  # eta_opt = 0.3118 C^-0.1250 (DeepSeek LLM 2024 eq. 1)
DEEPSEEK_BATCH_COEF, DEEPSEEK_BATCH_EXP = 0.2920, 0.3271  # B_opt = 0.2920 C^0.3271 tokens (eq. 1)


@dataclass(frozen=True)
class Allocation:
    """A compute-optimal (N, D) under one law; 6 N D = C by construction."""

    law: str
    compute_flops: float
    params: float
    tokens: float
    loss: float | None
    params_count: str  # "total" or "non_embedding": which N the law was fitted on
    source: str
    note: str = ""
    # bootstrap percentile intervals (low, high) at `interval_level`: only for a fitted law
    params_ci: tuple[float, float] | None = None
    tokens_ci: tuple[float, float] | None = None
    loss_ci: tuple[float, float] | None = None
    interval_level: float | None = None
    loss_unit: str = LITERATURE_LOSS_UNIT  # a calibrated law: its sweep's (nats per byte...)

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens_per_param"] = self.tokens_per_param
        return out


def own_unit_losses(allocations: Sequence[Allocation]) -> list[Allocation]:
    """The allocations whose loss is in another unit than the literature's nats per token (a
    calibrated law fitted on a byte-level sweep: nats per byte)."""
    return [a for a in allocations if a.loss is not None and a.loss_unit != LITERATURE_LOSS_UNIT]


# The smallest budget the planner takes: one floating-point operation. Below it nothing is
# trained, and the laws' arithmetic underflows (C = 1e-320 made N_opt 0.0, a division by zero).
MIN_COMPUTE_FLOPS = 1.0


def check_compute(compute_flops: float) -> float:
    """A compute budget must be a finite number of at least one FLOP."""
    if isinstance(compute_flops, bool) or not isinstance(compute_flops, (int, float)) \
            or not math.isfinite(compute_flops) or compute_flops <= 0:
        raise BudgetError(f"compute budget {compute_flops!r} FLOPs must be a finite number > 0")
    if compute_flops < MIN_COMPUTE_FLOPS:
        raise BudgetError(f"compute budget {compute_flops:.3g} FLOPs is less than one floating-point "
                          "operation: nothing can be trained on it; give a budget of at least 1 FLOP")
    return float(compute_flops)


def kaplan_c_min(compute_flops: float) -> float:
    """C_min = C / 2: the minimum compute of a run trained at the critical batch (Kaplan eq. 5.5)."""
    return compute_flops / KAPLAN_C_PER_C_MIN


def kaplan_optimal_params(compute_flops: float) -> float:
    """N_opt = 1.3e9 (C_min / PF-day)^0.73 non-embedding parameters, C_min = C / 2 (Kaplan et al.
    2020 Table 6 with eq. 5.5; Hoffmann et al. 2022 App. D.4: 4.68B at C = 1e21 FLOPs)."""
    return KAPLAN_N_COEF * (kaplan_c_min(compute_flops) / PF_DAY_FLOPS) ** KAPLAN_N_EXP


def kaplan_loss(compute_flops: float) -> float:
    """L(C_min) = (3.1e8 / (C_min / PF-day))^0.050 nats/token, C_min = C / 2 (Kaplan eq. 1.3)."""
    return (KAPLAN_C_C_MIN_PF_DAYS / (kaplan_c_min(compute_flops) / PF_DAY_FLOPS)) ** KAPLAN_ALPHA_C_MIN


def kaplan_loss_nd(params: float, tokens: float) -> float:
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D, N non-embedding (Kaplan eq. 1.5)."""
    return ((KAPLAN_N_C / params) ** (KAPLAN_ALPHA_N / KAPLAN_ALPHA_D)
            + KAPLAN_D_C / tokens) ** KAPLAN_ALPHA_D


def _tokens_per_param_frontier(compute_flops: float) -> tuple[float, float]:
    N = math.sqrt(compute_flops / (FLOPS_PER_PARAM_TOKEN * TOKENS_PER_PARAM))
    return N, TOKENS_PER_PARAM * N


def _kaplan_frontier(compute_flops: float) -> tuple[float, float]:
    N = kaplan_optimal_params(compute_flops)
    return N, compute_flops / (FLOPS_PER_PARAM_TOKEN * N)


@dataclass(frozen=True)
class Constant:
    """One number a law uses, with where it comes from."""

    name: str
    value: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Law:
    """One published law: adding a law to the planner is one entry in LAWS."""

    id: str
    title: str  # one line saying which reading this is (printed under the plan's table)
    params_count: str  # "total" or "non_embedding": which N the law was fitted on
    source: str
    constants: tuple[Constant, ...]
    exponents: tuple[float, float]  # (a, b) with N_opt ~ C^a, D_opt ~ C^b
    frontier: Callable[[float], tuple[float, float]]  # C -> (N_opt, D_opt), 6 N D = C
    optimal_loss: Callable[[float], float] | None  # C -> predicted loss at the optimum; None: none
    loss: Callable[[float, float], float] | None = None  # L(N, D) where the paper gives one
    note: str = ""  # carried into every Allocation of this law

    def allocation(self, compute_flops: float) -> Allocation:
        """The compute-optimal (N, D) and loss of C under this law."""
        C = check_compute(compute_flops)
        N, D = self.frontier(C)
        loss = None if self.optimal_loss is None else self.optimal_loss(C)
        return Allocation(self.id, C, N, D, loss, self.params_count, self.source, self.note)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "params_count": self.params_count,
                "source": self.source, "constants": [c.to_dict() for c in self.constants],
                "exponents": list(self.exponents), "has_loss": self.optimal_loss is not None,
                "note": self.note}


def parametric(law_id: str, fit: ParametricLaw, title: str, constants_source: str,
               note: str = "") -> Law:
    """A Law from an L = E + A/N^alpha + B/D^beta fit (frontier: Hoffmann et al. 2022 eq. 4)."""
    constants = tuple(Constant(name, getattr(fit, name), constants_source)
                      for name in ("E", "A", "B", "alpha", "beta"))
    return Law(law_id, title, "total", fit.source, constants, (fit.a, fit.b), fit.frontier,
               lambda C: fit.loss(*fit.frontier(C)), fit.loss, note)


KAPLAN_TABLE5 = "Kaplan et al. 2020 Table 5"
KAPLAN_TABLE2 = "Kaplan et al. 2020 §4.2 Table 2 (the L(N, D) fit of eq. 1.5)"
LAWS: dict[str, Law] = {law.id: law for law in (
    parametric("epoch", EPOCH, "Besiroglu et al. 2024 refit of Chinchilla's Approach 3 data",
               "Besiroglu et al. 2024 (raw fitted vector of their notebook)"),
    parametric("chinchilla", CHINCHILLA, "Hoffmann et al. 2022 eq. 10 as printed (rounded)",
               "Hoffmann et al. 2022 eq. 10", note="eq. 10 constants as printed (rounded)"),
    parametric("chinchilla-unrounded", CHINCHILLA_UNROUNDED,
               "the same fit unrounded (TeX source): matches Table A3 within ~7%",
               "Hoffmann et al. 2022 eq. 10, TeX source values (Besiroglu et al. 2024 notebook)",
               note="eq. 10 unrounded (TeX source values); reproduces Table A3 within ~7%"),
    Law("tokens-per-param", "rule of thumb D = 20 N (Hoffmann et al. 2022 Table 3)", "total",
        "Hoffmann et al. 2022, arXiv:2203.15556, Table 3 (D = 20 N)",
        (Constant("tokens_per_param", TOKENS_PER_PARAM, "Hoffmann et al. 2022 Table 3"),),
        (0.5, 0.5), _tokens_per_param_frontier, None, note="a rule of thumb: no loss prediction"),
    Law("kaplan", "Kaplan et al. 2020 N_opt(C_min), C = 2 C_min; N non-embedding", "non_embedding",
        "Kaplan et al. 2020, arXiv:2001.08361, Table 6 / Fig. 14 (N_opt), eq. 5.5 (C = 2 C_min), "
        "eq. 1.3 (loss)",
        (Constant("N_opt coefficient", KAPLAN_N_COEF, "Kaplan et al. 2020 Table 6"),
         Constant("N_opt exponent", KAPLAN_N_EXP, "Kaplan et al. 2020 eq. 6.1, Table 6"),
         Constant("C / C_min", KAPLAN_C_PER_C_MIN, "Kaplan et al. 2020 eq. 5.5 at B = B_crit"),
         Constant("C_c^min (PF-days)", KAPLAN_C_C_MIN_PF_DAYS, KAPLAN_TABLE5),
         Constant("alpha_C^min", KAPLAN_ALPHA_C_MIN, KAPLAN_TABLE5),
         Constant("N_c", KAPLAN_N_C, KAPLAN_TABLE2), Constant("alpha_N", KAPLAN_ALPHA_N, KAPLAN_TABLE2),
         Constant("D_c", KAPLAN_D_C, KAPLAN_TABLE2), Constant("alpha_D", KAPLAN_ALPHA_D, KAPLAN_TABLE2)),
        (KAPLAN_N_EXP, 1.0 - KAPLAN_N_EXP), _kaplan_frontier, kaplan_loss, kaplan_loss_nd,
        note="N is non-embedding, at C_min = C/2 (critical batch); loss is L(C_min) on WebText2 "
             "(eq. 1.3)"),
)}

LAW_IDS = tuple(LAWS)
RECOMMENDED_LAW = "epoch"
RECOMMENDED_REASON = (
    "epoch: Besiroglu et al. 2024 refit Chinchilla's own data and found the printed eq. 10 fit "
    "was stopped early; their law agrees with Chinchilla's Approaches 1 and 2 (N and D grow "
    "about equally with C, ~20 tokens/param), while kaplan's 0.73 exponent comes from counting "
    "non-embedding parameters at small scale (Pearce & Song 2024; Porian et al. 2024)")
LAW_SOURCES = {law_id: law.source for law_id, law in LAWS.items()}


def get_law(law_id: str) -> Law:
    """The registry entry of `law_id`; BudgetError naming the choices otherwise."""
    try:
        return LAWS[law_id]
    except (KeyError, TypeError):
        raise BudgetError(f"unknown scaling law {law_id!r}; choose one of {', '.join(LAW_IDS)}") from None


def compute_optimal(law: str, compute_flops: float) -> Allocation:
    """The compute-optimal allocation of C under `law` (one of LAW_IDS)."""
    C = check_compute(compute_flops)
    return get_law(law).allocation(C)


def all_allocations(compute_flops: float) -> list[Allocation]:
    """One allocation per literature law, in LAW_IDS order."""
    return [compute_optimal(law, compute_flops) for law in LAW_IDS]


@dataclass(frozen=True)
class Hyperparameters:
    """DeepSeek LLM eq. 1 batch size and learning rate for a compute budget."""

    compute_flops: float
    batch_tokens: float
    learning_rate: float
    batch_sequences: float
    seq_len: int
    source: str = ("DeepSeek-AI 2024, arXiv:2401.02954, eq. 1 (fitted on 1e17-2e19 FLOPs, "
                   "their data, architecture and AdamW setup)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def deepseek_hyperparameters(compute_flops: float, seq_len: int = 2048) -> Hyperparameters:
    """B_opt = 0.2920 C^0.3271 tokens, eta_opt = 0.3118 C^-0.1250 (DeepSeek LLM eq. 1)."""
    C = check_compute(compute_flops)
    batch = DEEPSEEK_BATCH_COEF * C ** DEEPSEEK_BATCH_EXP
    lr = DEEPSEEK_LR_COEF * C ** DEEPSEEK_LR_EXP
    return Hyperparameters(C, batch, lr, batch / seq_len, seq_len)
