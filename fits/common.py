"""Small shared result types and the seeded bootstrap helpers used by every fit."""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

MAX_BOOTSTRAP = 10_000  # resamples: percentile intervals settle by a few thousand (Efron & Tibshirani 1993 §13.3)
RESAMPLE_CHUNK_VALUES = 1 << 22  # weight matrices are drawn in blocks of at most this many values (32 MiB)

# progress(label, done, total): called as bootstrap refits complete (the CLI draws a bar).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval (low, high) at `level` (0.95 = the 2.5th to 97.5th percentile)."""

    low: float
    high: float
    level: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, float | None]:
        return {"low": json_float(self.low), "high": json_float(self.high), "level": self.level}


@dataclass(frozen=True)
class ResidualStats:
    """Residuals (observed - fitted) of a fit, in the space the fit minimises (stated in `space`)."""

    space: str
    n: int
    mean: float
    rmse: float
    mae: float
    max_abs: float

    @classmethod
    def of(cls, residuals: np.ndarray, space: str) -> "ResidualStats":
        r = np.asarray(residuals, dtype=float)
        return cls(space=space, n=int(r.size), mean=float(r.mean()), rmse=float(np.sqrt(np.mean(r**2))),
                   mae=float(np.mean(np.abs(r))), max_abs=float(np.max(np.abs(r))))

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "n": self.n, "mean": self.mean, "rmse": self.rmse,
                "mae": self.mae, "max_abs": self.max_abs}


@dataclass(frozen=True)
class Optimum:
    """A compute-optimal allocation at `flops`: parameters N, tokens D and the loss where known."""

    flops: float
    params: float
    tokens: float
    loss: float | None = None

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    def to_dict(self) -> dict[str, Any]:
        return {"flops": self.flops, "params": self.params, "tokens": self.tokens,
                "tokens_per_param": self.tokens_per_param,
                "loss": None if self.loss is None else json_float(self.loss)}


@dataclass(frozen=True)
class BootstrapInfo:
    """How the intervals were made: resamples requested, refits that succeeded, seed and level."""

    requested: int
    succeeded: int
    seed: int
    level: float
    unit: str = "runs"

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "succeeded": self.succeeded, "seed": self.seed,
                "level": self.level, "resampled": self.unit}


def resample_weights(n: int, reps: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Integer weights (reps, n): how often each run appears in each resample with replacement.

    With `groups`, runs are resampled within each group (e.g. per IsoFLOP budget), keeping its size.
    Large tables should use `iter_resample_weights` (the same draws, a block of rows at a time).
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=reps).astype(float)
    weights = np.zeros((reps, n))
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        weights[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size), size=reps)
    return weights


def resample_blocks(rng: np.random.Generator, n: int, reps: int) -> Iterator[np.ndarray]:
    """`rng.multinomial(n, uniform, size=reps)` drawn in blocks of rows of bounded size (same draws)."""
    rows = max(1, RESAMPLE_CHUNK_VALUES // max(n, 1))
    p = np.full(n, 1.0 / n)
    for start in range(0, reps, rows):
        yield rng.multinomial(n, p, size=min(rows, reps - start)).astype(float)


def iter_resample_weights(n: int, reps: int, seed: int) -> Iterator[np.ndarray]:
    """The rows of `resample_weights(n, reps, seed)` one at a time, in bounded memory."""
    for block in resample_blocks(np.random.default_rng(seed), n, reps):
        yield from block


def group_slices(labels: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distinct labels (sorted) and the indices of each, in O(n log n) (not one mask per label)."""
    order = np.argsort(labels, kind="stable")
    keys, starts = np.unique(labels[order], return_index=True)
    return keys, np.split(order, starts[1:])


def summarise(samples: Mapping[str, np.ndarray], level: float) -> tuple[dict[str, Interval], dict[str, float]]:
    """Percentile intervals and standard errors of bootstrap samples (NaN rows = failed refits)."""
    tail = 100.0 * (1.0 - level) / 2.0
    ci: dict[str, Interval] = {}
    se: dict[str, float] = {}
    for name, values in samples.items():
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size < 2:
            continue
        low, high = np.percentile(v, [tail, 100.0 - tail])
        ci[name] = Interval(float(low), float(high), level)
        se[name] = float(np.std(v, ddof=1))
    return ci, se


def check_level(level: float) -> float:
    """Confidence level strictly between 0 and 1."""
    from fits.errors import FitError

    if not (0.0 < level < 1.0):
        raise FitError(f"confidence level must be between 0 and 1 (e.g. 0.95), got {level}")
    return float(level)


def check_bootstrap(reps: int) -> int:
    """Bootstrap count: a whole number >= 0 (0 = no intervals)."""
    from fits.errors import FitError

    if isinstance(reps, bool) or int(reps) != reps or reps < 0 or reps > MAX_BOOTSTRAP:
        raise FitError(f"bootstrap count must be a whole number from 0 to {MAX_BOOTSTRAP:,}, got {reps!r}")
    return int(reps)


def tick(progress: Progress | None, label: str, done: int, total: int) -> None:
    """Report progress if a callback was given (every call, cheap; the callback may throttle)."""
    if progress is not None:
        progress(label, done, total)


def json_float(value: float) -> float | None:
    """JSON-safe float: NaN and infinities become None."""
    return float(value) if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """Replace NaN and infinities (e.g. a degenerate fit's G) by None, recursively, for strict JSON."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def power_law_fit_loglog(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    """Least squares of log y = log k + a log x (optionally weighted); returns (k, a)."""
    lx, ly = np.log(x), np.log(y)
    if w is None:
        w = np.ones_like(lx)
    a, logk = np.polyfit(lx, ly, 1, w=np.sqrt(w))
    return float(np.exp(logk)), float(a)


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread while fitting (if threadpoolctl is installed).

    scipy's L-BFGS-B calls BLAS on 5-vectors every iteration; on a busy machine OpenBLAS's thread pool
    makes each call ~50x slower (measured: 7 ms instead of 0.15 ms per iteration on 2 loaded cores).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: fits are correct without it, only slower on busy machines
        yield
        return
    import scipy.optimize  # noqa: F401  (loads scipy's own OpenBLAS now, so the limit below reaches it)

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def blas_single_threaded(func: F) -> F:
    """Decorator: run `func` inside `single_blas_thread()`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with single_blas_thread():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
