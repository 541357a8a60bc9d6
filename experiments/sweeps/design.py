"""IsoFLOP sweep design (Hoffmann et al. 2022 §3.2, Approach 2): for each compute budget C, model
sizes log-spaced around the planner's predicted optimum, each trained on D = C / (6 N) tokens.

N_opt comes from `budget.scaling.laws.compute_optimal(law, C).params` and shapes from
`budget.models.families.shape_for_params` (one source of truth). Sizes span N_opt / span .. span N_opt;
sizes that round to the same shape are kept once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from budget.models import families
from budget.models.arch import Architecture
from budget.scaling.laws import compute_optimal
from experiments.errors import SweepError
from experiments.training.train import TrainConfig

C_PER_PARAM_TOKEN = 6.0  # C = 6 N D (Kaplan et al. 2020 §2.1; Hoffmann et al. 2022 §3)
ESTIMATED_MFU = 0.25  # MFU assumed by --dry-run time estimates (tiny models reach 0.2-0.4 on CPU)
STEP_OVERHEAD_S = 0.03  # per-step framework cost, measured: a 8k-param model ran 31 ms/step on 1 core
LAWS = ("chinchilla", "epoch", "tokens-per-param")
# Tiny widths make parameter counts coarse: within 2% only very deep, thin shapes exist. Allowing
# 20% lets shape_for_params pick sane aspect ratios; each point logs its real N and D = C/(6N).
SHAPE_TOLERANCE = 0.2


@dataclass(frozen=True)
class Preset:
    """A named sweep: budgets, points per budget, and the training hyperparameters."""

    name: str
    budgets: tuple[float, ...]
    points: int
    n_ctx: int
    batch_size: int
    lr: float
    multiple_of: int  # d_model granularity for shape_for_params
    head_dim: int
    eval_tokens: int
    span: float = 4.0  # sizes from N_opt / span to span x N_opt
    law: str = "chinchilla"
    n_layer: int = 0  # > 0: every model has this depth and only the width varies
    centre: float = 1.0  # the first budget's sizes centre on centre x the law's N_opt
    # per-size lr: lr x (lr_width / d_model) ** lr_exponent, at most lr_max (exponent 0: fixed)
    lr_exponent: float = 0.0
    lr_width: int = 16
    lr_max: float = 1.0
    adaptive: bool = False  # re-centre each budget on the last one's vertex; extend edge minima
    seed_budget: float = 0.0  # > 0: this budget is trained again with seed + 1 (seed noise)
    # points trained at once on a CPU (experiments.sweeps.workers; 0: one per core, one thread each).
    # How the sweep runs, not what it measures: not part of the sweep's identity.
    workers: int = 1

    def identity(self) -> dict[str, object]:
        """The fields that define what the sweep measures (its parent run's key)."""
        out = asdict(self)
        out.pop("workers")
        return out

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


PRESETS = {
    # seconds on 2 CPU cores: the tests' sweep
    "smoke": Preset("smoke", (5e9, 1.5e10), 3, 32, 64, 3e-3, 8, 8, 4096, law="epoch"),
    # about 15 minutes on 2 cores: 4 budgets x 5 widths of a 3-layer model (+ edge extensions,
    # + the 1e11 budget again with a second seed), one point per core at a time. Centre 0.4 x
    # Epoch's N_opt and the lr rule come from an lr scan at 3e11 on this machine (README, "The
    # cpu preset"): best lr 2.4e-2 at d_model 16, 6e-3 at 32, <= 3e-3 at 68, so
    # lr = 2.4e-2 (16 / d)^1.5, capped at 3e-2. Validation: 2^18 tokens, the whole held-out split.
    "cpu": Preset("cpu", (1e11, 2.5e11, 6e11, 1.5e12), 5, 64, 32, 2.4e-2, 2, 16, 1 << 18,
                  span=2.5, law="epoch", n_layer=3, centre=0.4, lr_exponent=1.5, lr_width=16,
                  lr_max=3e-2, adaptive=True, seed_budget=1e11, workers=0),
    # one GPU, hours: GPT-2-sized context, larger budgets
    "gpu": Preset("gpu", (1e15, 3e15, 1e16, 3e16), 7, 512, 64, 1e-3, 64, 64, 1 << 20, law="epoch"),
}


@dataclass(frozen=True)
class SweepPoint:
    """One grid cell: its training config and a time estimate."""

    config: TrainConfig
    estimated_seconds: float

    def to_dict(self) -> dict[str, object]:
        return {**self.config.to_dict(), "estimated_seconds": self.estimated_seconds}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise SweepError(f"--preset {name!r} is not one of {', '.join(PRESETS)}")
    return PRESETS[name]


def model_sizes(compute_flops: float, points: int, preset: Preset,
                centre: float | None = None) -> list[float]:
    """`points` sizes log-spaced over N_c/span .. span N_c (N_c alone for one point), where N_c
    is `centre` when given, else preset.centre x the law's N_opt."""
    if preset.law not in LAWS:
        raise SweepError(f"law {preset.law!r} is not one of {', '.join(LAWS)}")
    n_opt = centre if centre else preset.centre * compute_optimal(preset.law, compute_flops).params
    if points == 1:
        return [n_opt]
    return list(np.geomspace(n_opt / preset.span, n_opt * preset.span, points))


def shape_of(n_params: float, preset: Preset, vocab_size: int,
             family: str = "gpt2") -> Architecture:
    """The sweep's shape for N total params in the family (budget.models.families, the one shape
    search) at the preset's context, width step and head size, with no tensor-parallel
    constraint: GPT-2 blocks at the preset's fixed depth where it has one, the llama family by
    its own depth rule (as each was designed before; their config hashes depend on it)."""
    depth = preset.n_layer if family == "gpt2" and preset.n_layer else None
    return families.shape_for_params(n_params, family, n_ctx=preset.n_ctx, vocab_size=vocab_size,
                                     tolerance=SHAPE_TOLERANCE, width_step=preset.multiple_of,
                                     head_dim=preset.head_dim, tp_multiple=1, depth=depth)


def design_sweep(preset: Preset, *, budgets: tuple[float, ...] | None = None,
                 points: int | None = None, vocab_size: int = 256, seed: int = 0,
                 dataset: str = "", dataset_digest: str = "", code_version: str = "",
                 peak_flops_per_s: float | None = None, family: str = "gpt2") -> list[SweepPoint]:
    """The sweep's grid: for each budget, distinct shapes around N_opt and D = C / (6 N);
    `family` "llama" trains the Llama-style preset (experiments.model) instead of GPT-2's."""
    budgets = preset.budgets if budgets is None else budgets
    points = preset.points if points is None else points
    _check(budgets, points)
    grid: list[SweepPoint] = []
    for budget in sorted(budgets):
        grid += budget_points(preset, budget, points, vocab_size=vocab_size, seed=seed,
                              dataset=dataset, dataset_digest=dataset_digest,
                              code_version=code_version, peak_flops_per_s=peak_flops_per_s,
                              family=family)
    return grid


def budget_points(preset: Preset, budget: float, points: int, *, centre: float | None = None,
                  vocab_size: int = 256, seed: int = 0, dataset: str = "",
                  dataset_digest: str = "", code_version: str = "",
                  peak_flops_per_s: float | None = None, family: str = "gpt2") -> list[SweepPoint]:
    """One budget's points: distinct shapes log-spaced around `centre` (see model_sizes)."""
    out: list[SweepPoint] = []
    seen: set[Architecture] = set()
    for n in model_sizes(budget, points, preset, centre):
        shape = shape_of(n, preset, vocab_size, family)
        if shape in seen:
            continue
        seen.add(shape)
        config = _config(shape, budget, preset, seed, dataset, dataset_digest, code_version)
        out.append(SweepPoint(config, _estimate(config, peak_flops_per_s)))
    return out


def size_ratio(preset: Preset, points: int) -> float:
    """The factor between neighbouring sizes of a budget (span^2 over points - 1 steps)."""
    return float(preset.span ** (2.0 / max(1, points - 1)))


def vertex(sizes_losses: list[tuple[float, float]]) -> float | None:
    """N at the minimum of a parabola in log N through a budget's (N, loss), when that minimum
    lies inside the sampled sizes; None otherwise (fewer than 3 sizes, an edge minimum)."""
    if len({n for n, _ in sizes_losses}) < 3:
        return None
    x = np.log([n for n, _ in sizes_losses])
    y = np.array([loss for _, loss in sizes_losses])
    a, b, _ = np.polyfit(x, y, 2)
    if a <= 0:
        return None
    top = -b / (2 * a)
    return float(np.exp(top)) if x.min() < top < x.max() else None


def edge_extension(preset: Preset, sizes_losses: list[tuple[float, float]], points: int,
                   tried: set[Architecture], vocab_size: int,
                   family: str = "gpt2") -> Architecture | None:
    """A new shape one size step beyond the edge where the lowest loss lies, or None when the
    minimum is interior. Steps on past shapes already tried (width rounding)."""
    ordered = sorted(sizes_losses)
    losses = [loss for _, loss in ordered]
    best = int(np.argmin(losses))
    if 0 < best < len(ordered) - 1:
        return None
    ratio = size_ratio(preset, points)
    n = ordered[best][0]
    for _ in range(4):
        n = n / ratio if best == 0 else n * ratio
        shape = shape_of(n, preset, vocab_size, family)
        if shape not in tried and shape.params_total() < 1e12:
            return shape
    return None


def point_for(shape: Architecture, budget: float, preset: Preset, *, seed: int = 0,
              vocab_size: int = 0, dataset: str = "", dataset_digest: str = "", code_version: str = "",
              peak_flops_per_s: float | None = None, family: str = "gpt2") -> SweepPoint:
    """The sweep point training `shape` at `budget` (its vocabulary and family are the shape's)."""
    config = _config(shape, budget, preset, seed, dataset, dataset_digest, code_version)
    return SweepPoint(config, _estimate(config, peak_flops_per_s))


def lr_for(preset: Preset, d_model: int) -> float:
    """The preset's learning-rate rule: lr (lr_width / d_model)^lr_exponent, at most lr_max."""
    return float(min(preset.lr_max, preset.lr * (preset.lr_width / d_model) ** preset.lr_exponent))


def _check(budgets: tuple[float, ...], points: int) -> None:
    if not budgets:
        raise SweepError("--budgets is empty; give comma-separated FLOP budgets such as 1e11,3e11")
    for b in budgets:
        if not math.isfinite(b) or b <= 0:
            raise SweepError(f"--budgets value {b!r} must be a finite number > 0")
    if points < 1:
        raise SweepError(f"--points {points!r} must be a whole number >= 1")


def _config(arch: Architecture, budget: float, preset: Preset, seed: int,
            dataset: str, digest: str, code_version: str) -> TrainConfig:
    family = families.family_of(arch)
    n = arch.params_total()
    tokens = max(preset.n_ctx, int(round(budget / (C_PER_PARAM_TOKEN * n))))
    gpt2 = family == "gpt2"  # GPT-2 points store 0 for n_kv_head and head_dim (derived)
    return TrainConfig(
        n_layer=arch.n_layer, d_model=arch.d_model, n_head=arch.n_head, d_ff=arch.d_ff,
        n_ctx=arch.n_ctx, vocab_size=arch.vocab_size, params=n,
        params_non_embedding=arch.params_non_embedding(), tokens=tokens, flops_budget=budget,
        batch_size=preset.batch_size, lr=lr_for(preset, arch.d_model), seed=seed, eval_tokens=preset.eval_tokens,
        dataset=dataset, dataset_digest=digest, code_version=code_version, family=family,
        n_kv_head=0 if gpt2 else arch.n_kv_head, head_dim=0 if gpt2 else arch.head_dim)


def _estimate(config: TrainConfig, peak_flops_per_s: float | None) -> float:
    """Seconds = model FLOPs / (peak x ESTIMATED_MFU) + steps x STEP_OVERHEAD_S (NaN: no peak);
    the FLOPs are the point's own family's (a llama point's were once GPT-2's: 19% low)."""
    if not peak_flops_per_s:
        return float("nan")
    flops = config.architecture.training_flops_per_token() * config.tokens
    return flops / (peak_flops_per_s * ESTIMATED_MFU) + config.steps * STEP_OVERHEAD_S


def with_overrides(point: SweepPoint, **changes: object) -> SweepPoint:
    """A copy of a point with some config fields changed (lr, seed...)."""
    return SweepPoint(replace(point.config, **changes), point.estimated_seconds)  # type: ignore[arg-type]

