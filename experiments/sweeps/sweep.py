"""Run an IsoFLOP sweep: one MLflow parent run, one nested child per point.

`run_sweep(SweepSpec(...))` opens (or primes and creates, under a lock) the store, finds or
creates the sweep's parent run (saying what a resumed sweep found), walks the points in the
order of `experiments.sweeps.schedule.Schedule` (budgets small to large; adaptive presets re-centre and
extend edges; a second seed at one budget) and hands each to `experiments.sweeps.point_run.PointRunner`
(skip if finished or running in another worker, else claim, time, train, log). Ctrl-C or
SIGTERM/SIGHUP mark the point and the parent KILLED with a reason and print the command that
resumes. `plan_sweep(spec)` is the `--dry-run`: the same walk, with points already FINISHED in
the store shown as skipped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import click

from budget import __version__
from experiments.errors import SweepError
from experiments.sweeps import eta
from experiments.sweeps.design import SweepPoint, design_sweep, get_preset, with_overrides
from experiments.sweeps.point_run import (  # noqa: F401  # budget_label, run_name: the public names
    METRIC_FLUSH,
    PointRunner,
    TrainFn,
    budget_label,
    dataset_entry,
    interrupts_held,
    run_name,
)
from experiments.sweeps.schedule import Outcome, Schedule, seed_noise
from experiments.sweeps.workers import Helpers, worker_count
from experiments.tracking import store
from experiments.tracking import writer as tr

EXECUTORS = ("local", "ray")


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
    threads: int | None = None  # torch CPU threads; None: timed per shape (experiments.training.autotune)
    family: str = "gpt2"  # "llama": sweep the Llama-style block (experiments.llama)
    executor: str = "local"  # local, or ray (each point a Ray task; experiments.sweeps.ray_exec)
    ray_address: str | None = None  # None: RAY_ADDRESS, else an in-process cluster
    workers: int | None = None  # local points at once (experiments.sweeps.workers); None: the preset's
    worker_index: int = 0  # > 0: a helper started by worker 0 (it leaves the parent run open)

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
    node: str | None = None  # Ray: the node that trained it (dry run: the one expected to)

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
    workers: int = 1  # points trained at once (experiments.sweeps.workers)
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
            "peak_flops_per_s": peak, "family": spec.family}


def _grid(spec: SweepSpec, corpus: Any, peak: float | None) -> list[SweepPoint]:
    """The static grid (the law's centres): the dry run's fallback and the ETA's basis."""
    preset = get_preset(spec.preset)
    d = _design(spec, corpus, peak)
    grid = design_sweep(preset, budgets=spec.budgets, points=spec.points,
                        vocab_size=corpus.vocab_size, seed=spec.seed, dataset=d["dataset"],
                        dataset_digest=d["dataset_digest"], code_version=d["code_version"],
                        peak_flops_per_s=peak, family=spec.family)
    if preset.seed_budget:  # the second seed's repeat of that budget
        grid += [with_overrides(p, seed=spec.seed + 1) for p in grid
                 if p.config.flops_budget == preset.seed_budget]
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
    key = [json.dumps(preset.identity(), sort_keys=True), repr(spec.budgets), repr(spec.points),
           repr(spec.lr), str(spec.seed), corpus.digest] + ([spec.family] if spec.family != "gpt2" else [])
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
    later budgets are re-centred from those results as the sweep would. With
    `executor="ray"`: the static grid and the node expected to run each point."""
    _check_executor(spec)
    if spec.executor == "ray":
        from experiments.sweeps.sweep_ray import plan_sweep_ray

        return plan_sweep_ray(spec)
    from experiments.training.data import load_corpus
    from experiments.training.hardware import (
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
    workers = _workers(spec, get_preset(spec.preset), device, None)
    notes = eta.dry_run_notes(runs, str(device), peak.flops_per_s, get_preset(spec.preset),
                              workers)
    return SweepResult(spec.experiment, None, None, tr.resolve_tracking_uri(spec.tracking_uri),
                       True, runs, str(device), peak.flops_per_s, notes=notes, workers=workers)


def _finished_if_any(spec: SweepSpec) -> dict[str, Any]:
    """FINISHED points of the experiment in an existing store (nothing is created)."""
    try:
        client, _ = tr.open_reader(spec.tracking_uri)
        found = client.get_experiment_by_name(spec.experiment)
    except Exception:  # noqa: BLE001  # no store, no server (any error): nothing is finished
        return {}
    return tr.finished_points(client, found.experiment_id) if found is not None else {}


def run_sweep(spec: SweepSpec, *, progress: bool = True, train: TrainFn | None = None) -> SweepResult:
    """Train the sweep into MLflow (see the module docstring); `train` defaults to train_run.
    `executor="ray"` runs each point of the static grid as a Ray task (experiments.sweeps.sweep_ray)."""
    _check_executor(spec)
    if spec.executor == "ray":
        from experiments.sweeps.sweep_ray import run_sweep_ray

        return run_sweep_ray(spec, progress=progress, train=train)
    from experiments.training.autotune import cpu_cores
    from experiments.training.data import load_corpus, loss_unit
    from experiments.training.hardware import (
        peak_for,
        resolve_device,
        set_threads,
        training_dtype,
    )
    from experiments.training.train import train_run

    preset = get_preset(spec.preset)
    device = resolve_device(spec.device)
    workers = _workers(spec, preset, device, train)
    if workers > 1 and spec.threads is None:  # one process per core: its threads are the rest
        spec = replace(spec, threads=max(1, cpu_cores() // workers))
    set_threads(spec.threads)
    corpus = load_corpus(spec.data)
    tracker, exp_id, uri = store.open_sweep_store(spec.tracking_uri, spec.experiment)
    client = tracker.client
    dtype = training_dtype(device)
    peak = peak_for(device, dtype)
    with store.creation_lock(uri):  # two workers started together share one parent run
        parent, resumed = _parent_run(client, exp_id, _sweep_key(spec, corpus), spec)
    context = PointRunner(tracker, parent, corpus, device, dtype, peak, train or train_run,
                          progress, spec, exp_id)
    clock = eta.Clock(_grid(spec, corpus, peak.flops_per_s), workers)
    context.clock = clock
    if progress and resumed and not spec.worker_index:
        eta.say_resuming(client, exp_id, parent, clock)
    schedule = _schedule(spec, corpus, peak.flops_per_s, context.visit, context.wait)
    helpers = Helpers()
    with _sigterm_as_interrupt():
        try:
            if workers > 1 and not spec.worker_index:
                helpers = Helpers.start(spec, uri, workers, spec.threads or 1, progress)
            tracker.log_dataset(parent, dataset_entry(corpus))
            started_ms = int(time.time() * 1000)
            outcomes = schedule.run()
            helpers.wait()
            outcomes = [context.wait(o, quiet=True) if o.status == "RUNNING" else o
                        for o in outcomes]  # the helpers' points, now ended (or re-done here)
        except KeyboardInterrupt as exc:
            with interrupts_held():
                helpers.stop()
                if not spec.worker_index:
                    _interrupted(tracker, parent, schedule.outcomes, spec, uri, exc)
            raise
        results = [_result(o) for o in outcomes]
        if helpers.procs:
            results = _by_worker(client, exp_id, parent, started_ms, helpers, results)
        noise = seed_noise(outcomes, preset.seed_budget, spec.seed)
        if not spec.worker_index:
            _finish_parent(tracker, parent, results, spec, noise)
    return SweepResult(spec.experiment, exp_id, parent, uri, False, results, str(device),
                       peak.flops_per_s, seed_noise=noise, explicit_uri=spec.tracking_uri,
                       loss_unit=loss_unit(corpus.vocab_size), workers=workers)


def _by_worker(client: Any, exp_id: str, parent: str, since_ms: int, helpers: Helpers,
               results: list[PointResult]) -> list[PointResult]:
    """With helpers, each point says which worker trained it (`node`: worker 0, worker 1...);
    a point a helper trained during this sweep is not 'skipped' (only points finished before
    it started are)."""
    index = {store.worker_id(p.pid): k for k, p in enumerate(helpers.procs, start=1)}
    index[store.worker_id()] = 0
    trained = {}
    for run in tr.find_runs(client, exp_id, f"tags.mlflow.parentRunId = '{parent}'"):
        worker = index.get(run.data.tags.get(store.WORKER, ""))
        if worker is not None and run.info.start_time >= since_ms:
            trained[run.info.run_id] = worker
    return [replace(r, skipped=False, node=f"worker {trained[r.run_id]}") if r.run_id in trained
            else r for r in results]


def _workers(spec: SweepSpec, preset: Any, device: Any, train: TrainFn | None) -> int:
    """How many local workers train points at once (experiments.sweeps.workers.worker_count); a
    helper is told the count (its ETA shares the time to go) and starts none itself; a test's
    own train function runs in this process only."""
    from experiments.training.autotune import cpu_cores

    if train is not None:
        return 1
    if spec.workers is not None and spec.workers < 1:
        raise SweepError(f"--workers {spec.workers!r} must be a whole number >= 1")
    return worker_count(spec.workers, preset.workers, device.type, cpu_cores())


def _interrupted(tracker: tr.Tracker, parent: str, outcomes: list[Outcome], spec: SweepSpec,
                 uri: str, exc: BaseException) -> None:
    """The parent KILLED with a reason, and how to resume, said out loud."""
    finished = sum(o.status == "FINISHED" for o in outcomes)
    reason = f"interrupted ({str(exc) or 'Ctrl-C'}) after {finished} finished point(s)"
    tracker.fail_run(parent, reason, status="KILLED")
    click.echo(f"sweep {reason}; the point in progress is marked KILLED (a long one resumes "
               f"from its last checkpoint). Resume with the same command: "
               f"{eta.resume_command(spec, uri)}", err=True)


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
    another live worker is training are left alone (experiments.tracking.store.is_stale)."""
    for run in tr.find_runs(client, exp_id, f"tags.mlflow.parentRunId = '{parent}' and "
                                           "attributes.status = 'RUNNING'"):
        if store.is_stale(run):
            client.set_tag(run.info.run_id, tr.FAILURE,
                           "stale: its process ended without closing it")
            client.set_terminated(run.info.run_id, status="KILLED")


def _finish_parent(tracker: tr.Tracker, parent: str, results: list[PointResult], spec: SweepSpec,
                   noise: dict[str, float] | None) -> None:
    finished = [r for r in results if r.status == "FINISHED" and r.val_loss is not None]
    tracker.set_tags(parent, {"budget.points_finished": str(len(finished)),
                     "budget.points_failed": str(sum(r.status == "FAILED" for r in results)),
                     "budget.points_elsewhere": str(sum(r.status == "RUNNING" for r in results))})
    if noise:
        tracker.log_metrics(parent, {f"seed_noise.{k}": v for k, v in noise.items()})
    if finished:
        from experiments.review.plots import isoflop_png

        with tempfile.TemporaryDirectory() as tmp:
            path = isoflop_png([(r.flops, r.params, float(r.val_loss)) for r in finished  # type: ignore[arg-type]
                                ], Path(tmp) / "isoflop.png",
                               title=f"IsoFLOP curves ({spec.experiment})")
            tracker.log_artifact(parent, path)
    tracker.end_run(parent, "FINISHED")


def _check_executor(spec: SweepSpec) -> None:
    if spec.executor not in EXECUTORS:
        raise SweepError(f"--executor {spec.executor!r} is not one of {', '.join(EXECUTORS)}")
