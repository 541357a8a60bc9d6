"""`budget serve --rate ...`: a traffic profile and targets, simulated with continuous batching,
sized to the targets (replicas), priced; `--search` for the cheapest deployment; `--plot`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from budget.cli.common import POSITIVE, POSITIVE_INT, Number


def traffic_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--rate", type=POSITIVE, default=None,
                     help="Requests/s (Poisson): simulate continuous batching under this load."),
        click.option("--input-spread", type=Number(positive=False, low=0.0), default=0.0,
                     show_default=True, help="Standard deviation of prompt tokens (log-normal)."),
        click.option("--output-spread", type=Number(positive=False, low=0.0), default=0.0,
                     show_default=True, help="Standard deviation of output tokens (log-normal)."),
        click.option("--trace", type=click.Path(dir_okay=False), default=None,
                     help="CSV of input_tokens,output_tokens rows to draw lengths from."),
        click.option("--ttft-ms", type=POSITIVE, default=None, help="Time-to-first-token target."),
        click.option("--tpot-ms", type=POSITIVE, default=None, help="Time-per-output-token target."),
        click.option("--percentile", type=Number(low=0.0, high=100.0, low_open=True, high_open=True),
                     default=95.0, show_default=True, help="Percentile the targets hold at."),
        click.option("--mode", type=click.Choice(("aggregated", "disaggregated")),
                     default="aggregated", show_default=True,
                     help="One pool, or separate prefill and decode pools (KV sent over links)."),
        click.option("--replicas", type=POSITIVE_INT, default=None,
                     help="Replicas (default: the fewest meeting the targets)."),
        click.option("--requests", type=click.IntRange(100, 100_000), default=None,
                     help="Requests simulated per pool (default 2,000; 1,000 with --search)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--search", is_flag=True,
                     help="Cheapest device x tp x precision x pool split meeting the targets."),
        click.option("--plot", type=click.Path(dir_okay=False), default=None,
                     help="Write a PNG of latency against load."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


TRAFFIC_KEYS = ("rate", "input_spread", "output_spread", "trace", "ttft_ms", "tpot_ms",
                "percentile", "mode", "replicas", "requests", "seed", "search", "plot")


@dataclass(frozen=True)
class ServeUnderLoad:
    deployment: Any
    search: Any = None
    load: tuple[Any, ...] = ()
    plot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"deployment": self.deployment.to_dict(),
                "search": None if self.search is None else self.search.to_dict(),
                "load": [p.to_dict() for p in self.load], "plot": self.plot}


def run_traffic(arch: Any, gpu: Any, catalog: Any, kw: dict[str, Any]) -> ServeUnderLoad:
    from budget.serving.deploy import Config, evaluate, replica, size
    from budget.serving.traffic import Targets, Traffic, traffic_from_trace

    if kw["rate"] is None:
        raise click.UsageError("--search, --plot, --ttft-ms and --tpot-ms need --rate")
    if kw["trace"]:
        traffic = traffic_from_trace(kw["rate"], kw["trace"])
    else:
        traffic = Traffic(kw["rate"], kw["prompt_len"], kw["gen_len"], kw["input_spread"],
                          kw["output_spread"])
    targets = Targets(kw["ttft_ms"], kw["tpot_ms"], kw["percentile"])
    seed = kw["seed"]
    found = None
    if kw["search"]:
        from budget.serving.search import search

        n = kw["requests"] or 1000
        found = search(arch, catalog.accelerators, traffic, targets, n, seed)
        dep = found.best
        cfg = Config(catalog.get(dep.gpu), dep.tp, dep.weights, dep.kv, dep.mode)
    else:
        n = kw["requests"] or 2000
        cfg = Config(gpu, kw["num_gpus"], kw["weights"], kw["kv"], kw["mode"],
                     kw["flops_efficiency"], kw["memory_efficiency"], kw["memory_fraction"],
                     kw["price_per_hour"])
    rep = replica(arch, cfg)
    if not kw["search"]:
        r = kw["replicas"]
        dep = evaluate(arch, rep, traffic, targets, r if cfg.mode == "aggregated" else (r, r),
                       n, seed) if r else size(arch, rep, traffic, targets, n, seed)
    load: tuple[Any, ...] = ()
    if kw["plot"]:
        from budget.serving.plot import load_sweep, save_plot

        load = load_sweep(arch, rep, traffic, targets, dep, n, seed)
        save_plot(load, dep, kw["plot"])
    return ServeUnderLoad(dep, found, load, kw["plot"])


def _pcts(d: dict[str, float]) -> str:
    """p50 / p95 / p99; '-' where no request was measured (TPOT of one-token outputs)."""
    return " / ".join("-" if d[k] != d[k] else f"{d[k]:,.1f}" for k in ("p50", "p95", "p99"))


def render_deployment(d: Any) -> list[str]:
    t, tr = d.targets, d.traffic
    pools = f"{d.replicas} replica{'s' * (d.replicas != 1)}" if d.mode == "aggregated" else \
        f"{d.prefill_replicas} prefill + {d.decode_replicas} decode replicas"
    lengths = (f"trace {tr['trace_name']} ({tr['trace']} rows)" if tr["trace"] else
               f"{tr['input_tokens']:g} in (sd {tr['input_spread']:g}) + {tr['output_tokens']:g}"
               f" out (sd {tr['output_spread']:g}) tokens")
    want = ", ".join(f"{k} <= {t[k + '_ms']:g} ms" for k in ("ttft", "tpot")
                     if t[k + "_ms"] is not None) or "none"
    lines = [f"Serving {d.model} at {tr['rate']:g} requests/s, {lengths}",
             f"  targets at p{t['percentile']:g}: {want}",
             f"Deployment: {pools} of {d.tp} x {d.gpu} ({d.gpus} GPUs), {d.weights} weights, "
             f"{d.kv} KV cache, {d.mode}" + ("" if d.meets else "  (MISSES THE TARGETS)"),
             f"  TTFT p50 / p95 / p99: {_pcts(d.ttft_ms)} ms",
             f"  TPOT p50 / p95 / p99: {_pcts(d.tpot_ms)} ms",
             f"  throughput: {d.requests_per_s:,.2f} requests/s, {d.output_tokens_per_s:,.0f} "
             f"output tok/s, {d.tokens_per_s:,.0f} tok/s in + out",
             f"  KV cache: {d.kv_blocks_per_replica:,} blocks of {d.scheduler['block_size']} "
             f"tokens per replica, {d.kv_used_mean:.0%} used on average"]
    if d.kv_transfer_ms is not None:
        lines.append(f"  KV transfer prefill -> decode: {d.kv_transfer_ms:,.2f} ms per mean prompt")
    if d.usd_per_hour is not None:
        lines.append(f"  $ per 1M tokens (in + out): ${d.usd_per_million_tokens:,.4f}; per 1M "
                     f"output: ${d.usd_per_million_output:,.4f} (${d.usd_per_hour:,.2f}/hour)")
    lines.append(f"  simulated: {d.simulated_requests:,} requests per pool, seed {d.seed}, first "
                 f"10% left out of the percentiles; scheduler: max {d.scheduler['max_seqs']} "
                 f"sequences, {d.scheduler['max_batched_tokens']} tokens per iteration")
    return lines + [f"  - {n}" for n in d.notes]


def render_under_load(res: ServeUnderLoad) -> str:
    lines = []
    if res.search is not None:
        s = res.search
        lines += [f"Cheapest deployment meeting the targets ({s.sized} configurations sized, "
                  f"{s.pruned} pruned by their price bound, {len(s.refused)} refused)"]
    lines += render_deployment(res.deployment)
    if res.search is not None and res.search.runner_up is not None:
        r = res.search.runner_up
        lines += ["", f"Runner-up: {r.replicas} x tp{r.tp} {r.gpu}, {r.weights} weights, {r.kv} "
                      f"KV, {r.mode}: ${r.usd_per_million_tokens:,.4f} per 1M tokens",
                  f"  why it lost: {res.search.why_runner_up_lost}"]
    if res.plot:
        lines += ["", f"Latency against load: {res.plot}"]
    return "\n".join(lines)
