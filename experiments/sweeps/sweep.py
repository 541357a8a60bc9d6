"""Run an IsoFLOP sweep: one engine, one MLflow parent run, one nested child per point.

`run_sweep(SweepSpec(...))` opens (or primes and creates, under a lock) the store, closes the
runs of dead processes in the experiment, finds or creates the sweep's parent run (one identity
for every executor, so a sweep resumes across them), and walks the points in the order of
`experiments.sweeps.schedule.Schedule` (budgets small to large; adaptive presets re-centre and
extend edges; a second seed at one budget), each handed through `experiments.sweeps.driver`
to an executor: in-process, a process pool or Ray (`experiments.sweeps.executors`). Ctrl-C or
SIGTERM/SIGHUP cancel the points in flight, mark them and the parent KILLED with a reason and
print the command that resumes; any other failure (the store, a full disk) ends them FAILED with
the reason and is one SweepError line. `plan_sweep(spec)` is the `--dry-run`: the same walk, with
points already FINISHED in the store shown as skipped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import click

from budget import __version__
from experiments.errors import SweepError
from experiments.sweeps import eta
from experiments.sweeps.design import SweepPoint, design_sweep, get_preset, with_overrides
from experiments.sweeps.points import dataset_entry, failure_reason, interrupts_held
from experiments.sweeps.schedule import Outcome, Schedule, seed_noise
from experiments.tracking import names, store, sweep_runs
from experiments.tracking import writer as tr

TrainFn = Callable[..., Any]



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
    executor: str | None = None  # local, pool or ray (experiments.sweeps.driver); None: pool
    # when more than one point runs at once, else local
    ray_address: str | None = None  # None: RAY_ADDRESS, else a cluster of this process
    workers: int | None = None  # pool: points at once; None: one per GPU, else the preset's

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PointResult:
    """One grid point's outcome."""

    run_id: str | None
    status: str  # FINISHED, FAILED, KILLED, RUNNING (another driver has it) or PLANNED (dry
    # run); skipped=True: finished earlier or by another driver
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
    node: str | None = None  # the host (Ray: node) that trained it

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
    workers: int = 1  # points trained at once (the executor's slots)
    executor: str = "local"
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
                  skipped=o.skipped, reason=o.reason, node=o.node)


def plan_sweep(spec: SweepSpec) -> SweepResult:
    """The points `run_sweep` would train, with time estimates; trains nothing, logs nothing.
    Points already FINISHED in an existing store are shown as skipped; an adaptive preset's
    later budgets are re-centred from those results as the sweep would (every executor walks
    the same schedule)."""
    from experiments.sweeps.driver import EXECUTORS, pool_size
    from experiments.training.autotune import cpu_cores
    from experiments.training.data import load_corpus
    from experiments.training.hardware import (
        peak_for,
        resolve_device,
        set_threads,
        training_dtype,
    )

    preset = get_preset(spec.preset)
    if spec.executor is not None and spec.executor not in EXECUTORS:
        raise SweepError(f"--executor {spec.executor!r} is not one of {', '.join(EXECUTORS)}")
    set_threads(spec.threads)
    corpus = load_corpus(spec.data)
    device = resolve_device("auto" if spec.executor == "ray" else spec.device)
    peak = peak_for(device, training_dtype(device))
    done = _finished_if_any(spec)

    def visit(p: SweepPoint) -> Outcome:
        run = done.get(tr.config_hash(p.config.to_dict()))
        if run is not None:
            return Outcome(p, "FINISHED", run.data.metrics.get(names.FINAL_VAL_LOSS),
                           run.info.run_id, skipped=True)
        return Outcome(p, "PLANNED")

    outcomes = _schedule(spec, corpus, peak.flops_per_s, visit).run()
    runs = [_result(o) for o in outcomes]
    workers = 1 if spec.executor == "local" else pool_size(spec.workers, preset.workers,
                                                           device.type, cpu_cores(), 1)
    notes = eta.dry_run_notes(runs, str(device), peak.flops_per_s, preset, workers)
    return SweepResult(spec.experiment, None, None, tr.resolve_tracking_uri(spec.tracking_uri),
                       True, runs, str(device), peak.flops_per_s, notes=notes, workers=workers,
                       executor=spec.executor or ("pool" if workers > 1 else "local"))


def _finished_if_any(spec: SweepSpec) -> dict[str, Any]:
    """FINISHED points of the experiment in an existing store (nothing is created)."""
    try:
        client, _ = tr.open_reader(spec.tracking_uri)
        found = client.get_experiment_by_name(spec.experiment)
    except Exception:  # noqa: BLE001  # no store, no server (any error): nothing is finished
        return {}
    return tr.finished_points(client, found.experiment_id) if found is not None else {}


def run_sweep(spec: SweepSpec, *, progress: bool = True, train: TrainFn | None = None) -> SweepResult:
    """Train the sweep into MLflow (see the module docstring); `train` defaults to train_run
    (a caller's own function runs in-process, or in Ray tasks). The executor is ready (a Ray
    cluster joined) before the store is touched, so a bad address opens no run."""
    from experiments.sweeps.driver import make_executor
    from experiments.training.data import load_corpus
    from experiments.training.hardware import resolve_device

    preset = get_preset(spec.preset)
    device = resolve_device("auto" if spec.executor == "ray" else spec.device)
    corpus = load_corpus(spec.data)
    store.check_writable(store.absolute_uri(tr.resolve_tracking_uri(spec.tracking_uri)))
    executor = make_executor(spec, preset, device, train, progress)
    try:
        if hasattr(executor, "check_store"):
            executor.check_store(tr.resolve_tracking_uri(spec.tracking_uri))
        return _drive(spec, preset, device, corpus, executor, progress)
    finally:
        executor.close()


def _drive(spec: SweepSpec, preset: Any, device: Any, corpus: Any, executor: Any,
           progress: bool) -> SweepResult:
    """The parent run, the schedule over the executor, the parent's end (every exit path)."""
    from experiments.sweeps.driver import Driver
    from experiments.training.data import loss_unit
    from experiments.training.hardware import peak_for, training_dtype

    tracker, exp_id, uri = store.open_sweep_store(spec.tracking_uri, spec.experiment)
    peak = peak_for(device, training_dtype(device))
    with store.creation_lock(uri):  # two drivers started together share one parent run
        sweep_runs.close_dead_runs(tracker, exp_id)
        parent, resumed = sweep_runs.open_parent(tracker, exp_id, _sweep_key(spec, corpus), spec)
    beat = sweep_runs.Heartbeat(tracker, parent)
    driver: Driver | None = None
    try:
        with _sigterm_as_interrupt():
            clock = eta.Clock(_grid(spec, corpus, peak.flops_per_s), executor.slots)
            driver = Driver(tracker, exp_id, parent, executor, spec, progress, clock)
            if progress and resumed:
                eta.say_resuming(tracker.client, exp_id, parent, clock)
            try:
                tracker.log_dataset(parent, dataset_entry(corpus))
                schedule = _schedule(spec, corpus, peak.flops_per_s, driver.visit, driver.wait)
                outcomes = [driver.wait(o, quiet=True) for o in schedule.run()]
            except BaseException:
                with interrupts_held():
                    executor.cancel()
                raise
            results = [_result(o) for o in outcomes]
            noise = seed_noise(outcomes, preset.seed_budget, spec.seed)
            finished = [(r.flops, r.params, float(r.val_loss)) for r in results
                        if r.status == "FINISHED" and r.val_loss is not None]
            counts = Counter(r.status for r in results)
            sweep_runs.finish_parent(tracker, parent, finished, dict(counts), spec.experiment,
                                     loss_unit(corpus.vocab_size), noise)
    except KeyboardInterrupt as exc:
        with interrupts_held():
            _interrupted(tracker, parent, driver, spec, uri, exc)
        raise
    except BaseException as exc:
        reason = failure_reason(exc)
        with interrupts_held():
            _close_after(tracker, parent, driver, reason, "FAILED")
        if isinstance(exc, SweepError):
            raise
        raise SweepError(f"sweep {spec.experiment!r} stopped: {reason}; its runs are closed "
                         f"FAILED with this reason") from exc
    finally:
        beat.stop()
    shown = tr.redact("", tr.resolve_tracking_uri(spec.tracking_uri))  # as the user gave it
    return SweepResult(spec.experiment, exp_id, parent, shown, False, results, str(device),
                       peak.flops_per_s, seed_noise=noise, explicit_uri=spec.tracking_uri,
                       loss_unit=loss_unit(corpus.vocab_size), workers=executor.slots,
                       executor=executor.name)


def _close_after(tracker: tr.Tracker, parent: str, driver: Any, reason: str,
                 status: str) -> None:
    """Best effort after a failure: this driver's runs and the parent end `status` (the store
    itself may be what failed)."""
    try:
        if driver is not None:
            driver.close_own(reason, status)
        if tracker.status(parent) == "RUNNING":
            tracker.fail_run(parent, reason, status=status)
    except Exception:  # noqa: BLE001  # a full disk or dead server: nothing more can be written
        pass


def _interrupted(tracker: tr.Tracker, parent: str, driver: Any, spec: SweepSpec, uri: str,
                 exc: BaseException) -> None:
    """The parent and the points in flight KILLED with a reason, and how to resume, said out
    loud."""
    finished = 0
    if driver is not None:
        finished = len(tr.find_runs(tracker.client, driver.exp_id,
                                    f"tags.`{names.SUBMISSION}` LIKE '{driver.token}-%' and "
                                    "attributes.status = 'FINISHED'"))
    reason = f"interrupted ({str(exc) or 'Ctrl-C'}) after {finished} finished point(s)"
    _close_after(tracker, parent, driver, reason, "KILLED")
    click.echo(f"sweep {reason}; the points in progress are marked KILLED (a long one resumes "
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
