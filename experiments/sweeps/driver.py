"""The driver's side of the one engine: the schedule's `visit` and `wait` over an executor.

`visit(point)` finds the point FINISHED in the store (skipped) or live in another driver (waited
for), else submits it to the executor (`experiments.sweeps.executors`) and returns it PENDING.
`wait(outcome)` turns a PENDING point into its outcome (the executor says what a lost worker
became), and polls the store for a point another driver holds until it ends (re-submitting it
here if that driver died). `make_executor` picks in-process, the process pool or Ray.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import click

from experiments.errors import SweepError
from experiments.sweeps.executors import Executor, InProcess, ProcessPool, gpu_count
from experiments.sweeps.point_run import PointJob, PointOutcome, taken
from experiments.sweeps.schedule import Outcome
from experiments.tracking import names, store
from experiments.tracking import writer as tr

EXECUTORS = ("local", "pool", "ray")
WAIT_POLL_S = 5.0  # how often a point another driver holds is looked at again


def pool_size(requested: int | None, preset_workers: int, device_type: str, cores: int,
              gpus: int) -> int:
    """Points at once: --workers, else one per GPU on a GPU, else the preset's (0: one per
    core) on a CPU."""
    if requested is not None:
        return requested
    if device_type == "cuda":
        return max(1, gpus)
    return max(1, cores if preset_workers == 0 else preset_workers)


def make_executor(spec: Any, preset: Any, device: Any, train: Any, progress: bool) -> Executor:
    """--executor local|pool|ray; unset: the pool when more than one point runs at once."""
    from experiments.training.autotune import cpu_cores

    if spec.executor is not None and spec.executor not in EXECUTORS:
        raise SweepError(f"--executor {spec.executor!r} is not one of {', '.join(EXECUTORS)}")
    if spec.workers is not None and spec.workers < 1:
        raise SweepError(f"--workers {spec.workers!r} must be a whole number >= 1")
    if spec.executor == "ray":
        from experiments.sweeps.ray_exec import RayExecutor

        return RayExecutor(spec.ray_address, spec.threads, spec.device, train, quiet=not progress)
    gpus = gpu_count() if device.type == "cuda" else 0
    workers = pool_size(spec.workers, preset.workers, device.type, cpu_cores(), gpus)
    kind = spec.executor or ("pool" if workers > 1 and train is None else "local")
    if kind == "local":
        return InProcess(train)
    if train is not None:
        raise SweepError("a train function of the caller runs in this process only "
                         "(executor 'local')")
    threads = spec.threads or (1 if gpus else max(1, cpu_cores() // workers))
    return ProcessPool(workers, threads, gpus)


class Driver:
    """visit/wait for the schedule; every submission carries this driver's token prefix."""

    def __init__(self, tracker: tr.Tracker, exp_id: str, parent: str, executor: Executor,
                 spec: Any, progress: bool, clock: Any) -> None:
        self.tracker, self.exp_id, self.parent = tracker, exp_id, parent
        self.executor, self.spec, self.progress, self.clock = executor, spec, progress, clock
        self.uri = store.absolute_uri(tracker.uri)
        self.token = uuid.uuid4().hex[:12]
        self.count = 0

    def visit(self, point: Any) -> Outcome:
        found = taken(self.tracker, self.exp_id, tr.config_hash(point.config.to_dict()))
        if found is not None:
            self.clock.elsewhere(point)
            return from_run(point, found)
        self.count += 1
        job = PointJob(self.uri, self.exp_id, self.parent, point, str(self.count),
                       f"{self.token}-{self.count}", self.executor.name, self.spec.data,
                       self.spec.device, self._threads(),
                       self.progress and isinstance(self.executor, InProcess))
        if self.progress:
            c = point.config
            click.echo(f"sweep point {self.count}: C={c.flops_budget:.3g} N={c.params:,} "
                       f"D={c.tokens:,} lr={c.lr:.2g} seed={c.seed} -> {self.executor.name}",
                       err=True)
        return Outcome(point, "PENDING", pending=self.executor.submit(job))

    def _threads(self) -> int | None:
        """The point's torch threads: --threads, else a process pool worker's share of the cores
        (a worker timing 'all cores' would oversubscribe them), else None: timed per shape."""
        return self.spec.threads or (self.executor.threads if isinstance(self.executor, ProcessPool)
                                     else None)

    def wait(self, outcome: Outcome, quiet: bool = False) -> Outcome:
        """A PENDING point's outcome; a point another driver holds, once it has ended."""
        if outcome.status == "PENDING":
            outcome = self._resolved(outcome.point, outcome.pending.result())
        if outcome.status != "RUNNING":
            return outcome
        h = tr.config_hash(outcome.point.config.to_dict())
        if self.progress and not quiet:
            c = outcome.point.config
            click.echo(f"  waiting for {names.point_run_name(c.flops_budget, c.params, c.seed)} "
                       f"(run {outcome.run_id}, another driver)", err=True)
        while True:
            found = taken(self.tracker, self.exp_id, h)
            if found is None:  # that driver died: train it here
                return self.wait(self.visit(outcome.point), quiet=True)
            if found.info.status == "FINISHED":
                return from_run(outcome.point, found)
            time.sleep(WAIT_POLL_S)

    def _resolved(self, point: Any, po: PointOutcome) -> Outcome:
        if po.status == "ELSEWHERE":
            run = self.tracker.client.get_run(str(po.run_id))
            self.clock.elsewhere(point)
            return from_run(point, run)
        self.clock.done(point, po.seconds or math.nan, po.status == "FINISHED")
        if self.progress:
            c = point.config
            loss = f", val loss {po.val_loss:.4f}" if po.val_loss is not None else ""
            why = f": {po.reason}" if po.reason else ""
            click.echo(f"  C={c.flops_budget:.3g} N={c.params:,} {po.status} on {po.node or '?'}"
                       f"{loss}{why}", err=True)
        return Outcome(point, po.status, po.val_loss, po.run_id, reason=po.reason,
                       seconds=po.seconds, node=po.node)

    def close_own(self, reason: str, status: str) -> list[str]:
        """Runs of this driver's submissions still RUNNING: ended `status` with `reason`."""
        runs = tr.find_runs(self.tracker.client, self.exp_id,
                            f"tags.`{names.SUBMISSION}` LIKE '{self.token}-%' and "
                            "attributes.status = 'RUNNING'")
        return tr.close_running(self.tracker, [r.info.run_id for r in runs], reason, status)


def from_run(point: Any, run: Any) -> Outcome:
    """A point found in the store: FINISHED (skipped) or RUNNING in another driver."""
    if run.info.status == "FINISHED":
        return Outcome(point, "FINISHED", run.data.metrics.get(names.FINAL_VAL_LOSS),
                       run.info.run_id, skipped=True)
    return Outcome(point, "RUNNING", None, run.info.run_id, skipped=True,
                   reason=f"running in another driver ({run.data.tags.get(store.WORKER, '?')})")
