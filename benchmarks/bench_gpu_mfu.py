"""MFU of the `gpu` preset's first budget on this machine's GPUs, against the bf16 peak.

Runs `budget sweep --preset gpu --budgets <first>` on the process pool (one device per worker,
`CUDA_VISIBLE_DEVICES` set per process) into a throw-away store, then prints each point's
measured MFU (the trainer's executed FLOPs per second over the device's catalog bf16 dense peak,
tag `budget.peak_flops_per_s`) and the mean. Without a GPU it says so and exits 0 (CPU CI).

    python benchmarks/bench_gpu_mfu.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("no GPU here: the gpu preset's MFU needs one (skipped)")
        return 0
    from mlflow.tracking import MlflowClient

    from experiments.sweeps.design import get_preset
    from experiments.sweeps.sweep import SweepSpec, run_sweep
    from experiments.tracking import names

    first = get_preset("gpu").budgets[0]
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        result = run_sweep(SweepSpec(preset="gpu", budgets=(first,), device="cuda",
                                     experiment="gpu-mfu", tracking_uri=uri, executor="pool"),
                           progress=False)
        client = MlflowClient(uri)
        name = torch.cuda.get_device_name(0)
        print(f"gpu preset, C={first:.3g}, {result.workers} worker(s), {name}")
        mfus = []
        for r in result.runs:
            run = client.get_run(r.run_id) if r.run_id else None
            if run is None or r.status != "FINISHED":
                print(f"  N={r.params:>12,d} {r.status} {r.reason or ''}")
                continue
            mfu = run.data.metrics[names.FINAL_MFU]
            peak = float(run.data.tags[names.PEAK_FLOPS])
            mfus.append(mfu)
            print(f"  N={r.params:>12,d} loss {r.val_loss:.4f} MFU {mfu:.3f} of "
                  f"{peak / 1e12:.0f} TFLOP/s ({run.data.tags[names.DTYPE]}, "
                  f"{run.data.tags[names.PEAK_SOURCE]})")
        if mfus:
            print(f"mean MFU {sum(mfus) / len(mfus):.3f} over {len(mfus)} point(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
