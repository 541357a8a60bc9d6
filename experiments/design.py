"""IsoFLOP sweep design (Hoffmann et al. 2022 §3.2, Approach 2): for each compute budget C, model
sizes log-spaced around the planner's predicted optimum, each trained on D = C / (6 N) tokens.

N_opt comes from `budget.scaling.laws.compute_optimal(law, C).params` and shapes from
`budget.models.transformer.shape_for_params` (one source of truth). Sizes span N_opt / span .. span N_opt;
sizes that round to the same shape are kept once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from budget.models import families
from budget.models.arch import Architecture
from budget.models.transformer import ModelShape, shape_for_params
from budget.scaling.laws import compute_optimal
from experiments.errors import SweepError
from experiments.train import TrainConfig

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

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


PRESETS = {
    # seconds on 2 CPU cores: the tests' sweep
    "smoke": Preset("smoke", (5e9, 1.5e10), 3, 32, 64, 3e-3, 8, 8, 4096, law="epoch"),
    # 15-30 minutes on a laptop CPU; 3 budgets x 7 sizes support an Approach 2 fit
    # (Epoch's refit: ~40 tokens/param at these budgets; Chinchilla's ~5 starves big models)
    "cpu": Preset("cpu", (1e11, 3e11, 1e12), 7, 64, 32, 3e-3, 16, 16, 65536, law="epoch"),
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


def model_sizes(compute_flops: float, points: int, preset: Preset) -> list[float]:
    """`points` sizes log-spaced over N_opt/span .. span N_opt (N_opt alone for one point)."""
    if preset.law not in LAWS:
        raise SweepError(f"law {preset.law!r} is not one of {', '.join(LAWS)}")
    n_opt = compute_optimal(preset.law, compute_flops).params
    if points == 1:
        return [n_opt]
    return list(np.geomspace(n_opt / preset.span, n_opt * preset.span, points))


def shape_for(n_params: float, preset: Preset, vocab_size: int) -> ModelShape:
    """The planner's shape for N total params at the preset's context and granularity."""
    return shape_for_params(n_params, count="total", n_ctx=preset.n_ctx, vocab_size=vocab_size,
                            multiple_of=preset.multiple_of, head_dim=preset.head_dim,
                            tolerance=SHAPE_TOLERANCE)


def arch_for(n_params: float, preset: Preset, vocab_size: int, family: str) -> Architecture:
    """`--family llama`: the planner's Llama-style shape (budget.models.families) at the preset's
    context, width step and head size (no tensor-parallel constraint at sweep sizes)."""
    return families.shape_for_params(n_params, family, n_ctx=preset.n_ctx, vocab_size=vocab_size,
                                     tolerance=SHAPE_TOLERANCE, width_step=preset.multiple_of,
                                     head_dim=preset.head_dim, tp_multiple=1)


def design_sweep(preset: Preset, *, budgets: tuple[float, ...] | None = None,
                 points: int | None = None, vocab_size: int = 256, seed: int = 0,
                 dataset: str = "", dataset_digest: str = "", code_version: str = "",
                 peak_flops_per_s: float | None = None,
                 family: str = "gpt2") -> list[SweepPoint]:
    """The sweep's grid: for each budget, distinct shapes around N_opt and D = C / (6 N).
    `family` "llama" trains the Llama-style block (experiments.llama) instead of GPT-2's."""
    budgets = preset.budgets if budgets is None else budgets
    points = preset.points if points is None else points
    _check(budgets, points)
    grid: list[SweepPoint] = []
    for budget in sorted(budgets):
        seen: set[ModelShape | Architecture] = set()
        for n in model_sizes(budget, points, preset):
            shape: ModelShape | Architecture = shape_for(n, preset, vocab_size) \
                if family == "gpt2" else arch_for(n, preset, vocab_size, family)
            if shape in seen:
                continue
            seen.add(shape)
            config = _config(shape, budget, preset, seed, dataset, dataset_digest, code_version)
            grid.append(SweepPoint(config, _estimate(config, peak_flops_per_s)))
    return grid


def _check(budgets: tuple[float, ...], points: int) -> None:
    if not budgets:
        raise SweepError("--budgets is empty; give comma-separated FLOP budgets such as 1e11,3e11")
    for b in budgets:
        if not math.isfinite(b) or b <= 0:
            raise SweepError(f"--budgets value {b!r} must be a finite number > 0")
    if points < 1:
        raise SweepError(f"--points {points!r} must be a whole number >= 1")


def _config(shape: ModelShape | Architecture, budget: float, preset: Preset, seed: int,
            dataset: str, digest: str, code_version: str) -> TrainConfig:
    arch = shape if isinstance(shape, Architecture) else Architecture.from_shape(shape)
    family = "gpt2" if isinstance(shape, ModelShape) else families.family_of(arch)
    n = arch.params_total()
    tokens = max(preset.n_ctx, int(round(budget / (C_PER_PARAM_TOKEN * n))))
    gpt2 = family == "gpt2"  # GPT-2 points: heads as ModelShape has them (0 = derived)
    return TrainConfig(
        n_layer=arch.n_layer, d_model=arch.d_model, n_head=arch.n_head, d_ff=arch.d_ff,
        n_ctx=arch.n_ctx, vocab_size=arch.vocab_size, params=n,
        params_non_embedding=arch.params_non_embedding(), tokens=tokens, flops_budget=budget,
        batch_size=preset.batch_size, lr=preset.lr, seed=seed, eval_tokens=preset.eval_tokens,
        dataset=dataset, dataset_digest=digest, code_version=code_version, family=family,
        n_kv_head=0 if gpt2 else arch.n_kv_head, head_dim=0 if gpt2 else arch.head_dim)


def _estimate(config: TrainConfig, peak_flops_per_s: float | None) -> float:
    """Seconds = model FLOPs / (peak x ESTIMATED_MFU) + steps x STEP_OVERHEAD_S (NaN: no peak)."""
    if not peak_flops_per_s:
        return float("nan")
    flops = config.architecture.training_flops_per_token() * config.tokens
    return flops / (peak_flops_per_s * ESTIMATED_MFU) + config.steps * STEP_OVERHEAD_S


def with_overrides(point: SweepPoint, **changes: object) -> SweepPoint:
    """A copy of a point with some config fields changed (lr, seed...)."""
    return SweepPoint(replace(point.config, **changes), point.estimated_seconds)  # type: ignore[arg-type]
