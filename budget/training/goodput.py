"""Goodput from first principles: failures, checkpoints, restarts and lost work.

Goodput is the share of elapsed (billed) time that advances training (Dubey et al. 2024,
arXiv:2407.21783 §3.3.4, "effective training time"). A synchronous job stops whenever any of its
GPUs fails, so its failure rate is the per-GPU-hour rate of a published fleet times the job's GPU
count (failures assumed independent and memoryless: an exponential time between interruptions).

The checkpoint interval (Young 1974, "A first order approximation to the optimum checkpoint
interval", CACM 17(9); Daly 2006, "A higher order estimate of the optimum checkpoint interval for
restart dumps", FGCS 22(3)). Let tau be the compute time between checkpoints, delta the time one
save stalls training, R the time from an interruption to training again (reschedule, initialise,
reload, warm up) and M the job's mean time between interruptions. Per elapsed hour, to first
order in tau/M and delta/M:

  * saving costs delta / (tau + delta) of the time;
  * interruptions arrive at rate 1/M; each loses the work since the last checkpoint, on average
    half a segment, (tau + delta) / 2, plus the restart R.

  waste(tau) = delta / tau + tau / (2 M) + (delta / 2 + R) / M          (tau >> delta)

  d waste / d tau = -delta / tau^2 + 1 / (2 M) = 0  =>  tau_opt = sqrt(2 delta M)   (Young)

Daly's higher-order estimate is sqrt(2 delta M) - delta for delta < 2M; the difference is below one
save time, so the planner uses Young's form, which the tests check. Goodput = 1 - waste, with the
waste shares computed per elapsed hour as above; a goodput at or below zero is refused (the job
would never finish at that failure rate).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from budget.errors import BudgetError

HOURS_PER_DAY = 24.0
GB = 1e9
# Checkpoint bytes per parameter for mixed-precision Adam: 2 (bf16 weights) + 12 (fp32 master copy,
# momentum, variance) = 14 (Rajbhandari et al. 2020, arXiv:1910.02054 §3.1: 2Psi + 12Psi).
CHECKPOINT_BYTES_PER_PARAM = 14.0
# Storage write bandwidth per GPU when none is given: Llama 3's storage sustained 2 TB/s for
# 16,384 H100 (Dubey et al. 2024 §3.3.1) = 122 MB/s per GPU; assumed to scale with the cluster.
LLAMA3_STORAGE_GBPS = 2000.0
LLAMA3_GPUS = 16384
DEFAULT_WRITE_GBPS_PER_GPU = LLAMA3_STORAGE_GBPS / LLAMA3_GPUS
# Restart and warm-up: our assumption (no published figure found): 10 minutes to reschedule,
# initialise the process group and warm up, plus reading the checkpoint back.
DEFAULT_RESTART_MINUTES = 10.0


@dataclass(frozen=True)
class FailureSource:
    """A published fleet's interruption count: the per-GPU-hour rate it implies."""

    id: str
    interruptions: float
    days: float
    gpus: int
    source: str
    all_causes: bool = True  # False: one cause only (GPU faults), a bound rather than the rate

    @property
    def mtbf_gpu_hours(self) -> float:
        """GPU-hours per interruption = GPUs x days x 24 / interruptions."""
        return self.gpus * self.days * HOURS_PER_DAY / self.interruptions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"mtbf_gpu_hours": self.mtbf_gpu_hours}


FAILURE_SOURCES = {
    "llama3": FailureSource(
        "llama3", 419, 54, 16384,
        "Llama 3 405B: 419 unexpected interruptions in a 54-day snapshot on 16,384 H100 "
        "(Dubey et al. 2024, arXiv:2407.21783 §3.3.4, Table 5); 47 planned ones left out"),
    "opt": FailureSource(
        "opt", 105, 61, 992,
        "OPT-175B: at least 35 manual and about 70 automatic restarts over about 2 months on 992 "
        "A100 (Zhang et al. 2022, arXiv:2205.01068 §2.5, and its logbook); approximate: '2 months' "
        "read as 61 days, '70+' as 70"),
    "lablup-b200": FailureSource(
        "lablup-b200", 10, 55, 504,
        "Lablup et al. 2026, arXiv:2605.09370 (abstract): 10 XID-identified GPU failures in 55 days "
        "of monitoring on 504 B200; GPU faults only, so an upper bound on the MTBF", all_causes=False),
}
DEFAULT_FAILURE_SOURCE = "llama3"


def check_positive(name: str, value: float, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise BudgetError(f"{name} {value!r} must be a positive number ({allowed})")
    return float(value)


def job_mtbf_hours(mtbf_gpu_hours: float, num_gpus: int,
                   preemptions_per_gpu_hour: float = 0.0) -> float:
    """Hours between interruptions of a job on `num_gpus`: failures plus spot preemptions, both
    per GPU-hour, scaled by the GPU count (any GPU lost stops a synchronous job)."""
    rate = num_gpus * (1.0 / check_positive("MTBF", mtbf_gpu_hours, "GPU-hours per interruption")
                       + preemptions_per_gpu_hour)
    return 1.0 / rate


def checkpoint_bytes(params: float, bytes_per_param: float = CHECKPOINT_BYTES_PER_PARAM) -> float:
    """Weights plus optimizer state, summed over all shards (each rank writes its own)."""
    return params * bytes_per_param


def save_seconds(params: float, write_gbps: float,
                 bytes_per_param: float = CHECKPOINT_BYTES_PER_PARAM) -> float:
    """Seconds one synchronous save stalls training: checkpoint bytes / aggregate write bandwidth."""
    return checkpoint_bytes(params, bytes_per_param) / (
        check_positive("checkpoint write bandwidth", write_gbps, "GB/s, e.g. 100") * GB)


def young_interval_hours(save_hours: float, mtbf_hours: float) -> float:
    """tau_opt = sqrt(2 delta M) (Young 1974; derivation in the module docstring)."""
    return math.sqrt(2.0 * save_hours * mtbf_hours)


def waste_shares(interval_h: float, save_h: float, restart_h: float,
                 mtbf_h: float) -> dict[str, float]:
    """Share of elapsed time lost to each cause at checkpoint interval `interval_h`."""
    return {"checkpoint": save_h / (interval_h + save_h),
            "rework": (interval_h + save_h) / (2.0 * mtbf_h),
            "restart": restart_h / mtbf_h}


@dataclass(frozen=True)
class Goodput:
    """Goodput of one run with the interval, the interruptions and the hours lost to each cause."""

    goodput: float
    num_gpus: int
    mtbf_gpu_hours: float
    preemptions_per_gpu_hour: float
    job_mtbf_hours: float
    checkpoint_bytes: float
    write_gbps: float
    save_seconds: float
    restart_minutes: float
    interval_hours: float
    interval_rule: str
    useful_hours: float  # wall clock of pure training
    elapsed_hours: float  # useful / goodput
    expected_interruptions: float
    hours_lost: dict[str, float]  # wall-clock hours per cause: checkpoint, rework, restart
    failure_source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def goodput(*, params: float, num_gpus: int, useful_hours: float,
            mtbf_gpu_hours: float | None = None, write_gbps: float | None = None,
            restart_minutes: float = DEFAULT_RESTART_MINUTES,
            preemptions_per_gpu_hour: float = 0.0, interval_hours: float | None = None,
            bytes_per_param: float = CHECKPOINT_BYTES_PER_PARAM,
            failure_source: str = DEFAULT_FAILURE_SOURCE) -> Goodput:
    """Goodput of a run of `useful_hours` pure training on `num_gpus` for a model of `params`.

    `mtbf_gpu_hours` None: the failure source's rate; `write_gbps` None: 0.122 GB/s per GPU
    (Llama 3's storage); `interval_hours` None: Young's optimum. Restart = `restart_minutes` plus
    reading the checkpoint back at the write bandwidth."""
    if failure_source not in FAILURE_SOURCES:
        raise BudgetError(f"failure source {failure_source!r} is unknown; choose one of "
                          f"{', '.join(FAILURE_SOURCES)}")
    src = FAILURE_SOURCES[failure_source]
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1:
        raise BudgetError(f"number of GPUs {num_gpus!r} must be a whole number >= 1")
    mtbf_g = src.mtbf_gpu_hours if mtbf_gpu_hours is None else \
        check_positive("--mtbf-hours", mtbf_gpu_hours, "GPU-hours per interruption, e.g. 50000")
    if preemptions_per_gpu_hour < 0 or not math.isfinite(preemptions_per_gpu_hour):
        raise BudgetError(f"preemption rate {preemptions_per_gpu_hour!r} must be >= 0 per GPU-hour")
    if restart_minutes < 0 or not math.isfinite(restart_minutes):
        raise BudgetError(f"--restart-minutes {restart_minutes!r} must be >= 0")
    gbps = DEFAULT_WRITE_GBPS_PER_GPU * num_gpus if write_gbps is None else write_gbps
    ckpt = checkpoint_bytes(params, bytes_per_param)
    save_s = save_seconds(params, gbps, bytes_per_param)
    save_h = save_s / 3600.0
    mtbf = job_mtbf_hours(mtbf_g, num_gpus, preemptions_per_gpu_hour)
    restart_h = restart_minutes / 60.0 + save_h  # reload at the same bandwidth
    rule = "Young 1974: sqrt(2 x save x MTBF)"
    if interval_hours is None:
        tau = young_interval_hours(save_h, mtbf)
    else:
        tau, rule = check_positive("checkpoint interval", interval_hours, "hours"), "given"
    shares = waste_shares(tau, save_h, restart_h, mtbf)
    g = 1.0 - sum(shares.values())
    if g <= 0.0:
        raise BudgetError(f"goodput would be {g:.2f}: one interruption every {mtbf:.2g} h on "
                          f"{num_gpus} GPUs leaves no time to train; use fewer GPUs or a larger "
                          "--mtbf-hours")
    elapsed = check_positive("training hours", useful_hours, "hours") / g
    return Goodput(
        goodput=g, num_gpus=num_gpus, mtbf_gpu_hours=mtbf_g,
        preemptions_per_gpu_hour=preemptions_per_gpu_hour, job_mtbf_hours=mtbf,
        checkpoint_bytes=ckpt, write_gbps=gbps, save_seconds=save_s,
        restart_minutes=restart_minutes, interval_hours=tau, interval_rule=rule,
        useful_hours=useful_hours, elapsed_hours=elapsed, expected_interruptions=elapsed / mtbf,
        hours_lost={k: v * elapsed for k, v in shares.items()},
        failure_source=src.source if mtbf_gpu_hours is None else "--mtbf-hours")
