"""Serving a decoder transformer: memory, largest batch, prefill and decode time, $ per token.

Step time is the roofline of every op (budget.hardware.roofline), each op taking
max(FLOPs / (peak x eta_flops), bytes / (bandwidth x eta_mem)), summed over ops, plus the
tensor-parallel all-reduces. The defaults eta_flops = 0.7 and eta_mem = 0.9 are the settings
llm-analysis' `examples/llama2/README.md` states for its reproduction of Cursor's measured
Llama-2-70B setup (cli99/llm-analysis at d841e40; its run_infer_cursor.py sets 0.6 / 0.6, but
the published 25.6 tok/s needs about 0.9 of HBM bandwidth); eta = 1 is the ideal bound. Formulas:
- KV cache per token: 2 x n_layer x n_kv_head x head_dim x bytes (K and V; GQA/MQA shrink it).
- largest batch: floor((memory x fraction - weights / tp) / (KV per token per GPU x (prompt +
  generated))) (llm-analysis `decode_max_batch_size_per_gpu`); fraction 0.9 is vLLM's default
  `gpu_memory_utilization`.
- tensor parallelism over tp GPUs (Megatron-LM, Shoeybi et al. 2019): GEMMs and attention heads
  split tp ways (KV heads are replicated when n_kv_head < tp), norms are replicated, and two
  ring all-reduces of the activations per layer cost 2 (tp - 1) / tp x bytes / link bandwidth
  per direction + 8 us each (llm-analysis `intra_node_min_message_latency`).
- $ per 1M tokens = price per GPU-hour x tp / 3600 x seconds per token x 1e6: input tokens at the
  prefill rate, output tokens at the decode rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from budget.errors import BudgetError
from budget.hardware import energy as E
from budget.hardware import roofline as R
from budget.hardware.catalog import Accelerator
from budget.models.arch import Architecture
from budget.serving.quantization import QuantFormat, quant_format

DEFAULT_FLOPS_EFFICIENCY = 0.7  # llm-analysis examples/llama2/README.md (Cursor reproduction)
DEFAULT_MEMORY_EFFICIENCY = 0.9  # same README (the script itself sets 0.6 / 0.6)
EFFICIENCY_SOURCE = ("llm-analysis examples/llama2/README.md, cli99/llm-analysis d841e40: "
                     "flops 0.7, HBM 0.9, its reproduction of Cursor's Llama-2-70B serving")
DEFAULT_MEMORY_FRACTION = 0.9  # vLLM EngineArgs gpu_memory_utilization default
LOW_EFFICIENCY = 0.3  # below this an efficiency factor gets a warning (sane-range check)
ALLREDUCE_LATENCY_S = 8e-6  # llm-analysis intra_node_min_message_latency
KV_PRECISIONS = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp32": 4.0}  # bytes per K or V value
DEFAULT_PROMPT_LEN, DEFAULT_GEN_LEN = 512, 128  # our choice; llm-analysis' example uses 512 + 32
DEFAULT_BATCH_CAP = 256  # default batch: the largest that fits, capped here (our choice)
# Which matmul peak runs each weight format (int4 is weight-only: dequantized to 16-bit).
_COMPUTE = {"fp32": ("fp32",), "bf16": ("bf16", "fp16", "fp32"), "fp16": ("fp16", "bf16", "fp32"),
            "fp8": ("fp8", "bf16", "fp16", "fp32"), "int8": ("int8", "bf16", "fp16", "fp32"),
            "int4": ("bf16", "fp16", "int8", "fp32")}
WEIGHT_PRECISIONS = tuple(_COMPUTE)
HOURS_S = 3600.0


class DoesNotFit(BudgetError):
    """A configuration that cannot hold the weights and the KV cache: never priced."""


@dataclass(frozen=True)
class ServeRequest:
    """What `budget serve` takes, parsed."""

    arch: Architecture
    gpu: Accelerator
    model: str = ""
    weights: str = "bf16"
    kv: str = "bf16"
    group_size: int | None = None
    prompt_len: int = DEFAULT_PROMPT_LEN
    gen_len: int = DEFAULT_GEN_LEN
    batch: int | None = None  # None: the largest batch that fits (at most DEFAULT_BATCH_CAP)
    num_gpus: int = 1
    flops_efficiency: float = DEFAULT_FLOPS_EFFICIENCY
    memory_efficiency: float = DEFAULT_MEMORY_EFFICIENCY
    memory_fraction: float = DEFAULT_MEMORY_FRACTION
    price_per_hour: float | None = None
    power_fraction: float | None = None
    pue: float = E.DEFAULT_PUE
    grid_gco2_per_kwh: float | None = None


@dataclass(frozen=True)
class Step:
    """One prefill or decode step of a replica: its time and what bounds it."""

    time_s: float
    compute_s: float
    memory_s: float
    comm_s: float
    flops: float
    bytes: float

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bound": self.bound}


@dataclass(frozen=True)
class BatchRow:
    batch: int
    decode_ms_per_token: float
    tokens_per_s_replica: float
    tokens_per_s_gpu: float
    end_to_end_tokens_per_s: float
    usd_per_million_output: float | None
    bound: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServePlan:
    """The answer of `budget serve`."""

    model: str
    gpu: str
    num_gpus: int
    weights: dict[str, Any]
    compute_precision: str
    kv_precision: str
    params_total: int
    weight_bytes: float
    weight_bytes_per_gpu: float
    kv_bytes_per_token: float
    kv_bytes_per_request: float
    max_batch: int
    batch: int
    prompt_len: int
    gen_len: int
    prefill: Step
    decode: Step
    prefill_tokens_per_s_replica: float
    decode_tokens_per_s_replica: float
    decode_tokens_per_s_gpu: float
    end_to_end_tokens_per_s_replica: float
    price_usd_per_hour: float | None
    usd_per_million_input: float | None
    usd_per_million_output: float | None
    energy_kwh_per_million_output: float | None
    gco2_per_million_output: float | None
    efficiency: dict[str, Any]
    batch_table: tuple[BatchRow, ...]
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["prefill"], out["decode"] = self.prefill.to_dict(), self.decode.to_dict()
        out["batch_table"] = [r.to_dict() for r in self.batch_table]
        out["notes"] = list(self.notes)
        return out


# ---- formulas ---------------------------------------------------------------------------------
def usd_per_million_tokens(price_per_gpu_hour: float, num_gpus: int,
                           tokens_per_s: float) -> float:
    """$ per 1M tokens = price x GPUs / 3600 / (tokens/s) x 1e6."""
    return price_per_gpu_hour * num_gpus / HOURS_S / tokens_per_s * 1e6


def kv_share(arch: Architecture, tp: int) -> float:
    """Fraction of the KV cache one of `tp` GPUs holds (`Architecture.kv_cache_share`)."""
    return arch.kv_cache_share(tp)


def max_batch(memory_bytes: float, weight_bytes: float, kv_per_token: float, tokens: int,
              tp: int = 1, fraction: float = DEFAULT_MEMORY_FRACTION,
              kv_fraction_per_gpu: float = 1.0) -> int:
    """floor((memory x fraction - weights / tp) / (KV per token per GPU x tokens)); 0: no fit."""
    room = memory_bytes * fraction - weight_bytes / tp
    per_request = kv_per_token * kv_fraction_per_gpu * tokens
    return max(0, math.floor(room / per_request)) if room > 0 else 0


def compute_precision(acc: Accelerator, weights: str) -> str:
    """The matmul precision that runs `weights` on `acc` (first the device has of _COMPUTE)."""
    for p in _COMPUTE[weights]:
        if p in acc.peak_tflops:
            return p
    raise BudgetError(f"{acc.id} has no matmul peak for {weights} weights in the catalog")


def step(ops: Sequence[R.Op], acc: Accelerator, precision: str, arch: Architecture, tp: int,
         tokens: float, eta_f: float, eta_m: float) -> Step:
    """Sum over ops of max(FLOPs / (peak eta_f), bytes / (bandwidth eta_m)) per GPU, plus comm."""
    peak = acc.peak_flops(precision)
    vpeak = R.vector_peak(acc, peak)
    bw = acc.memory_bandwidth_gbs * 1e9 * eta_m
    total = comp = mem = flops = nbytes = 0.0
    share = kv_share(arch, tp)
    for op in ops:
        split = op.kind in ("matmul", "attention")
        f = op.flops / tp if split else op.flops
        b = op.bytes * share if op.kind == "attention" else op.bytes / tp if split else op.bytes
        p = (peak if split else vpeak) * eta_f
        c, m = op.count * f / p, op.count * b / bw
        total += max(c, m)
        comp, mem, flops, nbytes = comp + c, mem + m, flops + op.count * f, nbytes + op.count * b
    comm = allreduce_s(acc, arch, tp, tokens, R.PRECISION_BYTES[precision])
    return Step(total + comm, comp, mem, comm, flops, nbytes)


def allreduce_s(acc: Accelerator, arch: Architecture, tp: int, tokens: float,
                act_bytes: float) -> float:
    """Two ring all-reduces of tokens x d_model activations per layer (Megatron-LM TP)."""
    if tp == 1:
        return 0.0
    if not acc.interconnect_gbs_bidir:
        raise BudgetError(f"{acc.id} has no interconnect bandwidth in the catalog; tensor "
                          f"parallelism needs one (use --num-gpus 1)")
    per_dir = acc.interconnect_gbs_bidir * 1e9 / 2
    msg = max(2.0, act_bytes) * tokens * arch.d_model
    one = 2 * (tp - 1) / tp * msg / per_dir + ALLREDUCE_LATENCY_S
    return 2 * arch.n_layer * one


# ---- the plan ------------------------------------------------------------------------------------
def serve(req: ServeRequest) -> ServePlan:
    """Memory, largest batch, prefill and decode time, throughput and $ per token of `req`."""
    _check(req)
    arch, acc, tp = req.arch, req.gpu, req.num_gpus
    fmt = quant_format(req.weights, req.group_size)
    precision = compute_precision(acc, req.weights)
    n = arch.params_total()
    w_bytes = n * fmt.bytes_per_weight
    b_kv = KV_PRECISIONS[req.kv]
    tokens = req.prompt_len + req.gen_len
    kv_tok = arch.kv_cache_bytes_per_token(b_kv, tokens)  # a window caps it
    share = kv_share(arch, tp)
    biggest = max_batch(acc.memory_bytes, w_bytes, kv_tok, tokens, tp, req.memory_fraction, share)
    refuse_unservable(req, w_bytes, kv_tok * share * tokens, biggest)
    batch = req.batch or min(biggest, DEFAULT_BATCH_CAP)
    notes = _notes(req, fmt, precision, biggest, batch)

    def decode_at(b: int) -> Step:
        context = req.prompt_len + (req.gen_len + 1) // 2  # mean context over the generation
        ops = R.transformer_ops(arch, "decode", b, context, precision, fmt.bytes_per_weight, b_kv)
        return step(ops, acc, precision, arch, tp, b, req.flops_efficiency, req.memory_efficiency)

    ops = R.transformer_ops(arch, "prefill", batch, req.prompt_len, precision,
                            fmt.bytes_per_weight, b_kv)
    prefill = step(ops, acc, precision, arch, tp, batch * req.prompt_len, req.flops_efficiency,
                   req.memory_efficiency)
    decode = decode_at(batch)
    price = req.price_per_hour if req.price_per_hour is not None else acc.price_usd_per_hour
    prefill_tps = batch * req.prompt_len / prefill.time_s
    decode_tps = batch / decode.time_s
    e2e = batch * req.gen_len / (prefill.time_s + req.gen_len * decode.time_s)
    kwh, gco2 = _energy_per_million(req, decode_tps)
    table = tuple(_row(b, decode_at(b), req, price) for b in _batches(max(biggest, 1)))
    return ServePlan(
        model=req.model or arch.name, gpu=acc.id, num_gpus=tp, weights=fmt.to_dict(),
        compute_precision=precision, kv_precision=req.kv, params_total=n, weight_bytes=w_bytes,
        weight_bytes_per_gpu=w_bytes / tp, kv_bytes_per_token=kv_tok,
        kv_bytes_per_request=kv_tok * tokens, max_batch=biggest, batch=batch,
        prompt_len=req.prompt_len, gen_len=req.gen_len, prefill=prefill,
        decode=decode, prefill_tokens_per_s_replica=prefill_tps,
        decode_tokens_per_s_replica=decode_tps, decode_tokens_per_s_gpu=decode_tps / tp,
        end_to_end_tokens_per_s_replica=e2e, price_usd_per_hour=price,
        usd_per_million_input=None if price is None else usd_per_million_tokens(price, tp, prefill_tps),
        usd_per_million_output=None if price is None else usd_per_million_tokens(price, tp, decode_tps),
        energy_kwh_per_million_output=kwh, gco2_per_million_output=gco2,
        efficiency={"flops": req.flops_efficiency, "memory": req.memory_efficiency,
                    "source": EFFICIENCY_SOURCE if (req.flops_efficiency, req.memory_efficiency)
                    == (DEFAULT_FLOPS_EFFICIENCY, DEFAULT_MEMORY_EFFICIENCY) else "given"},
        batch_table=table, notes=tuple(notes))


def _row(b: int, st: Step, req: ServeRequest, price: float | None) -> BatchRow:
    tps = b / st.time_s
    e2e = b * req.gen_len / (_prefill_time(req, b) + req.gen_len * st.time_s)
    return BatchRow(b, st.time_s * 1e3, tps, tps / req.num_gpus, e2e,
                    None if price is None else usd_per_million_tokens(price, req.num_gpus, tps),
                    st.bound)


def _prefill_time(req: ServeRequest, batch: int) -> float:
    fmt = quant_format(req.weights, req.group_size)
    precision = compute_precision(req.gpu, req.weights)
    ops = R.transformer_ops(req.arch, "prefill", batch, req.prompt_len, precision,
                            fmt.bytes_per_weight, KV_PRECISIONS[req.kv])
    return step(ops, req.gpu, precision, req.arch, req.num_gpus, batch * req.prompt_len,
                req.flops_efficiency, req.memory_efficiency).time_s


def _batches(biggest: int) -> list[int]:
    out, b = [], 1
    while b < biggest:
        out.append(b)
        b *= 2
    return out + [biggest]


def _energy_per_million(req: ServeRequest, tokens_per_s: float) -> tuple[float | None, float | None]:
    if req.gpu.tdp_w is None:
        return None, None
    fraction, _ = E.power_fraction_for(req.gpu.id, req.power_fraction)
    watts = req.gpu.tdp_w * fraction * req.num_gpus * req.pue
    kwh = watts * (1e6 / tokens_per_s) / HOURS_S / 1000.0
    return kwh, None if req.grid_gco2_per_kwh is None else kwh * req.grid_gco2_per_kwh


def _check(req: ServeRequest) -> None:
    for label, count in (("prompt length", req.prompt_len), ("generated tokens", req.gen_len),
                         ("number of GPUs", req.num_gpus)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise BudgetError(f"{label} {count!r} must be a whole number >= 1")
    if req.batch is not None and (not isinstance(req.batch, int) or req.batch < 1):
        raise BudgetError(f"batch {req.batch!r} must be a whole number >= 1")
    for name, value in (("flops efficiency", req.flops_efficiency),
                        ("memory efficiency", req.memory_efficiency),
                        ("memory fraction", req.memory_fraction)):
        if not 0 < value <= 1:
            raise BudgetError(f"{name} {value!r} must be in (0, 1]")
    if req.kv not in KV_PRECISIONS:
        raise BudgetError(f"KV precision {req.kv!r} is unknown; choose one of "
                          f"{', '.join(KV_PRECISIONS)}")
    if req.weights not in _COMPUTE:
        raise BudgetError(f"weights {req.weights!r} unknown; choose one of {', '.join(_COMPUTE)}")


def refuse_unservable(req: ServeRequest, weight_bytes: float, kv_request_per_gpu: float,
                      biggest: int) -> None:
    """DoesNotFit (one line) when the weights plus one request's KV cache, or the asked batch,
    exceed memory x fraction per GPU: such a configuration is never priced."""
    room = req.gpu.memory_bytes * req.memory_fraction
    where = (f"{req.num_gpus} x {req.gpu.id} ({room / 1e9:,.1f} GB usable per GPU at "
             f"--memory-fraction {req.memory_fraction:g})")
    if biggest == 0:
        raise DoesNotFit(
            f"{req.model or req.arch.name} does not fit on {where}: {req.weights} weights take "
            f"{weight_bytes / req.num_gpus / 1e9:,.1f} GB per GPU plus "
            f"{kv_request_per_gpu / 1e9:,.2f} GB of KV cache per request; raise --num-gpus or "
            f"lower --precision")
    if req.batch is not None and req.batch > biggest:
        raise DoesNotFit(f"--batch {req.batch} does not fit on {where}: the KV cache of at most "
                         f"{biggest} requests of {req.prompt_len} + {req.gen_len} tokens fits "
                         f"beside the weights; lower --batch")


def _notes(req: ServeRequest, fmt: QuantFormat, precision: str, biggest: int,
           batch: int) -> list[str]:
    notes = [(f"weights {req.weights}: {fmt.bits_per_weight:g} bits/weight ({fmt.layout}); "
             f"every parameter counted, embeddings included")]
    if precision != req.weights:
        notes.append(f"{req.weights} weights run on the {precision} matmul peak (weight-only: "
                     f"dequantized before the multiply)" if req.weights in ("int4", "fp8", "int8")
                     else f"{req.gpu.id} has no {req.weights} peak: using {precision}")
    for label, eta in (("FLOP/s", req.flops_efficiency), ("bandwidth", req.memory_efficiency)):
        if eta < LOW_EFFICIENCY:
            notes.append(f"WARNING: {label} efficiency {eta:g} is below {LOW_EFFICIENCY:g}, far "
                         f"under published serving stacks (0.6-0.9; {EFFICIENCY_SOURCE})")
    if req.prompt_len + req.gen_len > req.arch.n_ctx:
        notes.append(f"WARNING: {req.prompt_len} + {req.gen_len} tokens exceed the model's "
                     f"context of {req.arch.n_ctx}")
    sparse = R.sparse_peaks(req.gpu)
    if sparse.get(precision):
        notes.append(f"{req.gpu.id}: dense {precision} {req.gpu.peak_tflops[precision]:g} TOPS "
                     f"used; the marketed {sparse[precision]:g} is 2:4 sparse (see --techniques)")
    if req.gpu.price_usd_per_hour is None and req.price_per_hour is None:
        notes.append(f"no price for {req.gpu.id} in the catalog: give --price-per-hour for $/token")
    notes.append("decode time at the mean context (prompt + half the generation); $/1M output "
                 "counts decode time only, $/1M input prefill time only")
    notes.append(f"largest batch counts weights and KV cache only: prefill activations and the "
                 f"allocator live in the {1 - req.memory_fraction:.0%} left over (--memory-fraction)")
    return notes
