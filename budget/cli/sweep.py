"""`budget sweep`: real IsoFLOP training sweeps logged to MLflow (needs the [sweep] extra)."""

from __future__ import annotations

import math
import os
from typing import Any

import click

from budget.cli.common import (
    POSITIVE,
    PositiveInt,
    emit,
    json_option,
    require_extra,
)


def parse_budgets(ctx: Any, param: Any, value: str | None) -> tuple[float, ...] | None:
    """'1e12,3e12,1e13' -> (1e12, 3e12, 1e13); each a finite number > 0."""
    if value is None:
        return None
    out = []
    for part in value.split(","):
        try:
            number = float(part.strip().replace("_", ""))
        except ValueError:
            raise click.BadParameter(f"{part.strip()!r} is not a number; give comma-separated "
                                     f"FLOP budgets such as 1e12,3e12,1e13", ctx, param) from None
        if not math.isfinite(number) or number <= 0:
            raise click.BadParameter(f"{part.strip()!r} must be a finite number > 0", ctx, param)
        out.append(number)
    return tuple(out)


@click.command(name="sweep")
@click.option("--preset", type=click.Choice(["smoke", "cpu", "gpu"]), default="cpu",
              show_default=True, help="Budgets, sizes and hyperparameters (smoke: < 1 min).")
@click.option("--budgets", callback=parse_budgets, metavar="C1,C2,...",
              help="Comma-separated training-FLOP budgets (default: the preset's).")
@click.option("--points", type=PositiveInt(maximum=1000), help="Model sizes per budget (default: the preset's).")
@click.option("--data", type=click.Path(), help="Text file, folder of text files or uint16 .bin "
              "(default: the Shakespeare plays shipped with the package).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--threads", type=click.IntRange(1, 1024), help="CPU threads for torch (default: "
              "timed per model shape among 1 and all cores, cached per machine).")
@click.option("--lr", type=POSITIVE, help="Peak learning rate (default: the preset's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--family", type=click.Choice(["gpt2", "llama"]), default="gpt2", show_default=True,
              help="Block to sweep: gpt2 (GELU, LayerNorm, learned positions, tied) or llama "
                   "(SwiGLU, RMSNorm, rotary, GQA, untied), so the calibrated law fits the "
                   "family you will train.")
@click.option("--experiment", default="budget-sweep", show_default=True,
              help="MLflow experiment name.")
@click.option("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
              "else sqlite:///mlflow.db in the working directory).")
@click.option("--executor", type=click.Choice(["local", "pool", "ray"]),
              help="Where points train: local (one after another in this process), pool (a "
                   "process per GPU, or per core on a CPU: --workers), ray (each point a Ray "
                   "task; needs the [team] extra). Default: pool when more than one point "
                   "runs at once, else local. One schedule and one sweep identity for all: a "
                   "sweep resumes under any of them.")
@click.option("--ray-address", help="Ray cluster to join (default: $RAY_ADDRESS, else a "
              "cluster of this process on this machine's cores, never one already running).")
@click.option("--workers", type=click.IntRange(1, 256), help="Points trained at once by the "
              "pool, each process with one GPU or cores / N threads (default: one per GPU; on "
              "a CPU the preset's: one per core for cpu, 1 for smoke and gpu).")
@click.option("--dry-run", is_flag=True, help="Print the grid (shape, N, D, time; with ray the "
              "node expected to run each point) and train nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@json_option
def command(preset: str, budgets: tuple[float, ...] | None, points: int | None, data: str | None,
            device: str, threads: int | None, lr: float | None, seed: int, family: str,
            experiment: str, tracking_uri: str | None, executor: str | None,
            ray_address: str | None, workers: int | None, dry_run: bool, quiet: bool,
            as_json: bool) -> None:
    """Train an IsoFLOP grid of small GPT models on real text, tracked in MLflow.

    For each budget C, model sizes log-spaced around the planner's optimum N_opt, each trained
    on D = C / (6 N) tokens. Re-running skips finished points; failed points are recorded. The
    sweep's parent run carries the IsoFLOP figure and the best size and loss per budget.

    Example: budget sweep --preset smoke --budgets 1e10,3e10 --points 3
    """
    require_extra("sweep", "torch", "mlflow")
    if ray_address and executor != "ray":
        raise click.UsageError(f"--ray-address {ray_address} needs --executor ray")
    if executor == "ray":
        if workers is not None:
            raise click.UsageError(f"--workers {workers} is for --executor pool; with ray the "
                                   "cluster's CPUs decide how many points run at once")
        require_extra("team", "ray")
    from experiments.sweeps.sweep import SweepSpec, plan_sweep, run_sweep

    spec = SweepSpec(preset=preset, budgets=budgets, points=points, data=data, device=device,
                     seed=seed, experiment=experiment, tracking_uri=tracking_uri, lr=lr,
                     threads=threads, family=family, executor=executor, ray_address=ray_address,
                     workers=workers)
    result = plan_sweep(spec) if dry_run else run_sweep(spec, progress=not quiet and not as_json)
    emit(result, as_json, render)
    if not dry_run and result.runs and all(r.status == "FAILED" for r in result.runs):
        click.echo(f"Error: every point of the sweep FAILED ({result.runs[0].reason}); see the "
                   f"tag budget.failure_reason of each run", err=True)
        raise SystemExit(1)


def render(result: Any) -> str:
    """The grid as a table: budget, shape, N, D, loss or estimated time."""
    head = f"{'C (FLOPs)':>10} {'layers':>6} {'d_model':>7} {'N total':>10} {'N non-emb':>10} " \
           f"{'D tokens':>11} {'lr':>7} {'seed':>4} {'status':>9} {'val loss' if not result.dry_run else 'est. time':>9}"
    nodes = any(r.node for r in result.runs) and result.executor == "ray"
    lines = [head + ("  node" if nodes else "")]
    for r in result.runs:
        last = f"{r.estimated_seconds:8.0f}s" if result.dry_run and not r.skipped else \
            (f"{r.val_loss:9.4f}" if r.val_loss is not None else f"{'-':>9}")
        status = ("elsewhere" if r.status == "RUNNING" else "skipped") if r.skipped else r.status
        lines.append(f"{r.flops:10.2e} {r.n_layer:6d} {r.d_model:7d} {r.params:10,d} "
                     f"{r.params_non_embedding:10,d} {r.tokens:11,d} {r.lr:7.2g} {r.seed:4d} {status:>9} "
                     f"{last}" + (f"  {r.node or '-'}" if nodes else ""))
    if result.dry_run:
        total = sum(r.estimated_seconds for r in result.runs if not r.skipped) / result.workers
        at_once = f" with {result.workers} workers" if result.workers > 1 else ""
        lines.append(f"{len(result.runs)} runs, about {total / 60:.1f} min on {result.device}{at_once} "
                     f"(peak {result.peak_flops_per_s / 1e9:.0f} GFLOP/s measured, MFU 0.25 "
                     f"assumed; the sweep times each shape and corrects this as it runs); "
                     f"nothing trained")
        lines += [f"note: {n}" for n in result.notes]
    else:
        if result.seed_noise:
            n = result.seed_noise
            lines.append(f"seed noise at C={n['budget_flops']:.3g}: mean |loss(seed) - "
                         f"loss(seed+1)| {n['mean_abs_seed_gap']:.4f} (largest "
                         f"{n['max_abs_seed_gap']:.4f}) over {n['sizes']:.0f} sizes, against "
                         f"{n['median_neighbour_gap']:.4f} between neighbouring sizes and "
                         f"{n['loss_spread_over_sizes']:.4f} across all sizes ({result.loss_unit})")
        lines.append(f"experiment {result.experiment!r} (id {result.experiment_id}), parent run "
                     f"{result.parent_run_id}, store {result.tracking_uri}")
        if result.tracking_uri.startswith(("http://", "https://")):
            lines.append(f"review it: open {result.tracking_uri} in a browser, or {ui_hint(result)}")
            return "\n".join(lines)
        lines.append(f"review it: {ui_hint(result)}")
    return "\n".join(lines)


def ui_hint(result: Any) -> str:
    """`budget ui` for this experiment, with the store named whenever it is not the default
    one a bare `budget ui` in this folder and environment would open."""
    import shlex

    argv = ["budget", "ui", "--experiment", result.experiment]
    default = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    if result.explicit_uri or result.tracking_uri != default:
        argv += ["--tracking-uri", result.tracking_uri]
    return shlex.join(argv)
