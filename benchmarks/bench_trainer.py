"""Trainer MFU for every distinct `cpu`-preset model, against a matmul peak measured in this run.

MFU = (tokens/s x training FLOPs per token) / peak, where the FLOPs per token are the planner's
`training_flops_per_token` (equal to torch's FlopCounterMode count, see tests/test_exp_model.py)
and the peak is the best fp32 1024^3 matmul throughput measured in the same process, with the
same thread count, right before each model's timing (on a shared machine the load changes). Target: >= 30% for the largest cpu-preset model.

    python benchmarks/bench_trainer.py [--threads 1] [--steps 20] [--profile]
"""

from __future__ import annotations

import argparse
import time

import torch

from budget.models.transformer import training_flops_per_token
from experiments.data import batch_starts, load_corpus, windows
from experiments.design import PRESETS, design_sweep
from experiments.hardware import matmul_flops_per_s, set_threads
from experiments.model import GPT
from experiments.train import make_optimizer


def step_fn(config, corpus, rng):
    """One training step of the trainer's own loop body (model, AdamW, clipping)."""
    model = GPT(config.shape)
    optimizer = make_optimizer(model, config)

    def step() -> None:
        x, y = windows(corpus.train, batch_starts(corpus.train.size, config.n_ctx,
                                                  config.batch_size, rng), config.n_ctx)
        _, loss = model(torch.from_numpy(x), torch.from_numpy(y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        float(loss.detach())

    return step


def measure(config, corpus, steps: int) -> float:
    """Tokens per second over `steps` steps after 3 warm-up steps."""
    import numpy as np

    step = step_fn(config, corpus, np.random.default_rng(0))
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * config.tokens_per_step / (time.perf_counter() - start)


def profile(config, corpus) -> None:
    import numpy as np
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step = step_fn(config, corpus, np.random.default_rng(0))
    for _ in range(3):
        step()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="torch.profiler of the largest")
    args = parser.parse_args()
    set_threads(args.threads)
    corpus = load_corpus()
    configs = {p.config.shape: p.config for p in design_sweep(PRESETS["cpu"])}
    ordered = sorted(configs.values(), key=lambda c: c.params)
    print(f"threads={torch.get_num_threads()}, {args.steps} timed steps per model")
    print(f"{'layers':>6} {'d_model':>7} {'N total':>9} {'tok/step':>8} {'tokens/s':>10} "
          f"{'GFLOP/s':>8} {'peak':>6} {'MFU':>6}")
    for config in ordered:
        peak = matmul_flops_per_s(torch.device("cpu"), torch.float32)
        tps = measure(config, corpus, args.steps)
        achieved = tps * training_flops_per_token(config.shape)
        print(f"{config.n_layer:6d} {config.d_model:7d} {config.params:9,d} "
              f"{config.tokens_per_step:8d} {tps:10,.0f} {achieved / 1e9:8.2f} "
              f"{peak / 1e9:6.1f} {achieved / peak:6.1%}")
    if args.profile:
        profile(ordered[-1], corpus)


if __name__ == "__main__":
    main()
