"""Serving predictions against published measured figures, one row each, with the error.

Every prediction uses the defaults of `budget serve` (efficiency 0.7 of the matmul peak and 0.9 of
HBM bandwidth, llm-analysis' settings) and one fixed scheduler per kind of row; nothing is fitted
to these rows.

- Offline throughput (TensorRT-LLM perf-overview, v1.0-era, trtllm-bench `throughput` with the
  PyTorch backend: every request queued at once, "Total Output Throughput (tokens/sec)", ModelOpt
  FP8 checkpoints, DGX H100/H200): all requests arrive at t = 0 and run through the simulator;
  predicted = output tokens / makespan. Scheduler: up to 2,048 sequences and 8,192 tokens per
  iteration (our fixed choice: the page's CUDA-graph batch sizes go to 8,192), 0.95 of memory
  (the page: "we also use a higher KV cache percentage ... 0.95"), bf16 KV cache (the page does
  not say whether the FP8 checkpoints quantize the KV cache).
- Peak static-batch throughput (TensorRT-LLM performance.md, v0.6.1 data, gptSessionBenchmark:
  one batch of the stated size, FP8 weights and KV cache on H100): `cost.serve` end-to-end
  output tokens/s per GPU at that batch (prefill, then one decode step per output token).
- First-token latency at batch 1 (same page, v0.5 data): one prefill step of the prompt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from budget.hardware.catalog import load_catalog
from budget.models.arch import Architecture
from budget.models.named import get_model
from budget.serving import cost as C
from budget.serving.deploy import Config, replica
from budget.serving.simulate import Scheduler, simulate

TRT_V10 = ("NVIDIA TensorRT-LLM docs/source/performance/perf-overview.md at 00f37686 "
           "(trtllm-bench throughput, PyTorch backend)")
TRT_V061 = "NVIDIA TensorRT-LLM docs/source/performance.md at 138f96d4 (v0.6.1 data; low latency v0.5)"
OFFLINE = Scheduler(0, max_seqs=2048, max_batched_tokens=8192)
OFFLINE_MEMORY_FRACTION = 0.95


@dataclass(frozen=True)
class ValidationRow:
    """One published measurement, our prediction of it and where the measurement comes from."""

    name: str
    unit: str
    measured: float
    predicted: float
    source: str

    @property
    def error(self) -> float:
        """predicted / measured - 1."""
        return self.predicted / self.measured - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error": self.error}


def offline_output_tokens_per_s(arch: Architecture, gpu: str, tp: int, weights: str,
                                prompt: int, output: int, requests: int) -> float:
    """Every request queued at t = 0: output tokens / time to finish them all."""
    cfg = Config(load_catalog(use_env=False).get(gpu), tp, weights, "bf16",
                 memory_fraction=OFFLINE_MEMORY_FRACTION)
    rep = replica(arch, cfg, OFFLINE)
    tr = simulate(rep.step, rep.scheduler, np.zeros(requests), np.full(requests, prompt),
                  np.full(requests, output))
    return requests * output / float(tr.finish.max())


def first_token_ms(arch: Architecture, gpu: str, tp: int, weights: str, kv: str,
                   prompt: int) -> float:
    rep = replica(arch, Config(load_catalog(use_env=False).get(gpu), tp, weights, kv))
    return rep.step.prefill_s(prompt) * 1e3


def static_batch_tokens_per_s_gpu(arch: Architecture, gpu: str, tp: int, weights: str, kv: str,
                                  batch: int, prompt: int, output: int) -> float:
    plan = C.serve(C.ServeRequest(arch, load_catalog(use_env=False).get(gpu), weights=weights,
                                  kv=kv, prompt_len=prompt, gen_len=output, batch=batch,
                                  num_gpus=tp))
    return plan.end_to_end_tokens_per_s_replica / tp


# (model, gpu, tp, input, output, requests as the page lists them, measured output tok/s)
_OFFLINE = (
    ("llama-3.1-8b", "h100", 1, 128, 128, 30000, 28312.0),
    ("llama-3.1-8b", "h100", 1, 1000, 1000, 3000, 15220.0),
    ("llama-3.1-8b", "h100", 1, 2048, 128, 3000, 3450.0),
    ("llama-3.1-8b", "h100", 1, 2048, 2048, 1500, 9305.0),
    ("llama-3.1-8b", "h200", 1, 1000, 1000, 3000, 17744.0),
    ("llama-3.1-70b", "h100", 2, 128, 128, 30000, 6378.0),
    ("llama-3.1-70b", "h100", 2, 2048, 2048, 1500, 3082.0),
)
# (model, gpu, tp, weights + KV, batch, input, output, measured out tok/s per GPU)
_STATIC = (
    ("llama-7b", "h100", 1, "fp8", 768, 128, 128, 19694.0),
    ("llama-7b", "h100", 1, "fp8", 48, 2048, 2048, 2740.0),
    ("llama-7b", "a100", 1, "fp16", 384, 128, 128, 5586.0),
)
# (model, gpu, tp, weights + KV, input, measured first-token ms)
_TTFT = (
    ("llama-7b", "h100", 1, "fp8", 128, 7.0),
    ("llama-7b", "h100", 1, "fp8", 2048, 36.0),
    ("llama-7b", "a100", 1, "fp16", 2048, 133.0),
    ("llama-2-70b", "h100", 4, "fp8", 2048, 109.0),
    ("llama-2-70b", "a100", 4, "fp16", 2048, 377.0),
)


def rows() -> tuple[ValidationRow, ...]:
    """Every serving row: offline throughput, static-batch throughput, first-token latency."""
    out = []
    for model, gpu, tp, isl, osl, n, measured in _OFFLINE:
        label = "Llama 3.3 70B" if model == "llama-3.1-70b" else "Llama 3.1 8B"
        out.append(ValidationRow(
            f"serve offline {label} FP8 {gpu.upper()} TP{tp} {isl}/{osl}", "output tok/s",
            measured, offline_output_tokens_per_s(get_model(model).arch, gpu, tp, "fp8", isl,
                                                  osl, n),
            f"{TRT_V10}, {label} table ({n:,} requests; predicted with the Llama 3.1 shape)"))
    for model, gpu, tp, w, batch, isl, osl, measured in _STATIC:
        out.append(ValidationRow(
            f"serve static batch LLaMA 7B {w.upper()} {gpu.upper()} bs{batch} {isl}/{osl}",
            "output tok/s/GPU", measured,
            static_batch_tokens_per_s_gpu(get_model(model).arch, gpu, tp, w, w, batch, isl, osl),
            f"{TRT_V061}, Peak Throughput table"))
    for model, gpu, tp, w, isl, measured in _TTFT:
        label = "LLaMA 7B" if model == "llama-7b" else "LLaMA 70B (Llama-2-70B shape)"
        out.append(ValidationRow(
            f"serve first token {label} {w.upper()} {gpu.upper()} TP{tp} {isl} in", "ms",
            measured, first_token_ms(get_model(model).arch, gpu, tp, w, w, isl),
            f"{TRT_V061}, Low Latency table (batch 1)"))
    return tuple(out)
