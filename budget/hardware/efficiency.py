"""The step-time model's efficiency constants (efficiency.toml): per device and precision kernel
factor, the width scale h_half and the collective link efficiency, each with its source."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

EFFICIENCY_FILE = Path(__file__).with_name("efficiency.toml")
POOLED = "*"


@dataclass(frozen=True)
class Efficiency:
    """Constants read from efficiency.toml."""

    kernel_factors: tuple[tuple[str, tuple[str, ...], float, str], ...]  # device, precisions, value, source
    h_half: float
    h_half_source: str
    link_efficiency: float
    link_efficiency_source: str
    loo_log_ratios: tuple[float, ...] = ()  # ln(LOO predicted / measured step), budget validate

    def kernel_factor(self, device: str, precision: str) -> tuple[float, str]:
        """(value, source) for `device` at `precision`, else the pooled row."""
        for dev, precs, value, source in self.kernel_factors:
            if dev == device and precision in precs:
                return value, source
        for dev, _, value, source in self.kernel_factors:
            if dev == POOLED:
                return value, f"no runs on {device}/{precision}: {source}"
        raise ValueError("efficiency.toml has no pooled kernel_factor row (device = '*')")


@lru_cache(maxsize=1)
def efficiency() -> Efficiency:
    data = tomllib.loads(EFFICIENCY_FILE.read_text(encoding="utf-8"))
    rows = tuple((r["device"], tuple(r["precisions"]), float(r["value"]), r["source"])
                 for r in data["kernel_factor"])
    return Efficiency(rows, float(data["h_half"]), data["h_half_source"],
                      float(data["link_efficiency"]), data["link_efficiency_source"],
                      tuple(float(x) for x in data.get("loo_log_ratios", ())))
