"""Score the step-time model on published runs: fit the efficiency constants, in-sample and
leave-one-out errors, per suite, and the ratio to Calculon on Korthikanti Table 5.

The step time of a layout (budget.training.communication.step_time) is compute and bubble at an
achieved fraction of the dense peak, plus exposed communication and the optimizer. The achieved
fraction is matmul efficiency (catalog, measured) x kernel_factor x h / (h + h_half). Two kinds of
constant are fitted, and nothing per row:
- kernel_factor, one per (device, precision) with rows; a device without rows takes the pooled fit;
- h_half, one for all devices (on a grid of 128).
Compute and bubble scale as 1/kernel_factor and (h + h_half)/h, the rest does not, so for a fixed
h_half the least-squares kernel factor on relative step-time error has a closed form:
u = 1/k = sum(a_i (1 - R_i/M_i)/M_i) / sum(a_i^2/M_i^2), a_i the compute + bubble at k = 1.
Leave-one-out refits both constants without the row it then predicts (a device whose only row is
left out takes the pooled factor of the other rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from budget.hardware.efficiency import efficiency
from budget.training.communication import step_time
from budget.training.parallel import (
    first_stage_activation_bytes,
    layer_activation_bytes,
    model_state_bytes_per_gpu,
    parse_layout,
)
from budget.validation.table import MemoryRow, TimeRow, load_rows, megatron_gpt

H_GRID = np.arange(0.0, 4096.0 + 1, 128.0)
H_REF = 1024.0  # h_half of the linearisation point (any value: compute scales exactly)
CALCULON_T5 = (3.65, 8.87)  # mean, max |error| % on Korthikanti Table 5 (calculon-ai/calculon llm-validation)
# The bounds, mean and max |error| %: Korthikanti Table 5 with leave-one-out constants,
# every row's mean (in-sample; the leave-one-out figure is printed beside it).
BOUNDS: dict[str, tuple[str, float, float | None]] = {
    "korthikanti-t5": ("loo", 5.5, 12.0), "all": ("in-sample", 10.0, None)}
POOLED = "*"


@dataclass(frozen=True)
class Constants:
    """Fitted efficiency constants: kernel factor per 'device/precision' (and pooled '*'), h_half."""

    kernel_factor: dict[str, float]
    h_half: float

    def factor(self, device: str, precision: str) -> float:
        return self.kernel_factor.get(f"{device}/{_rate(precision)}", self.kernel_factor[POOLED])

    def to_dict(self) -> dict[str, Any]:
        return {"kernel_factor": dict(self.kernel_factor), "h_half": self.h_half}


@dataclass(frozen=True)
class RowScore:
    suite: str
    id: str
    device: str
    precision: str
    layout: str
    measure: str
    measured_value: float
    measured_step_s: float
    predicted_step_s: float
    loo_step_s: float
    predicted_mfu: float
    assumed: str
    source: str

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.predicted_step_s / self.measured_step_s - 1)

    @property
    def loo_error_pct(self) -> float:
        return 100.0 * (self.loo_step_s / self.measured_step_s - 1)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "error_pct": self.error_pct, "loo_error_pct": self.loo_error_pct}


@dataclass(frozen=True)
class MemoryScore:
    suite: str
    id: str
    kind: str
    published_bytes: float
    predicted_bytes: float
    source: str

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.predicted_bytes / self.published_bytes - 1)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "error_pct": self.error_pct}


@dataclass(frozen=True)
class SuiteScore:
    suite: str
    rows: int
    mean_pct: float
    max_pct: float
    loo_mean_pct: float | None
    loo_max_pct: float | None
    bound: tuple[str, float, float | None] | None = None  # (loo | in-sample, mean, max)

    @property
    def passes(self) -> bool:
        if self.bound is None:
            return True
        kind, mean, top = self.bound
        got_mean, got_max = ((self.loo_mean_pct or 0.0, self.loo_max_pct or 0.0) if kind == "loo"
                             else (self.mean_pct, self.max_pct))
        return got_mean <= mean and (top is None or got_max <= top)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "bound": None if self.bound is None else
                {"of": self.bound[0], "mean_pct": self.bound[1], "max_pct": self.bound[2]},
                "passes": self.passes}


@dataclass(frozen=True)
class Scoreboard:
    constants: Constants
    rows: tuple[RowScore, ...]
    memory: tuple[MemoryScore, ...]
    suites: tuple[SuiteScore, ...]
    calculon_ratio: dict[str, float] = field(default_factory=dict)
    catalog_drift: tuple[str, ...] = ()  # efficiency.toml constants that differ from this fit
    serving: tuple[Any, ...] = ()  # budget.serving.validation.ValidationRow: serving figures, no bound

    @property
    def passes(self) -> bool:
        return all(s.passes for s in self.suites)

    def to_dict(self) -> dict[str, Any]:
        return {"constants": self.constants.to_dict(), "rows": [r.to_dict() for r in self.rows],
                "memory": [m.to_dict() for m in self.memory],
                "suites": [s.to_dict() for s in self.suites], "calculon_ratio": self.calculon_ratio,
                "calculon_t5_pct": {"mean": CALCULON_T5[0], "max": CALCULON_T5[1]},
                "catalog_drift": list(self.catalog_drift),
                "serving": [r.to_dict() for r in self.serving],
                "serving_mean_abs_pct": serving_mean_abs_pct(self.serving), "passes": self.passes}


def serving_mean_abs_pct(rows: tuple[Any, ...]) -> float | None:
    """Mean |predicted / measured - 1| of the serving rows, in percent (None without rows)."""
    return 100.0 * sum(abs(r.error) for r in rows) / len(rows) if rows else None


def _group(row: TimeRow) -> str:
    """Fit group: the device and its tensor-core rate (fp16 and bf16 share one on every device)."""
    return f"{row.device}/{_rate(row.precision)}"


def _rate(precision: str) -> str:
    return "16-bit" if precision in ("fp16", "bf16") else precision


def _closed_form(a: np.ndarray, r: np.ndarray, m: np.ndarray) -> np.ndarray:
    """u = 1/k minimising sum(((u a + r) / m - 1)^2), one u per row of `a` (one h_half each)."""
    x = a / m
    return np.sum(x * (1 - r / m), axis=-1) / np.sum(x * x, axis=-1)


def _fit(a0: np.ndarray, r: np.ndarray, m: np.ndarray, h: np.ndarray, groups: list[str],
         keep: np.ndarray) -> Constants:
    """Least squares over `keep` rows: the h_half on the grid with the smallest squared error."""
    a = a0 * (h + H_GRID[:, None]) / (h + H_REF)  # compute + bubble at k = 1, one row per h_half
    names = sorted({g for g, k in zip(groups, keep, strict=True) if k})
    sse = np.zeros(len(H_GRID))
    us = {}
    for g in names:
        sel = keep & (np.array(groups) == g)
        u = _closed_form(a[:, sel], r[sel], m[sel])
        us[g] = u
        sse += np.sum(((u[:, None] * a[:, sel] + r[sel]) / m[sel] - 1) ** 2, axis=1)
    best = int(np.argmin(sse))
    pooled = _closed_form(a[best, keep], r[keep], m[keep])
    factors = {POOLED: float(1.0 / pooled), **{g: float(1.0 / u[best]) for g, u in us.items()}}
    return Constants(factors, float(H_GRID[best]))


def _predict(row: TimeRow, k: Constants) -> tuple[float, float]:
    cluster = replace(row.cluster, kernel_factor=k.factor(row.device, row.precision), h_half=k.h_half)
    st = step_time(row.arch, row.layout, row.seq_len, cluster, precision=row.precision,
                   overlap=row.overlap)
    return st.step_time_s, st.predicted_mfu


def _arrays(rows: tuple[TimeRow, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    a0, r = [], []
    for row in rows:  # at kernel factor 1 and the module h_half: compute + bubble, and the rest
        cluster = replace(row.cluster, kernel_factor=1.0, h_half=H_REF)
        st = step_time(row.arch, row.layout, row.seq_len, cluster, precision=row.precision,
                       overlap=row.overlap)
        a0.append(st.compute_s + st.bubble_s)
        r.append(st.step_time_s - st.compute_s - st.bubble_s)
    return (np.array(a0), np.array(r), np.array([x.measured_step_s for x in rows]),
            np.array([float(x.arch.d_model) for x in rows]), [_group(x) for x in rows])


def _memory(row: MemoryRow) -> float:
    s = row.spec
    if row.kind == "model_states":
        return sum(model_state_bytes_per_gpu(s["params"], "bf16", "adam", s["zero"], s["shards"]))
    arch = megatron_gpt(s["L"], s["h"], s["a"], s["seq_len"])
    layout = parse_layout(s["layout"])
    if row.kind == "layer_activations":
        return layer_activation_bytes(arch, layout, s["seq_len"])
    # first stage, layers only: less the embedding dropout mask (1 byte, s b h per micro-batch / t)
    mask = s["seq_len"] * layout.mb * arch.d_model * min(layout.pp, layout.ga) / (layout.tp if layout.sp else 1)
    return first_stage_activation_bytes(arch, layout, s["seq_len"]) - mask


def _suite(name: str, scores: list[RowScore]) -> SuiteScore:
    err = [abs(x.error_pct) for x in scores]
    loo = [abs(x.loo_error_pct) for x in scores]
    return SuiteScore(name, len(scores), float(np.mean(err)), float(np.max(err)),
                      float(np.mean(loo)), float(np.max(loo)), BOUNDS.get(name))


def score() -> Scoreboard:
    """Every row predicted with the in-sample constants and with leave-one-out constants."""
    rows, mems = load_rows()
    arrays = _arrays(rows)
    n = len(rows)
    constants = _fit(*arrays, np.ones(n, dtype=bool))
    scores = []
    for i, row in enumerate(rows):
        keep = np.ones(n, dtype=bool)
        keep[i] = False
        loo_k = _fit(*arrays, keep)
        if _group(row) not in loo_k.kernel_factor:  # its only row was left out: the pooled factor
            loo_k = Constants({POOLED: loo_k.kernel_factor[POOLED]}, loo_k.h_half)
        pred, mfu = _predict(row, constants)
        loo, _ = _predict(row, loo_k)
        scores.append(RowScore(row.suite, row.id, row.device, row.precision, row.layout.describe(),
                               row.measure, row.measured_value, row.measured_step_s, pred, loo, mfu,
                               row.assumed, row.source))
    suites = [_suite(name, [x for x in scores if x.suite == name])
              for name in dict.fromkeys(x.suite for x in scores)]
    suites.append(_suite("all", scores))
    t5 = next(s for s in suites if s.suite == "korthikanti-t5")
    ratio = {"mean": (t5.loo_mean_pct or 0.0) / CALCULON_T5[0], "max": (t5.loo_max_pct or 0.0) / CALCULON_T5[1]}
    memory = tuple(MemoryScore(m.suite, m.id, m.kind, m.published_bytes, _memory(m), m.source) for m in mems)
    from budget.serving.validation import rows as serving_rows

    return Scoreboard(constants, tuple(scores), memory, tuple(suites), ratio,
                      catalog_drift(constants) + residual_drift(scores), tuple(serving_rows()))


def residual_drift(scores: list[RowScore]) -> tuple[str, ...]:
    """efficiency.toml's loo_log_ratios (the plan interval's step-time error) against this
    scoreboard's leave-one-out residuals, to their 4 printed decimals."""
    held = efficiency().loo_log_ratios
    now = [math.log(x.loo_step_s / x.measured_step_s) for x in scores]
    if len(held) != len(now) or any(abs(a - b) > 5e-5 + 1e-12 for a, b in zip(held, now)):
        return (f"loo_log_ratios: efficiency.toml holds {len(held)} residuals that differ from the "
                f"{len(now)} of this fit; copy them from budget validate --json",)
    return ()


def catalog_drift(fit: Constants) -> tuple[str, ...]:
    """Constants of efficiency.toml that differ from `fit` beyond their printed 3 digits."""
    eff = efficiency()
    out = []
    for group, value in fit.kernel_factor.items():
        device, _, rate = group.partition("/")
        held, _ = eff.kernel_factor(device, {"16-bit": "bf16", "": "*"}.get(rate, rate))
        if abs(held - value) > 5e-4 + 1e-9:
            out.append(f"kernel_factor {group}: efficiency.toml {held:g}, fit {value:.3f}")
    if abs(eff.h_half - fit.h_half) > 0.5:
        out.append(f"h_half: efficiency.toml {eff.h_half:g}, fit {fit.h_half:g}")
    return tuple(out)
