"""Published scaling laws and their compute-optimal allocations. Every allocation has 6 N D = C.

Law ids (each constant carries its source beside it):
- `chinchilla`: Hoffmann et al. 2022 (arXiv:2203.15556) Approach 3, eq. 10 constants as printed,
  frontier in closed form (eq. 4). N is total parameters.
- `epoch`: Besiroglu et al. 2024 (arXiv:2404.10102) refit of Approach 3 on Hoffmann's own data
  (Huber MLE; the raw fitted vector of their analysis notebook). N is total parameters.
- `tokens-per-param`: D = 20 N (Hoffmann et al. 2022 Table 3: ~20 tokens per parameter at the
  optimum), so C = 6 N (20 N) and N = sqrt(C / 120).
- `kaplan`: Kaplan et al. 2020 (arXiv:2001.08361) N_opt = 1.3e9 C^0.73 with C in PF-days
  (Table 6 / Fig. 14); N is NON-embedding parameters; D = C / (6 N).

Losses are in nats per token on each paper's own data (MassiveText for Chinchilla and Epoch,
WebText2 for Kaplan): they are not comparable with each other or with your data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from budget.errors import BudgetError

PF_DAY_FLOPS = 1e15 * 24 * 3600  # 1 PF-day = 8.64e19 FLOPs (Kaplan et al. 2020 §1.3)
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
# Besiroglu et al. 2024: raw fitted vector (log A, log B, log E, alpha, beta) =
# (6.17795598, 7.64273236, 0.59711196, 0.34781303, 0.36585412) from epoch-research/analyzing-chinchilla
# data_analysis.ipynb; the paper rounds these (A 482.01, B 2085.43, E 1.82, alpha 0.3478, beta 0.3658).
EPOCH = ParametricLaw(E=math.exp(0.59711196), A=math.exp(6.17795598), B=math.exp(7.64273236),
                      alpha=0.34781303, beta=0.36585412,
                      source="Besiroglu et al. 2024, arXiv:2404.10102, Approach 3 refit (Huber MLE)")

TOKENS_PER_PARAM = 20.0  # Hoffmann et al. 2022 Table 3 (~20 tokens/parameter; 70B on 1.4T tokens)

KAPLAN_N_COEF = 1.3e9  # N_opt = 1.3e9 * C_min^0.73, C_min in PF-days (Kaplan et al. 2020 Table 6, Fig. 14)
KAPLAN_N_EXP = 0.73  # (Kaplan et al. 2020 eq. 6.1, Table 6)
KAPLAN_C_C_MIN_PF_DAYS = 3.1e8  # L(C_min) = (C_c^min / C_min)^alpha_C^min (Kaplan et al. 2020 eq. 1.3, Table 5)
KAPLAN_ALPHA_C_MIN = 0.050  # (Kaplan et al. 2020 eq. 1.3, Table 5)

DEEPSEEK_LR_COEF, DEEPSEEK_LR_EXP = 0.3118, -0.1250  # eta_opt = 0.3118 C^-0.1250 (DeepSeek LLM 2024 eq. 1)
DEEPSEEK_BATCH_COEF, DEEPSEEK_BATCH_EXP = 0.2920, 0.3271  # B_opt = 0.2920 C^0.3271 tokens (eq. 1)

LAW_IDS = ("epoch", "chinchilla", "tokens-per-param", "kaplan")
RECOMMENDED_LAW = "epoch"
RECOMMENDED_REASON = (
    "epoch: Besiroglu et al. 2024 refit Chinchilla's own data and found the printed eq. 10 fit "
    "was stopped early; their law agrees with Chinchilla's Approaches 1 and 2 (N and D grow "
    "about equally with C, ~20 tokens/param), while kaplan's 0.73 exponent comes from counting "
    "non-embedding parameters at small scale (Pearce & Song 2024; Porian et al. 2024)")

LAW_SOURCES = {
    "chinchilla": CHINCHILLA.source,
    "epoch": EPOCH.source,
    "tokens-per-param": "Hoffmann et al. 2022, arXiv:2203.15556, Table 3 (D = 20 N)",
    "kaplan": "Kaplan et al. 2020, arXiv:2001.08361, Table 6 / Fig. 14 (N_opt), eq. 1.3 (loss)",
}


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

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens_per_param"] = self.tokens_per_param
        return out


def check_compute(compute_flops: float) -> float:
    """A compute budget must be a finite number > 0 (FLOPs)."""
    if isinstance(compute_flops, bool) or not isinstance(compute_flops, (int, float)) \
            or not math.isfinite(compute_flops) or compute_flops <= 0:
        raise BudgetError(f"compute budget {compute_flops!r} FLOPs must be a finite number > 0")
    return float(compute_flops)


def compute_optimal(law: str, compute_flops: float) -> Allocation:
    """The compute-optimal allocation of C under `law` (one of LAW_IDS)."""
    C = check_compute(compute_flops)
    if law in ("chinchilla", "epoch"):
        fit = CHINCHILLA if law == "chinchilla" else EPOCH
        N, D = fit.frontier(C)
        return Allocation(law, C, N, D, fit.loss(N, D), "total", fit.source)
    if law == "tokens-per-param":
        N = math.sqrt(C / (FLOPS_PER_PARAM_TOKEN * TOKENS_PER_PARAM))
        return Allocation(law, C, N, TOKENS_PER_PARAM * N, None, "total", LAW_SOURCES[law],
                          "a rule of thumb: no loss prediction")
    if law == "kaplan":
        N = kaplan_optimal_params(C)
        return Allocation(law, C, N, C / (FLOPS_PER_PARAM_TOKEN * N), kaplan_loss(C),
                          "non_embedding", LAW_SOURCES[law],
                          "N is non-embedding; loss is L(C_min) on WebText2 (eq. 1.3)")
    raise BudgetError(f"unknown scaling law {law!r}; choose one of {', '.join(LAW_IDS)}")


def all_allocations(compute_flops: float) -> list[Allocation]:
    """One allocation per literature law, in LAW_IDS order."""
    return [compute_optimal(law, compute_flops) for law in LAW_IDS]


def kaplan_optimal_params(compute_flops: float) -> float:
    """N_opt = 1.3e9 (C / PF-day)^0.73 non-embedding parameters (Kaplan et al. 2020 Table 6)."""
    return KAPLAN_N_COEF * (compute_flops / PF_DAY_FLOPS) ** KAPLAN_N_EXP


def kaplan_loss(compute_flops: float) -> float:
    """L(C_min) = (3.1e8 / (C / PF-day))^0.050 nats/token (Kaplan et al. 2020 eq. 1.3)."""
    return (KAPLAN_C_C_MIN_PF_DAYS / (compute_flops / PF_DAY_FLOPS)) ** KAPLAN_ALPHA_C_MIN


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
