"""The loss you buy: any (N, D) against the compute-optimal frontier of each parametric law.

For a point (N, D) with C = 6 N D, under a law L(N, D) = E + A / N^alpha + B / D^beta:
- its loss L(N, D);
- the compute-optimal loss at the same C (Hoffmann et al. 2022 eq. 4 frontier): what the same
  compute would have bought at the law's best split;
- the extra compute: C / C_opt(L(N, D)) - 1, where C_opt(l) is the least compute that reaches the
  same loss (closed form, `inference.compute_optimal_for_loss`). This is what over-training a
  small model (or under-training a big one) costs at training time; inference-aware sizing
  (`inference`) is what it can save later.

`frontier` tabulates these over tokens-per-parameter ratios at one budget; `frontier_png` draws
them (matplotlib is imported inside it only).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from budget.errors import BudgetError
from budget.scaling import inference, laws

DEFAULT_RATIOS = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)  # tokens per parameter, the 5..500
PARAMETRIC_LAWS: Mapping[str, laws.ParametricLaw] = {"epoch": laws.EPOCH, "chinchilla": laws.CHINCHILLA}


@dataclass(frozen=True)
class LossBought:
    """Under one law: the loss of (N, D), the optimum at the same C, and the extra compute."""

    law: str
    params: float
    tokens: float
    compute_flops: float
    loss: float
    optimal_params: float  # the frontier point at the same C
    optimal_tokens: float
    optimal_loss: float
    same_loss_compute_flops: float  # the least compute reaching `loss`

    @property
    def loss_gap(self) -> float:
        return self.loss - self.optimal_loss

    @property
    def extra_compute_fraction(self) -> float:
        return self.compute_flops / self.same_loss_compute_flops - 1.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(loss_gap=self.loss_gap, extra_compute_fraction=self.extra_compute_fraction,
                   tokens_per_param=self.tokens / self.params)
        return out


def loss_you_buy(name: str, law: laws.ParametricLaw, params: float, tokens: float) -> LossBought:
    """(N, D) against `law`'s frontier at C = 6 N D."""
    for what, value in (("params", params), ("tokens", tokens)):
        if not math.isfinite(value) or value <= 0:
            raise BudgetError(f"{what} {value!r} must be a finite number > 0")
    C = laws.FLOPS_PER_PARAM_TOKEN * params * tokens
    n_opt, d_opt = law.frontier(C)
    here = law.loss(params, tokens)
    n_same, d_same = inference.compute_optimal_for_loss(law, here)
    return LossBought(name, params, tokens, C, here, n_opt, d_opt, law.loss(n_opt, d_opt),
                      laws.FLOPS_PER_PARAM_TOKEN * n_same * d_same)


@dataclass(frozen=True)
class FrontierRow:
    """One tokens-per-parameter ratio at the budget: N, D, each law's view, inference cost."""

    tokens_per_param: float
    params: float
    tokens: float
    by_law: tuple[LossBought, ...]
    inference_flops_per_token: float
    inference_usd_per_million_tokens: float | None
    lifetime_inference_flops: float
    lifetime_inference_usd: float | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["by_law"] = [b.to_dict() for b in self.by_law]
        return out


@dataclass(frozen=True)
class Frontier:
    """The loss-you-buy table over tokens-per-parameter at one compute budget."""

    compute_flops: float
    rows: tuple[FrontierRow, ...]
    optimal_ratio: dict[str, float]  # each law's compute-optimal D/N at this C
    inference_tokens: float
    context_tokens: float | None
    usd_per_flop: float | None
    assumptions: tuple[str, ...] = field(default=())
    png_path: str | None = None  # where the figure was written, if it was

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(rows=[r.to_dict() for r in self.rows], assumptions=list(self.assumptions))
        return out


def check_ratios(ratios: tuple[float, ...]) -> tuple[float, ...]:
    if not ratios or any(not math.isfinite(r) or r <= 0 for r in ratios):
        raise BudgetError(f"tokens-per-parameter ratios {ratios!r} must be finite numbers > 0")
    return tuple(sorted(float(r) for r in ratios))


def frontier(compute_flops: float, ratios: tuple[float, ...] = DEFAULT_RATIOS, *,
             inference_tokens: float = 0.0, context_tokens: float | None = None,
             usd_per_flop: float | None = None,
             parametric: Mapping[str, laws.ParametricLaw] = PARAMETRIC_LAWS,
             assumptions: tuple[str, ...] = ()) -> Frontier:
    """At C: for each D/N = r, N = sqrt(C / (6 r)), D = r N, each law's loss and extra compute,
    and the inference FLOPs per token (2 N, plus attention at `context_tokens` when given)."""
    C = laws.check_compute(compute_flops)
    if not math.isfinite(inference_tokens) or inference_tokens < 0:
        raise BudgetError(f"inference tokens {inference_tokens!r} must be a finite number >= 0")
    attention = None if context_tokens is None else inference.house_shape_attention(context_tokens)
    rows = []
    for r in check_ratios(ratios):
        n = math.sqrt(C / (laws.FLOPS_PER_PARAM_TOKEN * r))
        d = r * n
        per_token = float(inference.inference_flops_per_token(n, attention))
        lifetime = per_token * inference_tokens
        rows.append(FrontierRow(
            r, n, d, tuple(loss_you_buy(name, law, n, d) for name, law in parametric.items()),
            per_token, None if usd_per_flop is None else per_token * 1e6 * usd_per_flop,
            lifetime, None if usd_per_flop is None else lifetime * usd_per_flop))
    optimal = {name: law.frontier(C)[1] / law.frontier(C)[0] for name, law in parametric.items()}
    return Frontier(C, tuple(rows), optimal, inference_tokens, context_tokens, usd_per_flop,
                    assumptions)


def _linspace(low: float, high: float, n: int) -> list[float]:
    return [low + (high - low) * i / (n - 1) for i in range(n)]


def _bought_at(name: str, law: laws.ParametricLaw, compute_flops: float, ratio: float) -> LossBought:
    n = math.sqrt(compute_flops / (laws.FLOPS_PER_PARAM_TOKEN * ratio))
    return loss_you_buy(name, law, n, ratio * n)


def frontier_png(fr: Frontier) -> bytes:
    """Two panels over D/N: each law's loss (optimum marked) and the extra compute for that loss."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    ratios = [r.tokens_per_param for r in fr.rows]
    dense = [math.exp(x) for x in _linspace(math.log(ratios[0]), math.log(ratios[-1]), 80)]
    for i, (name, law) in enumerate(PARAMETRIC_LAWS.items()):
        if name not in fr.optimal_ratio:
            continue
        color = f"C{i}"
        curve = [_bought_at(name, law, fr.compute_flops, r) for r in dense]
        left.plot(dense, [b.loss for b in curve], "-", color=color, label=name)
        right.plot(dense, [100.0 * b.extra_compute_fraction for b in curve], "-", color=color,
                   label=name)
        j = list(fr.optimal_ratio).index(name)
        left.plot(ratios, [r.by_law[j].loss for r in fr.rows], "o", color=color, ms=4)
        right.plot(ratios, [100.0 * r.by_law[j].extra_compute_fraction for r in fr.rows], "o",
                   color=color, ms=4)
        left.axvline(fr.optimal_ratio[name], color=color, ls=":", lw=1,
                     label=f"{name} optimum D/N {fr.optimal_ratio[name]:.1f}")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("training tokens per parameter D/N")
        ax.grid(True, which="both", alpha=0.3)
    left.set_ylabel("predicted loss (nats/token, each law's data)")
    left.set_title(f"Loss at C = {fr.compute_flops:.2e} FLOPs")
    left.legend(fontsize=8)
    right.set_ylabel("extra compute for the same loss (%)")
    right.set_title("What leaving the optimum costs in training")
    right.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
