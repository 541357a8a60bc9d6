"""Dated price rows: several per device (provider, tier, region, date read, source).

The `[[price]]` tables of a catalog file (the built-in `accelerators.toml` keeps them in one block
at its end). Each accelerator's own `price_usd_per_hour` is its default row. A spot row carries the
share of instances the provider interrupts per month (AWS Spot Instance Advisor's band midpoint);
`preemptions_per_gpu_hour` turns it into a rate for goodput (budget.training.goodput).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from budget.errors import BudgetError, CatalogError

if TYPE_CHECKING:
    from budget.hardware.catalog import Accelerator

TIERS = ("on-demand", "spot", "reserved-1y", "reserved-3y")
HOURS_PER_MONTH = 730.0  # 8,760 h / 12
GPUS_PER_INSTANCE = 8  # the 8-GPU instances spot advisors rate (p4d, p5)
# A spot row whose provider publishes no interruption figure: AWS p5.48xlarge's 15-20% band
# (AWS Spot Instance Advisor, data pulled 2026-02-24, as quoted by thundercompute.com), assumed.
ASSUMED_SPOT_INTERRUPTION_PCT = 17.5
_KEYS = ("device", "provider", "tier", "usd_per_hour", "date", "source", "region",
         "interruption_pct_month", "verified")


@dataclass(frozen=True)
class PriceRow:
    """One dated $/accelerator-hour quote."""

    device: str
    provider: str
    tier: str
    usd_per_hour: float
    date: str
    source: str
    region: str = ""
    interruption_pct_month: float | None = None
    verified: bool = True
    default: bool = False  # the accelerator row's own price (the plan's price without options)

    @property
    def preemptions_per_gpu_hour(self) -> float:
        """Spot: interrupted share per instance-month / 730 h / 8 GPUs; 0 for other tiers."""
        if self.tier != "spot":
            return 0.0
        pct = ASSUMED_SPOT_INTERRUPTION_PCT if self.interruption_pct_month is None \
            else self.interruption_pct_month
        return pct / 100.0 / HOURS_PER_MONTH / GPUS_PER_INSTANCE

    @property
    def preemption_source(self) -> str:
        if self.tier != "spot":
            return ""
        if self.interruption_pct_month is None:
            return (f"assumed {ASSUMED_SPOT_INTERRUPTION_PCT:g}%/month per 8-GPU instance (AWS p5 "
                    "Spot Instance Advisor band; this provider publishes none)")
        return f"{self.interruption_pct_month:g}%/month per 8-GPU instance ({self.provider} band)"

    def label(self) -> str:
        where = f", {self.region}" if self.region and self.region != "not stated" else ""
        mark = "" if self.verified else ", unverified"
        return f"{self.tier}, {self.provider}{where}, read {self.date}{mark}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"preemptions_per_gpu_hour": self.preemptions_per_gpu_hour}


def default_row(acc: Accelerator) -> PriceRow | None:
    """The accelerator row's own price as a price row (None when it has none)."""
    if acc.price_usd_per_hour is None:
        return None
    return PriceRow(device=acc.id, provider=acc.price_provider or "catalog", tier="on-demand",
                    usd_per_hour=acc.price_usd_per_hour, date=acc.price_date,
                    source=acc.sources.get("price", ""), default=True)


def parse_prices(path: Path, data: dict[str, Any]) -> list[PriceRow]:
    """The `[[price]]` tables of one parsed file; CatalogError names the file, row and field."""
    rows = data.get("price", [])
    if not isinstance(rows, list):
        raise CatalogError(f"catalog file {path}: 'price' must be [[price]] tables")
    return [_parse(f"catalog {path}, price #{i}", row) for i, row in enumerate(rows, start=1)]


def _parse(where: str, row: Any) -> PriceRow:
    if not isinstance(row, dict):
        raise CatalogError(f"{where}: not a table")
    unknown = [k for k in row if k not in _KEYS]
    missing = [k for k in ("device", "provider", "tier", "usd_per_hour", "date", "source")
               if k not in row]
    if unknown or missing:
        raise CatalogError(f"{where}: " + "; ".join(
            [f"missing field '{k}'" for k in missing] + [f"unknown field '{k}'" for k in unknown])
            + f"; the fields are {', '.join(_KEYS)}")
    for key in ("device", "provider", "date", "source"):
        if not isinstance(row[key], str) or not row[key].strip():
            raise CatalogError(f"{where}: field '{key}' must be a non-empty string")
    if row["tier"] not in TIERS:
        raise CatalogError(f"{where}: tier {row['tier']!r} is not one of {', '.join(TIERS)}")
    usd = row["usd_per_hour"]
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not math.isfinite(usd) \
            or not 1e-4 <= usd <= 1e4:
        raise CatalogError(f"{where}: usd_per_hour {usd!r} must be a number in 0.0001-10000")
    pct = row.get("interruption_pct_month")
    if pct is not None and (isinstance(pct, bool) or not isinstance(pct, (int, float))
                            or not 0 <= pct <= 100):
        raise CatalogError(f"{where}: interruption_pct_month {pct!r} must be a percentage 0-100")
    if pct is not None and row["tier"] != "spot":
        raise CatalogError(f"{where}: interruption_pct_month belongs on a spot row only")
    verified = row.get("verified", True)
    if not isinstance(verified, bool):
        raise CatalogError(f"{where}: verified {verified!r} must be true or false")
    return PriceRow(device=row["device"], provider=row["provider"], tier=row["tier"],
                    usd_per_hour=float(usd), date=row["date"], source=row["source"],
                    region=str(row.get("region", "")),
                    interruption_pct_month=None if pct is None else float(pct), verified=verified)


def select(rows: list[PriceRow], device: str, tier: str | None,
           provider: str | None) -> PriceRow:
    """The row for `device` at `tier` and/or `provider` (cheapest when several match); BudgetError
    naming what exists otherwise."""
    if tier is not None and tier not in TIERS:
        raise BudgetError(f"--price-tier {tier!r} is unknown; choose one of {', '.join(TIERS)}")
    mine = [r for r in rows if r.device == device]
    match = [r for r in mine if (tier is None or r.tier == tier)
             and (provider is None or r.provider.lower() == provider.strip().lower())]
    if not match:
        have = "; ".join(sorted({f"{r.tier} {r.provider}" for r in mine})) or "none"
        asked = (tier or "") + (f" price from provider {provider!r}" if provider else " price")
        raise BudgetError(f"no {asked.strip()} for {device} in the catalog; it has: {have} "
                          "(budget gpus --prices)")
    return min(match, key=lambda r: r.usd_per_hour)
