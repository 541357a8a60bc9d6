"""`budget serve`: weights per precision, KV cache, largest batch, latency, tokens/s, $ per token."""

from __future__ import annotations

from typing import Any

import click

from budget.cli.arch_options import model_options, resolve_architecture
from budget.cli.common import (
    ACCELERATOR,
    FRACTION,
    GRID_GCO2_PER_KWH,
    POSITIVE,
    POSITIVE_INT,
    POWER_FRACTION,
    PUE,
    emit,
    json_option,
)
from budget.cli.serve_traffic import TRAFFIC_KEYS, render_under_load, run_traffic, traffic_options
from budget.hardware.energy import DEFAULT_PUE
from budget.serving.cost import (
    DEFAULT_BATCH_CAP,
    DEFAULT_FLOPS_EFFICIENCY,
    DEFAULT_GEN_LEN,
    DEFAULT_MEMORY_EFFICIENCY,
    DEFAULT_MEMORY_FRACTION,
    DEFAULT_PROMPT_LEN,
    KV_PRECISIONS,
    WEIGHT_PRECISIONS,
)


@click.command(name="serve")
@model_options
@click.option("--gpu", type=ACCELERATOR, default="h100", show_default=True, help="Accelerator id or alias.")
@click.option("--precision", "weights", type=click.Choice(WEIGHT_PRECISIONS), default="bf16",
              show_default=True, help="Weight precision (int4/int8 group-wise scales included).")
@click.option("--kv-precision", "kv", type=click.Choice(tuple(KV_PRECISIONS)),
              default="bf16", show_default=True, help="KV-cache precision.")
@click.option("--group-size", type=click.IntRange(0, 4096), default=None,
              help="Quantization group for int8/int4 (default 32 / 128; 0: no scales).")
@click.option("--input-tokens", "prompt_len", type=POSITIVE_INT, default=DEFAULT_PROMPT_LEN,
              show_default=True, help="Prompt tokens per request (the mean with --rate).")
@click.option("--output-tokens", "gen_len", type=POSITIVE_INT, default=DEFAULT_GEN_LEN,
              show_default=True, help="Generated tokens per request (the mean with --rate).")
@click.option("--batch", type=POSITIVE_INT, default=None,
              help=f"Concurrent sequences (default: the largest that fits, at most {DEFAULT_BATCH_CAP}).")
@click.option("--num-gpus", type=POSITIVE_INT, default=1, show_default=True,
              help="GPUs per replica (tensor parallel).")
@click.option("--flops-efficiency", type=FRACTION, default=DEFAULT_FLOPS_EFFICIENCY, show_default=True,
              help="Fraction of the matmul peak reached (1 = ideal roofline; default: llm-analysis).")
@click.option("--memory-efficiency", type=FRACTION, default=DEFAULT_MEMORY_EFFICIENCY, show_default=True,
              help="Fraction of HBM bandwidth reached (default: llm-analysis).")
@click.option("--memory-fraction", type=FRACTION, default=DEFAULT_MEMORY_FRACTION, show_default=True,
              help="Share of device memory for weights + KV cache (vLLM's default 0.9).")
@click.option("--price-per-hour", type=POSITIVE, help="Override the catalog $/GPU-hour.")
@click.option("--pue", type=PUE, default=DEFAULT_PUE, show_default=True, help="Datacenter PUE.")
@click.option("--power-fraction", type=POWER_FRACTION, default=None,
              help="Average board power / TDP (default: measured where known, else 1).")
@click.option("--grid-gco2-per-kwh", type=GRID_GCO2_PER_KWH, default=None,
              help="Grid carbon intensity: adds gCO2e per 1M output tokens.")
@click.option("--techniques", is_flag=True,
              help="Add what pruning, sparsity, distillation and fusion would buy.")
@click.option("--catalog", "catalog_paths", multiple=True, type=click.Path(dir_okay=False))
@traffic_options
@json_option
def command(as_json: bool, techniques: bool, **kw: Any) -> None:
    """Serving cost of a decoder transformer on an accelerator.

    Weights per precision (group-wise scale overhead stated), KV cache per token and per request
    (GQA/MQA aware), the largest batch beside the weights, prefill time and decode time per
    token (roofline per op at an efficiency factor), tokens/s per GPU and per replica (tensor
    parallel over --num-gpus), $ per 1M input and output tokens, energy per 1M tokens, and a
    table over batch sizes.

    With --rate: a traffic profile (Poisson arrivals, token lengths as mean and spread or a CSV
    trace) run through a continuous-batching simulator (chunked prefill, paged KV) over the
    roofline step times; prints TTFT and TPOT percentiles, throughput, the replicas that meet
    --ttft-ms/--tpot-ms at --percentile, and $ per 1M tokens. --search finds the cheapest
    device, tensor parallelism, precision and pool split; --plot FILE draws latency against load.

    Example: budget serve --model llama-3-8b --gpu h100 --precision int4

    Example: budget serve --model llama-3-8b --gpu h100 --rate 20 --input-tokens 2000
    --output-tokens 300 --ttft-ms 500 --tpot-ms 40
    """
    from budget.hardware.catalog import load_catalog

    arch = resolve_architecture(kw)
    catalog = load_catalog(kw.pop("catalog_paths"))
    gpu = catalog.get(kw.pop("gpu"))
    wants_traffic = [k for k in TRAFFIC_KEYS if kw[k] not in (None, False, 0.0, 95.0, 0,
                                                                "aggregated")]
    if wants_traffic:
        if techniques or kw["batch"] is not None:
            raise click.UsageError("--techniques and --batch describe one operating point; "
                                   "under --rate the batch comes from the scheduler")
        emit(run_traffic(arch, gpu, catalog, kw), as_json, render_under_load)
        return
    from budget.serving.cost import ServeRequest, serve

    fields = ("weights", "kv", "group_size", "prompt_len", "gen_len", "batch", "num_gpus",
              "flops_efficiency", "memory_efficiency", "memory_fraction", "price_per_hour",
              "power_fraction", "pue", "grid_gco2_per_kwh")
    plan = serve(ServeRequest(arch=arch, gpu=gpu, model=arch.name, **{k: kw[k] for k in fields}))
    result: Any = plan
    if techniques:
        from budget.serving.techniques import ServeWithTechniques, techniques_for

        result = ServeWithTechniques(plan, techniques_for(arch, plan, gpu))
    emit(result, as_json, render)


def render(result: Any) -> str:
    from budget.render import human, table
    from budget.serving.quantization import size_table

    p = getattr(result, "plan", result)
    rows = [[r.precision + (" *" if r.precision == p.weights["name"] else ""),
             f"{r.bits_per_weight:.3f}", f"{r.weight_bytes / 1e9:,.2f}"]
            for r in size_table(p.params_total)]
    lines = [f"Model {p.model}: {human(p.params_total)} params on {p.num_gpus} x {p.gpu}", "",
             "Weights per precision (every parameter; * = chosen)",
             table(["precision", "bits/weight", "GB"], rows), "",
             (f"KV cache ({p.kv_precision}): {p.kv_bytes_per_token:,.0f} B/token "
             f"({p.kv_bytes_per_token / 1024:,.1f} KiB); {p.kv_bytes_per_request / 2**20:,.1f} MiB "
             f"per request of {p.prompt_len} + {p.gen_len} tokens"),
             f"Largest batch beside {p.weight_bytes_per_gpu / 1e9:,.2f} GB of weights per GPU: "
             f"{p.max_batch}", "",
             (f"At batch {p.batch}, {p.compute_precision} matmuls, efficiency "
             f"{p.efficiency['flops']:g} FLOP/s, {p.efficiency['memory']:g} bandwidth "
             f"({p.efficiency['source']})"),
             (f"  prefill  {p.batch} x {p.prompt_len} tokens: {p.prefill.time_s * 1e3:,.1f} ms "
             f"({p.prefill.bound}-bound), {p.prefill_tokens_per_s_replica:,.0f} input tok/s"),
             (f"  decode   {p.decode.time_s * 1e3:,.2f} ms per token ({p.decode.bound}-bound): "
             f"{p.decode_tokens_per_s_replica:,.0f} output tok/s per replica, "
             f"{p.decode_tokens_per_s_gpu:,.0f} per GPU"),
             (f"  end to end (prefill + {p.gen_len} decode steps): "
             f"{p.end_to_end_tokens_per_s_replica:,.0f} output tok/s per replica")]
    if p.usd_per_million_input is not None and p.usd_per_million_output is not None:
        lines.append(f"  $ per 1M tokens: input ${p.usd_per_million_input:,.4f}, output "
                     f"${p.usd_per_million_output:,.4f} at ${p.price_usd_per_hour:.2f}/GPU-hour")
    if p.energy_kwh_per_million_output is not None:
        co2 = "" if p.gco2_per_million_output is None else \
            f" = {p.gco2_per_million_output:,.0f} gCO2e"
        lines.append(f"  energy per 1M output tokens: {p.energy_kwh_per_million_output:,.3f} kWh"
                     f"{co2}")
    bt = [[str(r.batch), f"{r.decode_ms_per_token:,.2f}", f"{r.tokens_per_s_replica:,.0f}",
           f"{r.tokens_per_s_gpu:,.0f}", f"{r.end_to_end_tokens_per_s:,.0f}",
           "-" if r.usd_per_million_output is None else f"{r.usd_per_million_output:,.4f}",
           r.bound] for r in p.batch_table]
    lines += ["", "Throughput against latency (decode at the mean context)",
              table(["batch", "ms/token", "tok/s replica", "tok/s GPU", "end-to-end tok/s",
                     "$/1M out", "bound"], bt)]
    if result is not p:
        from budget.serving.techniques import render_techniques

        lines += ["", render_techniques(result.techniques)]
    lines += ["", "Notes"] + [f"  - {n}" for n in p.notes]
    return "\n".join(lines)
