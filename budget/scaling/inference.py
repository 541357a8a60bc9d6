"""Inference-aware sizing (Sardana & Frankle 2023, "Beyond Chinchilla-Optimal", arXiv:2401.00448).

A model that will serve T tokens over its life costs 6 N D_train training FLOPs plus about 2 N FLOPs
per served token (forward pass only; Kaplan et al. 2020 §2.1). At a fixed quality (the loss l of
the compute-optimal model, or a target loss), Sardana & Frankle choose N and D_train to minimise

    6 N D_train + 2 N T    subject to    L(N, D_train) = E + A / N^alpha + B / D_train^beta = l.

For each N the constraint fixes D_train(N) = (B / (l - E - A / N^alpha))^(1/beta), so this is a
1-D minimisation over N in (N_min, N_ref]: N_min = (A / (l - E))^(1/alpha) is the smallest model that
can reach l at all (with infinite data) and N_ref is the compute-optimal model at l (the cheapest to
train; inference only pushes N down). The paper has no closed form either (it solves numerically).
With T = 0 the answer is N_ref exactly.

Attention: the objective above ignores it (as the paper does). `attention_flops_per_token` adds a
per-token context term where the planner knows the model: 4 n_layer d_model t for a mean context
of t tokens (QK^T and AV, unhalved: the convention of `budget.models.arch`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from budget.errors import BudgetError
from budget.models.families import target_aspect_ratio
from budget.scaling import laws
from budget.scaling.search import minimize_log

INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0  # forward pass: 2 N FLOPs per token (Kaplan et al. 2020 §2.1)
TRAIN_FLOPS_PER_PARAM_TOKEN = laws.FLOPS_PER_PARAM_TOKEN  # 6 N D (Kaplan et al. 2020 §2.1)
NON_EMBEDDING_PARAMS_PER_LAYER_D2 = 12.0  # N ~ 12 n_layer d_model^2 (Kaplan et al. 2020 §2.1)
SOURCE = ("Sardana & Frankle 2023, arXiv:2401.00448 (Beyond Chinchilla-Optimal): minimise "
          "6 N D_train + 2 N T at fixed loss")

AttentionFlops = Callable[[np.ndarray], np.ndarray]
ServingPrice = Callable[[float], Any]  # params -> budget.serving.lifetime.ServedModel


def min_params_for_loss(law: laws.ParametricLaw, loss: float) -> float:
    """N_min = (A / (l - E))^(1/alpha): below it l is out of reach at any D (l <= E: BudgetError)."""
    if not math.isfinite(loss) or loss <= law.E:
        raise BudgetError(f"loss {loss!r} is out of reach: this law's irreducible loss E is "
                          f"{law.E:.4f}; give a loss above it")
    return float((law.A / (loss - law.E)) ** (1.0 / law.alpha))


def tokens_for_loss(law: laws.ParametricLaw, params: np.ndarray | float, loss: float) -> np.ndarray:
    """D(N) = (B / (l - E - A N^-alpha))^(1/beta): the tokens N needs to reach l (inf if it cannot)."""
    gap = loss - law.E - law.A * np.asarray(params, dtype=float) ** -law.alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap > 0, (law.B / np.where(gap > 0, gap, 1.0)) ** (1.0 / law.beta), np.inf)


def compute_optimal_for_loss(law: laws.ParametricLaw, loss: float) -> tuple[float, float]:
    """The cheapest-to-train (N, D) with L = l, in closed form.

    Minimising N D on L = l (Lagrange) gives alpha A N^-alpha = beta B D^-beta, so the two terms
    split l - E as x = beta (l - E) / (alpha + beta) and y = alpha (l - E) / (alpha + beta):
    N = (A / x)^(1/alpha), D = (B / y)^(1/beta). These are points of the eq.-4 frontier."""
    min_params_for_loss(law, loss)  # validates l > E
    room = loss - law.E
    x = law.beta * room / (law.alpha + law.beta)
    y = law.alpha * room / (law.alpha + law.beta)
    params, tokens = float((law.A / x) ** (1.0 / law.alpha)), float((law.B / y) ** (1.0 / law.beta))
    if not TRAIN_FLOPS_PER_PARAM_TOKEN * params * tokens >= laws.MIN_COMPUTE_FLOPS:
        raise BudgetError(f"loss {loss:g} needs {TRAIN_FLOPS_PER_PARAM_TOKEN * params * tokens:.3g} "
                          "FLOPs of training, less than one: no model is trained toward a loss that "
                          "high; give a lower loss")
    return params, tokens


def frontier_tokens(law: laws.ParametricLaw, params: float) -> float:
    """D_opt of the eq.-4 frontier point whose N_opt is `params` (C/6 = (N / G)^(1/a))."""
    scaled = (params / law.G) ** (1.0 / law.a)
    return float(scaled ** law.b / law.G)


def house_shape_attention(context_tokens: float) -> AttentionFlops:
    """Per-token attention FLOPs 4 n_layer d_model t of the house GPT shape for N parameters.

    The shape rule of `budget.models.families` (d_model / n_layer = target_aspect_ratio(N)) with
    N ~ 12 n_layer d_model^2 gives d_model = (rho N / 12)^(1/3) and n_layer d_model = d_model^2 / rho;
    a smooth stand-in for the discrete shape, so the search stays vectorised."""
    def flops(params: np.ndarray) -> np.ndarray:
        p = np.asarray(params, dtype=float)
        rho = np.array([target_aspect_ratio(float(x)) for x in p.ravel()]).reshape(p.shape)
        d_model = (rho * p / NON_EMBEDDING_PARAMS_PER_LAYER_D2) ** (1.0 / 3.0)
        return 4.0 * (d_model ** 2 / rho) * context_tokens
    return flops


@dataclass(frozen=True)
class CostPoint:
    """One (N, D_train) with its loss, training FLOPs 6ND, lifetime inference FLOPs and dollars."""

    params: float
    tokens: float
    loss: float
    train_flops: float
    inference_flops: float
    train_usd: float | None = None
    inference_usd: float | None = None
    served: dict[str, Any] | None = None  # how it is served when priced by the simulator

    @property
    def total_flops(self) -> float:
        return self.train_flops + self.inference_flops

    @property
    def total_usd(self) -> float | None:
        if self.train_usd is None or self.inference_usd is None:
            return None
        return self.train_usd + self.inference_usd

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(total_flops=self.total_flops, total_usd=self.total_usd,
                   tokens_per_param=self.tokens_per_param)
        return out


def inference_flops_per_token(params: np.ndarray | float,
                              attention: AttentionFlops | None = None) -> np.ndarray:
    """2 N FLOPs per served token, plus the attention context term when given."""
    p = np.asarray(params, dtype=float)
    extra = 0.0 if attention is None else attention(p)
    return INFERENCE_FLOPS_PER_PARAM_TOKEN * p + extra


def cost_point(law: laws.ParametricLaw, params: float, tokens: float, inference_tokens: float,
               attention: AttentionFlops | None = None, usd_per_flop: float | None = None,
               serving: ServingPrice | None = None) -> CostPoint:
    """The costs of training (N, D) and serving it for `inference_tokens` tokens; `serving`
    (budget.serving.lifetime.pricer) prices the served tokens instead of their FLOPs."""
    train = TRAIN_FLOPS_PER_PARAM_TOKEN * params * tokens
    serve = float(inference_flops_per_token(params, attention)) * inference_tokens
    served = None if serving is None or inference_tokens == 0 else serving(params)
    serve_usd = (None if usd_per_flop is None else serve * usd_per_flop) if served is None else \
        inference_tokens * served.usd_per_million_tokens / 1e6
    return CostPoint(params, tokens, law.loss(params, tokens), train, serve,
                     None if usd_per_flop is None else train * usd_per_flop, serve_usd,
                     None if served is None else served.to_dict())


def inference_optimal(law: laws.ParametricLaw, loss: float, inference_tokens: float,
                      attention: AttentionFlops | None = None,
                      reference: tuple[float, float] | None = None) -> tuple[float, float]:
    """(N*, D*) minimising 6 N D(N) + T f(N) at L = l; `reference` = the compute-optimal (N, D) at l
    (returned unchanged when T = 0; defaults to the closed form)."""
    if not math.isfinite(inference_tokens) or inference_tokens < 0:
        raise BudgetError(f"inference tokens {inference_tokens!r} must be a finite number >= 0")
    n_ref, d_ref = reference or compute_optimal_for_loss(law, loss)
    if inference_tokens == 0:
        return n_ref, d_ref
    n_min = min_params_for_loss(law, loss)

    def total(params: np.ndarray) -> np.ndarray:
        train = TRAIN_FLOPS_PER_PARAM_TOKEN * params * tokens_for_loss(law, params, loss)
        return train + inference_tokens * inference_flops_per_token(params, attention)

    n_star, _ = minimize_log(total, n_min * (1.0 + 1e-9), n_ref)
    return n_star, float(tokens_for_loss(law, n_star, loss))


@dataclass(frozen=True)
class InferencePlan:
    """Under one law: the compute-optimal model at loss l and the cheapest one over its life."""

    law: str
    target_loss: float
    loss_from: str  # where l came from: the compute-optimal model at the budget, or --target-loss
    inference_tokens: float
    context_tokens: float | None  # mean context of the attention term; None: 2 N per token only
    reference: CostPoint  # the compute-optimal (cheapest-to-train) model at l
    chosen: CostPoint  # the minimiser of training + inference FLOPs at l
    source: str = SOURCE

    @property
    def saving_flops(self) -> float:
        return self.reference.total_flops - self.chosen.total_flops

    @property
    def saving_fraction(self) -> float:
        total = self.reference.total_flops
        return self.saving_flops / total if total > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(reference=self.reference.to_dict(), chosen=self.chosen.to_dict(),
                   saving_flops=self.saving_flops, saving_fraction=self.saving_fraction)
        return out


def inference_plan(name: str, law: laws.ParametricLaw, loss: float, inference_tokens: float, *,
                   loss_from: str, reference: tuple[float, float] | None = None,
                   context_tokens: float | None = None,
                   usd_per_flop: float | None = None,
                   serving: ServingPrice | None = None) -> InferencePlan:
    """The compute-optimal model at `loss` against the inference-aware one, costed and priced."""
    attention = None if context_tokens is None else house_shape_attention(context_tokens)
    ref = reference or compute_optimal_for_loss(law, loss)
    n_star, d_star = inference_optimal(law, loss, inference_tokens, attention, ref)
    return InferencePlan(
        law=name, target_loss=loss, loss_from=loss_from, inference_tokens=inference_tokens,
        context_tokens=context_tokens,
        reference=cost_point(law, *ref, inference_tokens, attention, usd_per_flop, serving),
        chosen=cost_point(law, n_star, d_star, inference_tokens, attention, usd_per_flop, serving))
