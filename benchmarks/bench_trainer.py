"""Trainer speed of every distinct `cpu`-preset model, timed on the loop the sweep really runs.

For each shape, `experiments.autotune.choose` times the trainer's own `Stepper` (batch, forward,
backward, clipping, AdamW) for every candidate the sweep considers (threads 1 and all cores;
fp32, bf16 autocast with fp32 attention, bf16 throughout) and picks the fastest, as the sweep
does; this prints all candidates, the choice and its MFU against a matmul peak measured at the
chosen dtype and thread count. "before" is the path the sweep took before the autotuner: all
cores, and bf16 throughout wherever a 256^3 bf16 matmul beat fp32.

    python benchmarks/bench_trainer.py [--refresh] [--preset cpu]
"""

from __future__ import annotations

import argparse

import torch

from budget.models.transformer import training_flops_per_token
from experiments.autotune import choose, cpu_cores
from experiments.data import load_corpus
from experiments.design import PRESETS, design_sweep
from experiments.hardware import matmul_flops_per_s, set_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--refresh", action="store_true", help="re-time (ignore the cache)")
    args = parser.parse_args()
    corpus = load_corpus()
    device = torch.device("cpu")
    configs = {p.config.shape: p.config for p in design_sweep(PRESETS[args.preset])}
    before = f"{cpu_cores()}t bf16"
    print(f"{'layers':>6} {'d_model':>7} {'N total':>9} {'chosen':>22} {'tok/s':>9} "
          f"{'before':>9} {'speed-up':>8} {'MFU':>6}")
    for config in sorted(configs.values(), key=lambda c: c.params):
        plan = choose(config, corpus, device, refresh=args.refresh)
        set_threads(plan.threads)
        peak = matmul_flops_per_s(device, plan.execution.dtype)
        mfu = plan.tokens_per_s * training_flops_per_token(config.shape) / peak
        old = plan.candidates.get(before, plan.candidates.get(f"{cpu_cores()}t fp32", 0.0))
        print(f"{config.n_layer:6d} {config.d_model:7d} {config.params:9,d} {plan.label:>22} "
              f"{plan.tokens_per_s:9,.0f} {old:9,.0f} {plan.tokens_per_s / max(old, 1):7.2f}x "
              f"{mfu:6.1%}")


if __name__ == "__main__":
    main()
