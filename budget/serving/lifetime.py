"""The serving price of a model of N parameters, for `plan --inference-tokens ... --serving ...`.

Lifetime inference is priced the way the deployment will run instead of at 2 N FLOPs per token
and training MFU: the plan's family shape for N (`budget.models.families.shape_for_params`), on
the plan's GPU, at the smallest tensor parallelism (1, 2, 4, 8) that holds it in the given weight
precision, sized by the continuous-batching simulator (`budget.serving.deploy.size`) to the
stated traffic and targets; $ per token = the fleet's $/hour over the offered tokens/s (input +
output). The inference-aware choice of N itself stays Sardana & Frankle's FLOP objective.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

from budget.errors import BudgetError
from budget.hardware.catalog import Accelerator
from budget.serving.cost import DoesNotFit
from budget.serving.deploy import Config, Unreachable, replica, size
from budget.serving.traffic import Targets, Traffic

SERVE_REQUESTS = 1000  # simulated requests per sizing (each plan prices two or a few models)
KEYS = {"rate": "rate", "input": "input_tokens", "output": "output_tokens",
        "ttft-ms": "ttft_ms", "tpot-ms": "tpot_ms", "percentile": "percentile",
        "weights": "weights", "kv": "kv"}
EXAMPLE = "rate=20,input=2000,output=300,ttft-ms=500,tpot-ms=40"


@dataclass(frozen=True)
class ServingTarget:
    """The traffic and targets the planned model will be served under."""

    traffic: Traffic
    targets: Targets
    weights: str = "bf16"
    kv: str = "bf16"

    def describe(self) -> str:
        t, g = self.traffic, self.targets
        want = ", ".join(f"{k} {v:g} ms" for k, v in (("TTFT", g.ttft_ms), ("TPOT", g.tpot_ms))
                         if v is not None) or "no latency target"
        return (f"{t.rate:g} requests/s of {t.input_tokens:g} + {t.output_tokens:g} tokens, "
                f"{want} at p{g.percentile:g}, {self.weights} weights, {self.kv} KV")

    def to_dict(self) -> dict[str, Any]:
        return {"traffic": self.traffic.to_dict(), "targets": self.targets.to_dict(),
                "weights": self.weights, "kv": self.kv}


def parse_serving(text: str) -> ServingTarget:
    """`rate=20,input=2000,output=300,ttft-ms=500,tpot-ms=40` (percentile, weights, kv optional)."""
    got: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in KEYS or key in got:
            raise BudgetError(f"--serving {text!r}: {part.strip()!r} is not one of "
                              f"{', '.join(k + '=' for k in KEYS)} (e.g. {EXAMPLE})")
        got[key] = value.strip()
    missing = [k for k in ("rate", "input", "output") if k not in got]
    if missing:
        raise BudgetError(f"--serving {text!r} lacks {', '.join(missing)} (e.g. {EXAMPLE})")
    try:
        nums = {KEYS[k]: float(v) for k, v in got.items() if k not in ("weights", "kv")}
    except ValueError:
        raise BudgetError(f"--serving {text!r}: every value but weights and kv is a number "
                          f"(e.g. {EXAMPLE})") from None
    traffic = Traffic(nums["rate"], nums["input_tokens"], nums["output_tokens"])
    targets = Targets(nums.get("ttft_ms"), nums.get("tpot_ms"), nums.get("percentile", 95.0))
    return ServingTarget(traffic, targets, got.get("weights", "bf16"), got.get("kv", "bf16"))


@dataclass(frozen=True)
class ServedModel:
    """How a model of `params` parameters is served at the target, and at what price."""

    params: float
    gpu: str
    tp: int
    replicas: int
    usd_per_million_tokens: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pricer(target: ServingTarget, gpu: Accelerator, family: str, n_ctx: int,
           price_per_hour: float | None = None) -> Callable[[float], ServedModel]:
    """params -> the cheapest-tp deployment of the family shape at the target (cached by N)."""
    if (price_per_hour or gpu.price_usd_per_hour) is None:
        raise BudgetError(f"--serving needs a price: {gpu.id} has none in the catalog; give "
                          f"--price-per-hour")
    from budget.models.families import shape_for_params

    n_ctx = max(n_ctx, int(target.traffic.input_tokens + target.traffic.output_tokens))

    @lru_cache(maxsize=64)
    def served(params: float) -> ServedModel:
        arch = replace(shape_for_params(params, family, count="total", n_ctx=n_ctx),
                       name=f"{family} {params:.3g}")
        reasons = []
        for tp in (1, 2, 4, 8):
            cfg = Config(gpu, tp, target.weights, target.kv, price_per_hour=price_per_hour)
            try:
                dep = size(arch, replica(arch, cfg), target.traffic, target.targets,
                           SERVE_REQUESTS)
            except (DoesNotFit, Unreachable) as exc:
                reasons.append(str(exc))
                continue
            except BudgetError as exc:  # e.g. no interconnect for tp > 1
                reasons.append(str(exc))
                break
            return ServedModel(params, gpu.id, tp, dep.replicas,
                               float(dep.usd_per_million_tokens or 0.0))
        raise BudgetError(f"a {params:.3g}-parameter {family} model cannot be served on {gpu.id} "
                          f"at {target.describe()}: {reasons[-1] if reasons else 'no layout'}")
    return served
