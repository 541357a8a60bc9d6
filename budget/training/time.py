"""From FLOPs to accelerator-hours, wall clock and dollars, and back (budgets given as time or money).

GPU-hours = C / (peak x MFU) / 3600, with the dense peak at the training precision. MFU (model FLOPs
utilisation) is the share of that peak the whole run achieves; see DEFAULT_MFU for its sources.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from budget.errors import BudgetError
from budget.hardware.catalog import Accelerator

SECONDS_PER_HOUR = 3600.0
# Default MFU 0.40 and band 0.30-0.50 for dense LLM pre-training against the BF16 dense peak:
# PaLM 540B 46.2 % (Chowdhery et al. 2022 §4), Llama 3 405B 38-43 % on H100 (Dubey et al. 2024
# Table 4), Megatron-Core "up to 47 %" on H100 (NVIDIA Megatron-LM README), GPT-3-era systems
# 21-32 % (PaLM Table 3). Tuned Megatron stacks reach 52-56 % (Korthikanti et al. 2022 Table 5).
DEFAULT_MFU = 0.40
DEFAULT_MFU_BAND = (0.30, 0.50)
MFU_SOURCE = ("default 0.40, band 0.30-0.50: PaLM 46.2% (arXiv:2204.02311), Llama 3 38-43% on "
              "H100 (arXiv:2407.21783 Table 4), Megatron-Core up to 47% (NVIDIA Megatron-LM)")
# FP8: NeMo 24.12 GPT-3 175B on 512 H100 reached 888 TFLOP/s = 45% of the FP8 dense peak (NVIDIA
# NeMo performance summary); Llama 4 about 390 TFLOP/s/GPU, ~20% of it (Meta, as reported).


def device_mfu(gpu: Accelerator) -> tuple[float, str]:
    """The per-device default MFU: a published training run on `gpu` (catalog `default_mfu`, with
    its source and date), else the global default, labelled as such."""
    if gpu.default_mfu is not None:
        return gpu.default_mfu, f"{gpu.id} default {gpu.default_mfu:g}: {gpu.sources.get('mfu', '')}"
    return DEFAULT_MFU, (f"global default {DEFAULT_MFU:g} (no published training MFU on {gpu.id} "
                         f"in the catalog): {MFU_SOURCE}")


def band_including(mfu: float, band: tuple[float, float]) -> tuple[float, float]:
    """Widen `band` just enough to hold `mfu` (a per-device default may lie outside the global band)."""
    return (min(band[0], mfu), max(band[1], mfu))


def check_mfu(mfu: float) -> float:
    """MFU must lie in (0, 1]."""
    if isinstance(mfu, bool) or not isinstance(mfu, (int, float)) or not math.isfinite(mfu) \
            or not 0 < mfu <= 1:
        raise BudgetError(f"MFU {mfu!r} must be in (0, 1], e.g. 0.4 for 40% of the dense peak")
    return float(mfu)


def check_num_gpus(num_gpus: int) -> int:
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1:
        raise BudgetError(f"number of GPUs {num_gpus!r} must be a whole number >= 1")
    return num_gpus


def resolve_price(gpu: Accelerator, price_per_hour: float | None) -> tuple[float | None, str]:
    """The $/accelerator-hour to use and where it came from (the override wins)."""
    if price_per_hour is not None:
        if not math.isfinite(price_per_hour) or price_per_hour <= 0:
            raise BudgetError(f"price per hour {price_per_hour!r} must be a positive number of USD")
        return float(price_per_hour), "given with --price-per-hour"
    if gpu.price_usd_per_hour is None:
        return None, f"no price in the catalog's tier for {gpu.id}"
    tier = gpu.price_tier or f"{gpu.price_provider}, on-demand"
    return gpu.price_usd_per_hour, f"{tier}, read {gpu.price_date}"


@dataclass(frozen=True)
class CostEstimate:
    """Accelerator-hours, wall clock and dollars for C FLOPs at an MFU, with the MFU band's range."""

    compute_flops: float
    gpu: str
    precision: str
    peak_flops: float
    mfu: float
    num_gpus: int
    gpu_hours: float
    wall_clock_hours: float
    cost_usd: float | None
    price_usd_per_hour: float | None
    price_source: str
    mfu_band: tuple[float, float]
    gpu_hours_range: tuple[float, float]
    wall_clock_hours_range: tuple[float, float]
    cost_usd_range: tuple[float, float] | None

    @property
    def wall_clock_days(self) -> float:
        return self.wall_clock_hours / 24.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["wall_clock_days"] = self.wall_clock_days
        return out


def gpu_hours_for(compute_flops: float, peak_flops: float, mfu: float) -> float:
    """GPU-hours = C / (peak x MFU) / 3600."""
    return compute_flops / (peak_flops * mfu) / SECONDS_PER_HOUR


def estimate_cost(compute_flops: float, gpu: Accelerator, *, precision: str = "bf16",
                  mfu: float = DEFAULT_MFU, num_gpus: int = 1,
                  price_per_hour: float | None = None,
                  mfu_band: tuple[float, float] = DEFAULT_MFU_BAND) -> CostEstimate:
    """Hours and dollars to spend `compute_flops` on `num_gpus` of `gpu` at `mfu`."""
    mfu = check_mfu(mfu)
    low, high = (check_mfu(m) for m in mfu_band)
    if low > high:
        raise BudgetError(f"MFU band {mfu_band!r} must be (low, high) with low <= high")
    num_gpus = check_num_gpus(num_gpus)
    peak = gpu.peak_flops(precision)
    hours = gpu_hours_for(compute_flops, peak, mfu)
    hours_range = (gpu_hours_for(compute_flops, peak, high), gpu_hours_for(compute_flops, peak, low))
    price, price_source = resolve_price(gpu, price_per_hour)
    return CostEstimate(
        compute_flops=compute_flops, gpu=gpu.id, precision=precision, peak_flops=peak, mfu=mfu,
        num_gpus=num_gpus, gpu_hours=hours, wall_clock_hours=hours / num_gpus,
        cost_usd=None if price is None else hours * price, price_usd_per_hour=price,
        price_source=price_source, mfu_band=(low, high), gpu_hours_range=hours_range,
        wall_clock_hours_range=(hours_range[0] / num_gpus, hours_range[1] / num_gpus),
        cost_usd_range=None if price is None else (hours_range[0] * price, hours_range[1] * price))


def compute_from_gpu_hours(gpu_hours: float, gpu: Accelerator, precision: str, mfu: float) -> float:
    """C = GPU-hours x 3600 x peak x MFU."""
    return gpu_hours * SECONDS_PER_HOUR * gpu.peak_flops(precision) * check_mfu(mfu)


def compute_from_usd(budget_usd: float, gpu: Accelerator, precision: str, mfu: float,
                     price_per_hour: float | None = None) -> float:
    """C = (USD / price per hour) x 3600 x peak x MFU; needs a catalog price or an override."""
    price, _ = resolve_price(gpu, price_per_hour)
    if price is None:
        raise BudgetError(f"{gpu.id} has no on-demand price in the catalog; give --price-per-hour")
    return compute_from_gpu_hours(budget_usd / price, gpu, precision, mfu)
