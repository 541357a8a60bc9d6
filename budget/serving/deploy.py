"""A deployment under traffic: replicas of one configuration, simulated, priced, sized to targets.

A configuration is a device, tensor parallelism tp, weight and KV precision, and either one pool
of aggregated replicas (prefill and decode share each iteration) or disaggregated prefill and
decode pools (DistServe, Zhong et al. OSDI 2024; Splitwise, Patel et al. ISCA 2024) with the
prompt's KV cache sent from a prefill to a decode replica over the catalog's links: the
scale-up link (NVLink) when both pools fit in one node, the scale-out NIC otherwise, tp links in
parallel. Requests are spread uniformly at random over the replicas of a pool, so one simulated
replica at rate / replicas stands for all of them (a Poisson stream split at random stays
Poisson); a decode replica's arrivals are taken as Poisson too (the superposition of many
prefill replicas' departures). The first `WARMUP` of the simulated requests are left out of the
percentiles (the replica starts empty).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from budget.errors import BudgetError
from budget.hardware.catalog import Accelerator
from budget.models.arch import Architecture
from budget.serving import cost as C
from budget.serving.quantization import quant_format
from budget.serving.simulate import Scheduler, Trace, percentiles, simulate
from budget.serving.steps import StepModel, step_model
from budget.serving.traffic import PERCENTILES, Targets, Traffic

MODES = ("aggregated", "disaggregated")
WARMUP = 0.1  # share of the simulated requests left out of the percentiles
DEFAULT_REQUESTS = 2000  # simulated requests per pool (benchmarks/bench_serve_sim.py times 10,000)
MAX_REPLICAS = 4096


@dataclass(frozen=True)
class Config:
    """One deployable configuration (per replica: `tp` GPUs)."""

    gpu: Accelerator
    tp: int = 1
    weights: str = "bf16"
    kv: str = "bf16"
    mode: str = "aggregated"
    flops_efficiency: float = C.DEFAULT_FLOPS_EFFICIENCY
    memory_efficiency: float = C.DEFAULT_MEMORY_EFFICIENCY
    memory_fraction: float = C.DEFAULT_MEMORY_FRACTION
    price_per_hour: float | None = None

    @property
    def price(self) -> float | None:
        return self.price_per_hour if self.price_per_hour is not None else \
            self.gpu.price_usd_per_hour

    def label(self) -> str:
        return f"{self.gpu.id} tp{self.tp} {self.weights} weights, {self.kv} KV, {self.mode}"


@dataclass(frozen=True)
class Replica:
    """A configuration made concrete for a model: its step times and KV blocks (per replica)."""

    config: Config
    step: StepModel
    scheduler: Scheduler
    weight_bytes: float
    kv_bytes_per_token: float  # whole replica, at the KV precision


def replica(arch: Architecture, cfg: Config, scheduler: Scheduler | None = None) -> Replica:
    """Step model and KV blocks of `cfg`; DoesNotFit when the weights leave no room for a block."""
    if cfg.mode not in MODES:
        raise BudgetError(f"mode {cfg.mode!r} is unknown; choose one of {', '.join(MODES)}")
    fmt = quant_format(cfg.weights)
    precision = C.compute_precision(cfg.gpu, cfg.weights)
    if cfg.tp > 1 and not cfg.gpu.interconnect_gbs_bidir:
        raise BudgetError(f"{cfg.gpu.id} has no interconnect in the catalog: tensor parallelism "
                          f"needs one (use --num-gpus 1)")
    w = arch.params_total() * fmt.bytes_per_weight
    kv_tok = arch.kv_cache_bytes_per_token(C.KV_PRECISIONS[cfg.kv])
    block = (scheduler or Scheduler(0)).block_size
    room = cfg.gpu.memory_bytes * cfg.memory_fraction - w / cfg.tp
    per_block = kv_tok * C.kv_share(arch, cfg.tp) * block
    blocks = math.floor(room / per_block) if room > 0 else 0
    if blocks < 1:
        raise C.DoesNotFit(f"{arch.name or 'the model'} does not fit on {cfg.tp} x {cfg.gpu.id}: "
                           f"{cfg.weights} weights take {w / cfg.tp / 1e9:,.1f} GB per GPU of "
                           f"{cfg.gpu.memory_bytes * cfg.memory_fraction / 1e9:,.1f} GB usable")
    sched = replace(scheduler or Scheduler(blocks), kv_blocks=blocks)
    step = step_model(arch, cfg.gpu, precision, fmt.bytes_per_weight, C.KV_PRECISIONS[cfg.kv],
                      cfg.tp, cfg.flops_efficiency, cfg.memory_efficiency,
                      sched.max_batched_tokens, sched.max_seqs)
    return Replica(cfg, step, sched, w, kv_tok)


def transfer_s(rep: Replica, prompt_tokens: float, pool_gpus: int) -> float:
    """KV cache of a prompt over tp links: scale-up when the pools fit one node, else scale-out."""
    gpu = rep.config.gpu
    in_node = gpu.gpus_per_node is not None and pool_gpus <= gpu.gpus_per_node
    link = gpu.scale_up_gbs_per_dir if in_node else gpu.scale_out_gbs_per_dir
    if not link:
        raise BudgetError(f"{gpu.id} has no {'scale-up' if in_node else 'scale-out'} link in the "
                          f"catalog: disaggregated pools cannot send the KV cache; use aggregated")
    return rep.kv_bytes_per_token * prompt_tokens / (rep.config.tp * link * 1e9)


@dataclass(frozen=True)
class Deployment:
    """A sized deployment, its simulated latency percentiles and its price."""

    model: str
    gpu: str
    tp: int
    weights: str
    kv: str
    mode: str
    replicas: int  # aggregated replicas, or prefill + decode replicas
    prefill_replicas: int
    decode_replicas: int
    gpus: int
    traffic: dict[str, Any]
    targets: dict[str, Any]
    ttft_ms: dict[str, float]
    tpot_ms: dict[str, float]
    meets: bool
    requests_per_s: float
    output_tokens_per_s: float
    tokens_per_s: float  # input + output
    kv_used_mean: float  # tokens cached / KV capacity, time-averaged over busy time
    kv_blocks_per_replica: int
    kv_transfer_ms: float | None
    usd_per_hour: float | None
    usd_per_million_tokens: float | None  # input + output, at the offered load
    usd_per_million_output: float | None
    simulated_requests: int
    seed: int
    scheduler: dict[str, Any]
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out


def run_pool(rep: Replica, traffic: Traffic, replicas: int, n: int, seed: int,
             prefilled: bool = False, outputs_one: bool = False) -> Trace:
    """One replica of a pool of `replicas` at rate / replicas."""
    arrivals, inputs, outputs = replace(traffic, rate=traffic.rate / replicas).sample(n, seed)
    if outputs_one:
        outputs = np.ones_like(outputs)
    return simulate(rep.step, rep.scheduler, arrivals, inputs, outputs, prefilled=prefilled)


def _steady(x: np.ndarray, n: int) -> np.ndarray:
    return x[int(n * WARMUP):]


def _meets(values: np.ndarray, target_ms: float | None, pct: float) -> bool:
    """No target, or no request to measure (TPOT of one-token outputs), or the percentile meets it."""
    return target_ms is None or len(values) == 0 or \
        float(np.percentile(values, pct)) * 1e3 <= target_ms


def evaluate(arch: Architecture, rep: Replica, traffic: Traffic, targets: Targets,
             replicas: int | tuple[int, int], n: int = DEFAULT_REQUESTS,
             seed: int = 0) -> Deployment:
    """Simulate `replicas` (aggregated) or (prefill, decode) replicas of `rep` under `traffic`."""
    cfg = rep.config
    if cfg.mode == "aggregated":
        r = replicas if isinstance(replicas, int) else sum(replicas)
        tr = run_pool(rep, traffic, r, n, seed)
        ttft, tpot = _steady(tr.ttft, n), _steady(tr.tpot, n)
        pools, gpus, transfer, kv_used = (r, 0), r * cfg.tp, None, tr.kv_used_mean
        span = float(tr.finish.max() - tr.arrival.min())
        rps, out_tok, all_tok = n / span * r, tr.output_tokens.sum() / span * r, \
            (tr.output_tokens.sum() + tr.input_tokens.sum()) / span * r
    else:
        p, d = replicas if isinstance(replicas, tuple) else (replicas, replicas)
        gpus = (p + d) * cfg.tp
        pre = run_pool(rep, traffic, p, n, seed, outputs_one=True)
        dtr = run_pool(rep, traffic, d, n, seed + 1, prefilled=True)
        move = transfer_s(rep, 1.0, gpus)  # per prompt token
        ttft = _steady(pre.ttft, n)
        many = dtr.output_tokens > 1
        tpot = _steady((dtr.finish[many] - dtr.arrival[many] + move * dtr.input_tokens[many])
                       / (dtr.output_tokens[many] - 1), n)
        pools, transfer, kv_used = (p, d), move * traffic.input_tokens, dtr.kv_used_mean
        span_p = float(pre.finish.max() - pre.arrival.min())
        span_d = float(dtr.finish.max() - dtr.arrival.min())
        rps = min(n / span_p * p, n / span_d * d)
        out_tok = dtr.output_tokens.sum() / span_d * d
        all_tok = out_tok + pre.input_tokens.sum() / span_p * p
    price = cfg.price
    offered = traffic.rate * (traffic.input_tokens + traffic.output_tokens)  # tokens/s served
    usd_h = None if price is None else price * gpus
    meets = _meets(ttft, targets.ttft_ms, targets.percentile) and \
        _meets(tpot, targets.tpot_ms, targets.percentile)
    notes = [] if price is not None else [f"no price for {cfg.gpu.id}: give --price-per-hour"]
    return Deployment(
        model=arch.name, gpu=cfg.gpu.id, tp=cfg.tp, weights=cfg.weights, kv=cfg.kv,
        mode=cfg.mode, replicas=sum(pools), prefill_replicas=pools[0] if cfg.mode !=
        "aggregated" else 0, decode_replicas=pools[1], gpus=gpus, traffic=traffic.to_dict(),
        targets=targets.to_dict(), ttft_ms=percentiles(ttft, PERCENTILES),
        tpot_ms=percentiles(tpot, PERCENTILES), meets=meets, requests_per_s=rps,
        output_tokens_per_s=float(out_tok), tokens_per_s=float(all_tok), kv_used_mean=kv_used,
        kv_blocks_per_replica=rep.scheduler.kv_blocks,
        kv_transfer_ms=None if transfer is None else transfer * 1e3, usd_per_hour=usd_h,
        usd_per_million_tokens=None if usd_h is None else usd_h / 3600 / offered * 1e6,
        usd_per_million_output=None if usd_h is None else
        usd_h / 3600 / (traffic.rate * traffic.output_tokens) * 1e6,
        simulated_requests=n, seed=seed, scheduler=rep.scheduler.to_dict(), notes=tuple(notes))


def lower_bound_replicas(rep: Replica, traffic: Traffic, targets: Targets) -> int:
    """Replicas no fewer than: the roofline's tokens/s ceiling, and Little's law with the KV- and
    max_seqs-limited concurrency at the least possible latency. Raises when no count can meet the
    targets (a request alone is already too slow)."""
    st, sch = rep.step, rep.scheduler
    prompt, gen = traffic.input_tokens, traffic.output_tokens
    alone_ttft = st.prefill_s(min(round(prompt), sch.max_batched_tokens)) * \
        math.ceil(prompt / sch.max_batched_tokens)
    alone_tpot = st.decode_s(1, prompt + gen / 2)
    for name, alone, target in (("TTFT", alone_ttft, targets.ttft_ms),
                                ("TPOT", alone_tpot, targets.tpot_ms)):
        if target is not None and alone * 1e3 > target:
            raise Unreachable(f"{rep.config.label()}: a request alone already takes {name} "
                              f"{alone * 1e3:,.1f} ms > target {target:g} ms")
    tokens = traffic.rate * (prompt + gen) / st.tokens_per_s_bound()
    per_request_blocks = math.ceil((prompt + gen) / sch.block_size)
    concurrency = max(1, min(sch.max_seqs, sch.kv_blocks // max(1, per_request_blocks)))
    little = traffic.rate * (alone_ttft + (gen - 1) * alone_tpot) / concurrency
    return max(1, math.ceil(max(tokens, little) - 1e-9))


class Unreachable(BudgetError):
    """No number of replicas of a configuration meets the targets."""


def size(arch: Architecture, rep: Replica, traffic: Traffic, targets: Targets,
         n: int = DEFAULT_REQUESTS, seed: int = 0) -> Deployment:
    """The fewest replicas (aggregated) or prefill + decode replicas meeting the targets."""
    lo = lower_bound_replicas(rep, traffic, targets)
    if lo > MAX_REPLICAS:
        raise Unreachable(f"{rep.config.label()}: at least {lo:,} replicas needed, over the "
                          f"{MAX_REPLICAS:,} sized here")
    if rep.config.mode == "aggregated":
        return _smallest(lambda r: evaluate(arch, rep, traffic, targets, r, n, seed), lo)[1]
    pre_t = Targets(targets.ttft_ms, None, targets.percentile)
    dec_t = Targets(None, targets.tpot_ms, targets.percentile)
    p = _smallest(lambda r: evaluate(arch, rep, traffic, pre_t, (r, 1), n, seed), 1)[0]
    d = _smallest(lambda r: evaluate(arch, rep, traffic, dec_t, (p, r), n, seed), 1)[0]
    return evaluate(arch, rep, traffic, targets, (p, d), n, seed)


def _smallest(run: Callable[[int], Deployment], lo: int) -> tuple[int, Deployment]:
    """Doubling then bisection on the replica count (more replicas never hurt latency)."""
    first = run(lo)
    if first.meets:
        return lo, first
    bad, r = lo, lo
    while True:
        r *= 2
        if r > MAX_REPLICAS:
            raise Unreachable(f"no deployment of up to {MAX_REPLICAS} replicas meets the targets")
        good = run(r)
        if good.meets:
            break
        bad = r
    while r - bad > 1:
        mid = (bad + r) // 2
        d = run(mid)
        if d.meets:
            r, good = mid, d
        else:
            bad = mid
    return r, good
