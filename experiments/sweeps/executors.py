"""Where points train: one protocol, three executors.

`submit(job) -> Pending` hands a point (`experiments.sweeps.point_run.PointJob`) to a worker;
`Pending.result()` blocks until its `PointOutcome`. What a lost worker means is the executor's
business and the same for all: the point is run again (at most `MAX_RETRIES` more times) under
the same submission token, so the point runner closes the dead attempt KILLED with the reason and
trains it afresh (idempotent attempts); if the executor gives up, the outcome is KILLED with the
reason. An exception raised by the runner outside the training (the store, the corpus) is the
point's FAILED with that reason. `cancel()` stops every point in flight (Ctrl-C, SIGTERM).

- `InProcess`: the point trains in this process when it is submitted (tests, one point at once).
- `ProcessPool`: one process per device (`CUDA_VISIBLE_DEVICES` set per worker before torch is
  imported) or, on a CPU, one per core with cores / N torch threads each; workers are spawned
  (fork after torch is unsafe), get SIGTERM when the driver dies (Linux) and treat SIGTERM as
  Ctrl-C, so their runs end KILLED with a reason. A worker that dies breaks Python's pool: the pool
  is rebuilt and every point it held is run again.
- `experiments.sweeps.ray_exec.RayExecutor`: each point a Ray task.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Protocol

from experiments.sweeps.point_run import PointJob, PointOutcome, run_point
from experiments.sweeps.points import failure_reason
from experiments.tracking import names
from experiments.tracking import writer as tr

MAX_RETRIES = 2  # a point whose worker is lost is run again at most this many times
GAVE_UP = "its worker was lost {n} time(s) (process or node died); gave up after {r} retries"


class Pending(Protocol):
    def result(self) -> PointOutcome: ...


class Executor(Protocol):
    name: str
    slots: int  # points trained at once

    def submit(self, job: PointJob) -> Pending: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


def close_submission(job: PointJob, reason: str, status: str) -> PointOutcome:
    """The runs of a submission still RUNNING end `status` with `reason`; its outcome."""
    tracker = tr.Tracker(job.uri)
    runs = tr.find_runs(tracker.client, job.experiment_id,
                        f"tags.`{names.SUBMISSION}` = '{job.token}'")
    closed = tr.close_running(tracker, [r.info.run_id for r in runs], reason, status=status)
    run_id = closed[0] if closed else (str(runs[0].info.run_id) if runs else None)
    return PointOutcome(run_id, status, reason=reason)


class _Done:
    def __init__(self, outcome: PointOutcome) -> None:
        self.outcome = outcome

    def result(self) -> PointOutcome:
        return self.outcome


class InProcess:
    """Each point trained in this process, at once, when it is submitted."""

    name, slots = "local", 1

    def __init__(self, train: Callable[..., Any] | None = None) -> None:
        self.train = train

    def submit(self, job: PointJob) -> Pending:
        try:
            return _Done(run_point(job, self.train))
        except Exception as exc:  # noqa: BLE001  # outside the training: the point FAILED
            return _Done(close_submission(job, failure_reason(exc), "FAILED"))

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _init_worker(devices: Any, threads: int) -> None:  # pragma: no cover - in the worker
    """Runs first in each pool worker: its device, its threads, SIGTERM as Ctrl-C."""
    device = devices.get()
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(device)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if sys.platform == "linux":
        _die_with_parent()
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    import torch

    torch.set_num_threads(threads)


class _PoolPending:
    def __init__(self, pool: "ProcessPool", job: PointJob) -> None:
        self.pool, self.job, self.lost = pool, job, 0
        self.future: Future[PointOutcome] = pool.executor.submit(run_point, job)

    def result(self) -> PointOutcome:
        while True:
            try:
                return self.future.result()
            except BrokenProcessPool:
                self.lost += 1
                if self.lost > MAX_RETRIES:
                    return close_submission(self.job, GAVE_UP.format(n=self.lost, r=MAX_RETRIES),
                                            "KILLED")
                self.future = self.pool.resubmit(self.job)
            except Exception as exc:  # noqa: BLE001  # the runner raised outside the training
                return close_submission(self.job, failure_reason(exc), "FAILED")


class ProcessPool:
    """Points in worker processes, one device (or one share of the cores) per process."""

    name = "pool"

    def __init__(self, workers: int, threads: int, gpus: int = 0) -> None:
        self.slots, self.threads, self.gpus = workers, threads, gpus
        self.executor = self._start()
        self.pending: list[_PoolPending] = []

    def _start(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        devices = ctx.Queue()
        for k in range(self.slots):
            devices.put(k % self.gpus if self.gpus else None)
        return ProcessPoolExecutor(self.slots, mp_context=ctx, initializer=_init_worker,
                                   initargs=(devices, self.threads))

    def submit(self, job: PointJob) -> Pending:
        pending = _PoolPending(self, job)
        self.pending.append(pending)
        return pending

    def resubmit(self, job: PointJob) -> Future[PointOutcome]:
        """After a worker died: a fresh pool (once per breakage) and the job on it again."""
        try:
            return self.executor.submit(run_point, job)
        except BrokenProcessPool:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._start()
            return self.executor.submit(run_point, job)

    def cancel(self) -> None:
        """SIGTERM to every worker (each ends its run KILLED, interrupted), then wait for them."""
        procs = list(getattr(self.executor, "_processes", {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=30)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
