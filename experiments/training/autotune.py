"""Threads and execution (dtype, fp32 attention, fused AdamW, compile) chosen by timing real steps.

A square-matmul probe picks the wrong dtype for these models: on an AVX512-BF16 CPU a bf16
matmul wins, but the bf16 attention backward at head size 16 loses 7.7x, and at 8k-260k
parameters one thread beats two. So for each model shape the sweep times `TIMED_STEPS` real
optimizer steps of the trainer's own loop body (`experiments.training.train.Stepper`) per candidate and
keeps the fastest (by the median step time). Results are cached per shape, batch and machine in
`$XDG_CACHE_HOME/compute-budget/step_plans.json`; delete it to re-time.

Candidates: on CPU, threads 1 and every core (or just `--threads`), each in fp32, bf16 autocast
with fp32 attention and bf16 throughout (bf16 only where the CPU has it), each with the
for-loop and the fused AdamW (fused on CPU where torch has it); on CUDA, bf16 with
fused or foreach AdamW, eager or `torch.compile` (compile only for points long enough to repay
its start-up, `COMPILE_MIN_SECONDS`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from experiments.training.hardware import cache_path, set_threads
from experiments.training.train import Execution, Stepper, TrainConfig

WARMUP_STEPS = 2
TIMED_STEPS = 5
COMPILE_MIN_SECONDS = 600.0  # torch.compile takes about a minute to start; worth it on long points
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class StepPlan:
    """The fastest measured way to run one shape, and what the others measured."""

    threads: int
    dtype: str  # float32 or bfloat16
    fp32_attention: bool
    fused_adamw: bool
    compile: bool
    tokens_per_s: float
    candidates: dict[str, float] = field(default_factory=dict)  # label -> tokens/s
    source: str = "timed"  # timed, or cached (timed by an earlier run on this machine)

    @property
    def execution(self) -> Execution:
        return Execution(DTYPES[self.dtype], self.fp32_attention, self.fused_adamw, self.compile)

    @property
    def label(self) -> str:
        return _label(self.threads, self.execution)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _label(threads: int, e: Execution) -> str:
    dtype = "bf16" if e.dtype == torch.bfloat16 else "fp32"
    if e.dtype == torch.bfloat16 and e.fp32_attention:
        dtype += "+fp32-attn"
    extra = ("+fused" if e.fused_adamw else "") + ("+compile" if e.compile else "")
    return f"{threads}t {dtype}{extra}"


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def candidates(device: torch.device, threads: int | None,
               long_run: bool) -> list[tuple[int, Execution]]:
    """(threads, execution) pairs worth timing on this device."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        compiles = (False, True) if long_run else (False,)
        return [(torch.get_num_threads(), Execution(dtype, False, fused, comp))
                for fused in (True, False) for comp in compiles]
    counts = [threads] if threads else sorted({1, cpu_cores()})
    execs = [Execution(torch.float32)]
    if _cpu_has_bf16():
        execs += [Execution(torch.bfloat16, True), Execution(torch.bfloat16, False)]
    if _cpu_fused_adamw():  # the one-kernel AdamW (CPU since torch 2.4): 5-25% per step measured
        execs += [replace(e, fused_adamw=True) for e in execs]
    return [(n, e) for n in counts for e in execs]


def _cpu_fused_adamw() -> bool:
    try:
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def time_steps(config: TrainConfig, corpus: Any, device: torch.device, threads: int,
               execution: Execution, steps: int = TIMED_STEPS) -> float:
    """Tokens per second of the median of `steps` real steps after WARMUP_STEPS warm-up steps
    (the median, not the best: on a shared CPU two threads can win one quiet step and lose
    the sustained run several times over)."""
    set_threads(threads)
    stepper = Stepper(config, corpus, device, execution)
    times = []
    for i in range(WARMUP_STEPS + steps):
        start = time.perf_counter()
        stepper.step(config.batch_size, config.lr)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= WARMUP_STEPS:
            times.append(time.perf_counter() - start)
    return config.tokens_per_step / sorted(times)[len(times) // 2]


def _key(config: TrainConfig, device: torch.device, threads: int | None, long_run: bool) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        (platform.processor() or platform.machine())
    s = config
    # the family and its head layout are part of the key (a llama point once shared a GPT-2
    # point's timing); GPT-2 keys stay as they were, so their cached timings still apply
    family = () if s.family == "gpt2" else (s.family, s.n_kv_head, s.head_dim)
    return "|".join(str(x) for x in (device.type, name, cpu_cores(), torch.__version__,
                                     s.n_layer, s.d_model, s.n_head, s.d_ff, s.n_ctx,
                                     s.vocab_size, config.batch_size, threads or "auto",
                                     long_run, *family))


def plans_path() -> Path:
    return cache_path().with_name("step_plans.json")


def choose(config: TrainConfig, corpus: Any, device: torch.device, threads: int | None = None,
           long_run: bool = False, refresh: bool = False) -> StepPlan:
    """The fastest (threads, execution) for this shape: cached, else timed now and cached."""
    path, key = plans_path(), _key(config, device, threads, long_run)
    cache = _read(path)
    if key in cache and not refresh:
        return StepPlan(**{**cache[key], "source": "cached"})
    timed = {}
    for n, execution in candidates(device, threads, long_run):
        timed[(n, execution)] = time_steps(config, corpus, device, n, execution)
    (n, best), tps = max(timed.items(), key=lambda kv: kv[1])
    plan = StepPlan(n, "bfloat16" if best.dtype == torch.bfloat16 else "float32",
                    best.fp32_attention, best.fused_adamw, best.compile, tps,
                    {_label(k, e): round(v, 1) for (k, e), v in timed.items()})
    cache = _read(path)  # another sweep may have written meanwhile
    cache[key] = plan.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cache, indent=1))
    tmp.replace(path)
    return plan


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
