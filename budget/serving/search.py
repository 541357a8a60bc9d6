"""The cheapest deployment meeting the targets: device x tensor parallelism x weight and KV
precision x aggregated or disaggregated pools, each sized by simulation (`deploy.size`).

Configurations that cannot hold the model are listed as refused and never priced. The rest are
tried in order of a lower bound on their fleet price (`deploy.lower_bound_replicas` x GPUs x
$/GPU-hour); once the bound reaches the runner-up's price no untried configuration can win.
Ranking is by $ per 1M tokens at the offered load (rate x (input + output) tokens/s), the same
for every deployment that meets the targets, so it orders them by fleet price.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from budget.errors import BudgetError
from budget.hardware.catalog import Accelerator
from budget.models.arch import Architecture
from budget.serving.deploy import (
    DEFAULT_REQUESTS,
    MODES,
    Config,
    Deployment,
    Unreachable,
    lower_bound_replicas,
    replica,
    size,
    transfer_s,
)
from budget.serving.traffic import Targets, Traffic

TENSOR_PARALLEL = (1, 2, 4, 8)
SEARCH_WEIGHTS = ("bf16", "fp8", "int4")
SEARCH_KV = ("bf16", "fp8")


@dataclass(frozen=True)
class Refused:
    config: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    best: Deployment
    runner_up: Deployment | None
    why_runner_up_lost: str
    sized: int  # configurations simulated and sized
    pruned: int  # skipped: their lower-bound price could not beat the runner-up
    refused: tuple[Refused, ...]  # cannot hold the model, or cannot meet the targets at all

    def to_dict(self) -> dict[str, Any]:
        return {"best": self.best.to_dict(),
                "runner_up": None if self.runner_up is None else self.runner_up.to_dict(),
                "why_runner_up_lost": self.why_runner_up_lost, "sized": self.sized,
                "pruned": self.pruned, "refused": [r.to_dict() for r in self.refused]}


def configurations(gpus: Iterable[Accelerator], modes: Iterable[str] = MODES) -> list[Config]:
    out = []
    for gpu in gpus:
        for tp in TENSOR_PARALLEL:
            if tp > 1 and (not gpu.interconnect_gbs_bidir or tp > (gpu.gpus_per_node or 1)):
                continue
            for w in SEARCH_WEIGHTS:
                for kv in SEARCH_KV:
                    out += [Config(gpu, tp, w, kv, mode) for mode in modes]
    return out


def search(arch: Architecture, gpus: Iterable[Accelerator], traffic: Traffic, targets: Targets,
           n: int = DEFAULT_REQUESTS, seed: int = 0) -> SearchResult:
    """The cheapest and the runner-up deployment of `arch` over the priced `gpus`."""
    refused: list[Refused] = []
    queue: list[tuple[float, int, Any]] = []
    load = traffic.rate * (traffic.input_tokens + traffic.output_tokens)
    for k, cfg in enumerate(configurations(g for g in gpus if g.price_usd_per_hour)):
        try:
            rep = replica(arch, cfg)
            if cfg.mode == "disaggregated":
                transfer_s(rep, 1.0, 2 * cfg.tp)
            lo = lower_bound_replicas(rep, traffic, targets)
        except (BudgetError, Unreachable) as exc:
            refused.append(Refused(cfg.label(), str(exc)))
            continue
        lo = max(lo, 2) if cfg.mode == "disaggregated" else lo
        queue.append((lo * cfg.tp * float(cfg.gpu.price_usd_per_hour or 0), k, rep))
    queue.sort(key=lambda x: (x[0], x[1]))
    found: list[Deployment] = []
    sized = pruned = 0
    for bound, _, rep in queue:
        if len(found) >= 2 and bound >= _usd_h(found[1]):
            pruned += 1
            continue
        try:
            d = size(arch, rep, traffic, targets, n, seed)
        except Unreachable as exc:
            refused.append(Refused(rep.config.label(), str(exc)))
            continue
        sized += 1
        found = sorted([*found, d], key=lambda x: (_usd_h(x), x.gpus))[:2]
    if not found:
        raise BudgetError(f"no configuration meets the targets at {traffic.rate:g} requests/s "
                          f"({len(refused)} refused); relax --ttft-ms/--tpot-ms")
    best = found[0]
    runner = found[1] if len(found) > 1 else None
    return SearchResult(best, runner, _why(best, runner, load), sized, pruned, tuple(refused))


def _usd_h(d: Deployment) -> float:
    return d.usd_per_hour if d.usd_per_hour is not None else float("inf")


def _why(best: Deployment, runner: Deployment | None, load: float) -> str:
    if runner is None:
        return "no other configuration met the targets"
    extra = _usd_h(runner) - _usd_h(best)
    return (f"{runner.gpus} x {runner.gpu} ({runner.replicas} replica"
            f"{'s' * (runner.replicas != 1)}) cost "
            f"${_usd_h(runner):,.2f}/h against ${_usd_h(best):,.2f}/h: "
            f"+${extra / 3600 / load * 1e6:,.4f} per 1M tokens at the offered load")
