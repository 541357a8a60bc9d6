"""A traffic profile (arrival rate, prompt and output lengths) and service-level targets.

Arrivals are Poisson at `rate` requests/s (exponential gaps), the usual open-loop load of serving
benchmarks (vLLM `benchmark_serving.py --request-rate`). Lengths are either fixed (spread 0), or
log-normal with the given mean and standard deviation (moments matched: sigma^2 = ln(1 + (s/m)^2),
mu = ln m - sigma^2 / 2), rounded to whole tokens >= 1; or drawn from a small CSV trace of
`input_tokens,output_tokens` rows (resampled with replacement, seeded).
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from budget.errors import BudgetError

PERCENTILES = (50.0, 95.0, 99.0)
MAX_TRACE_ROWS = 1_000_000


@dataclass(frozen=True)
class Traffic:
    """Requests/s and token lengths: mean and spread (standard deviation), or a trace."""

    rate: float
    input_tokens: float
    output_tokens: float
    input_spread: float = 0.0
    output_spread: float = 0.0
    trace: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    trace_name: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise BudgetError(f"--rate {self.rate!r} must be a finite number of requests/s > 0")
        for name, v in (("--input-tokens", self.input_tokens), ("--output-tokens",
                                                               self.output_tokens)):
            if not (math.isfinite(v) and v >= 1):
                raise BudgetError(f"{name} {v!r} must be a finite number of tokens >= 1")
        for name, v in (("--input-spread", self.input_spread), ("--output-spread",
                                                               self.output_spread)):
            if not (math.isfinite(v) and v >= 0):
                raise BudgetError(f"{name} {v!r} must be a finite number of tokens >= 0")

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arrival times (s), prompt and output lengths of `n` requests, seeded."""
        rng = np.random.default_rng(seed)
        arrivals = np.cumsum(rng.exponential(1.0 / self.rate, n))
        if self.trace:
            rows = np.asarray(self.trace, dtype=np.int64)
            pick = rows[rng.integers(0, len(rows), n)]
            return arrivals, pick[:, 0].copy(), pick[:, 1].copy()
        return (arrivals, _lengths(rng, self.input_tokens, self.input_spread, n),
                _lengths(rng, self.output_tokens, self.output_spread, n))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["trace"] = len(self.trace)
        return out


def _lengths(rng: np.random.Generator, mean: float, spread: float, n: int) -> np.ndarray:
    if spread == 0:
        return np.full(n, max(1, round(mean)), dtype=np.int64)
    s2 = math.log1p((spread / mean) ** 2)
    x = rng.lognormal(math.log(mean) - s2 / 2, math.sqrt(s2), n)
    return np.maximum(1, np.rint(x)).astype(np.int64)


def read_trace(path: str | Path) -> tuple[tuple[int, int], ...]:
    """Rows of `input_tokens,output_tokens` (a header line with those names is optional)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BudgetError(f"--trace {str(p)!r} cannot be read ({exc.__class__.__name__}); give a "
                          f"CSV file of input_tokens,output_tokens rows") from None
    rows: list[tuple[int, int]] = []
    for i, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or (i == 1 and row[0].strip().lower() == "input_tokens"):
            continue
        try:
            a, b = (int(x) for x in row[:2])
            if len(row) != 2 or a < 1 or b < 1:
                raise ValueError
        except ValueError:
            raise BudgetError(f"--trace {p.name} line {i}: {','.join(row)[:60]!r} is not two whole "
                              f"token counts >= 1 (input_tokens,output_tokens)") from None
        rows.append((a, b))
        if len(rows) > MAX_TRACE_ROWS:
            raise BudgetError(f"--trace {p.name} has more than {MAX_TRACE_ROWS:,} rows")
    if not rows:
        raise BudgetError(f"--trace {p.name} has no input_tokens,output_tokens rows")
    return tuple(rows)


def traffic_from_trace(rate: float, path: str | Path) -> Traffic:
    rows = read_trace(path)
    arr = np.asarray(rows, dtype=float)
    return Traffic(rate, float(arr[:, 0].mean()), float(arr[:, 1].mean()),
                   float(arr[:, 0].std()), float(arr[:, 1].std()), rows, Path(path).name)


@dataclass(frozen=True)
class Targets:
    """TTFT and TPOT bounds (ms) that `percentile` of requests must meet."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    percentile: float = 95.0

    def __post_init__(self) -> None:
        for name, v in (("--ttft-ms", self.ttft_ms), ("--tpot-ms", self.tpot_ms)):
            if v is not None and not (math.isfinite(v) and v > 0):
                raise BudgetError(f"{name} {v!r} must be a finite number of milliseconds > 0")
        if not 0 < self.percentile < 100:
            raise BudgetError(f"--percentile {self.percentile!r} must be in (0, 100)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
