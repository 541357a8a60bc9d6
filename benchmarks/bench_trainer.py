"""Trainer speed of every distinct `cpu`-preset model, timed on the loop the sweep really runs.

For each shape, `experiments.training.autotune.choose` times the trainer's own `Stepper` (batch, forward,
backward, clipping, AdamW) for every candidate the sweep considers (threads 1 and all cores;
fp32, bf16 autocast with fp32 attention, bf16 throughout) and picks the fastest, as the sweep
does; this prints all candidates, the choice and its MFU against a matmul peak measured at the
chosen dtype and thread count. "before" is the path the sweep took before the autotuner: all
cores, and bf16 throughout wherever a 256^3 bf16 matmul beat fp32.

    python benchmarks/bench_trainer.py [--refresh] [--preset cpu]
    python benchmarks/bench_trainer.py --workers 2   # one process on all cores vs 2 at once

`--workers N` measures what `budget sweep --workers N` buys on shapes of the preset as the
issue found it (3-layer d16, 2-layer d48, 3-layer d80): tokens/s of one process on every core
with the for-loop AdamW, then of N one-thread processes with fused AdamW training at once (their
sum), and the ratio, in one run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import torch

from experiments.sweeps.design import PRESETS, design_sweep
from experiments.training.autotune import choose, cpu_cores
from experiments.training.data import load_corpus
from experiments.training.hardware import matmul_flops_per_s, set_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--refresh", action="store_true", help="re-time (ignore the cache)")
    parser.add_argument("--workers", type=int, default=0,
                        help="compare one process on all cores with N one-thread processes")
    parser.add_argument("--one", nargs=2, type=int, metavar=("THREADS", "FUSED"),
                        help=argparse.SUPPRESS)  # a worker of --workers: print tokens/s per shape
    args = parser.parse_args()
    if args.one:
        return one_process(*args.one)
    if args.workers:
        return compare_workers(args.workers)
    corpus = load_corpus()
    device = torch.device("cpu")
    configs = {p.config.architecture: p.config for p in design_sweep(PRESETS[args.preset])}
    before = f"{cpu_cores()}t bf16"
    print(f"{'layers':>6} {'d_model':>7} {'N total':>9} {'chosen':>22} {'tok/s':>9} "
          f"{'before':>9} {'speed-up':>8} {'MFU':>6}")
    for config in sorted(configs.values(), key=lambda c: c.params):
        plan = choose(config, corpus, device, refresh=args.refresh)
        set_threads(plan.threads)
        peak = matmul_flops_per_s(device, plan.execution.dtype)
        mfu = plan.tokens_per_s * config.architecture.training_flops_per_token() / peak
        old = plan.candidates.get(before, plan.candidates.get(f"{cpu_cores()}t fp32", 0.0))
        print(f"{config.n_layer:6d} {config.d_model:7d} {config.params:9,d} {plan.label:>22} "
              f"{plan.tokens_per_s:9,.0f} {old:9,.0f} {plan.tokens_per_s / max(old, 1):7.2f}x "
              f"{mfu:6.1%}")


OLD_SHAPES = ((3, 16, 1, 64), (2, 48, 3, 192), (3, 80, 5, 320))  # the old cpu preset's shapes
STEPS = 80


def one_process(threads: int, fused: int) -> None:
    """tokens/s of STEPS real steps (after 5 warm-up) per OLD_SHAPES model, one per line."""
    from budget.models.families import build
    from experiments.sweeps.design import point_for
    from experiments.training.train import Execution, Stepper

    set_threads(threads)
    corpus = load_corpus()
    for n_layer, d, heads, d_ff in OLD_SHAPES:
        shape = build("gpt2", n_layer, d, n_head=heads, d_ff=d_ff, n_ctx=64, vocab_size=256)
        c = point_for(shape, 1e12, PRESETS["cpu"]).config
        stepper = Stepper(c, corpus, torch.device("cpu"),
                          Execution(torch.float32, fused_adamw=bool(fused)))
        for _ in range(5):
            stepper.step(c.batch_size, 1e-3)
        start = time.perf_counter()
        for _ in range(STEPS):
            stepper.step(c.batch_size, 1e-3)
        print(STEPS * c.tokens_per_step / (time.perf_counter() - start), flush=True)


def _run(n: int, threads: int, fused: int) -> list[float]:
    """Summed tokens/s per shape of n processes started together."""
    procs = [subprocess.Popen([sys.executable, __file__, "--one", str(threads), str(fused)],
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [[float(x) for x in p.communicate()[0].split()] for p in procs]
    return [sum(col) for col in zip(*outs)]


def compare_workers(n: int) -> None:
    single = _run(1, cpu_cores(), 0)
    many = _run(n, max(1, cpu_cores() // n), 1)
    print(f"{'shape':>16} {'1 process':>12} {f'{n} workers':>12} {'ratio':>6}")
    for (layers, d, _, _), a, b in zip(OLD_SHAPES, single, many):
        print(f"{f'{layers} layers d{d}':>16} {a:12,.0f} {b:12,.0f} {b / a:5.2f}x")
    print(f"tokens/s; 1 process: {cpu_cores()} threads, for-loop AdamW; {n} workers: "
          f"{max(1, cpu_cores() // n)} thread(s) each, fused AdamW, run at once (summed)")


if __name__ == "__main__":
    main()
