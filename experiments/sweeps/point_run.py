"""One sweep point, start to end, wherever an executor runs it (this process, a pool worker, a
Ray task): `run_point(job)`.

The job (`PointJob`, picklable) names the store, the parent run, the point and a submission
token. The runner opens the point's child run (config hash, point index, attempt, token, worker
and heartbeat tags; the config as params with the loss unit, budget, size and tokens), claims the
point in the store (`experiments.tracking.store.claim`: of two drivers' runs of one point the
older keeps it, so a point is never trained twice), times the shape (`experiments.training.
autotune`), trains it and ends the run FINISHED, FAILED with the reason (any exception of the
training) or KILLED (Ctrl-C or SIGTERM in this process, re-raised).

Idempotent attempts: when an executor runs the same submission again (a Ray task retried after
its worker or node was lost, a pool rebuilt after a worker died), the runner finds the runs its
earlier attempts left RUNNING under the same token, closes them KILLED with the reason, and
trains the point once more as attempt k + 1.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from experiments.sweeps.points import MetricSink, dataset_entry, failure_reason, interrupts_held
from experiments.tracking import names, store
from experiments.tracking import writer as tr

TrainFn = Callable[..., Any]
NODE_ENV = "BUDGET_NODE"  # set by an executor that knows better than the host name
LOST = "its worker was lost (the process or node died) while it trained; the executor retried it"


@dataclass(frozen=True)
class PointJob:
    """What a worker needs to train one point into the sweep's parent run."""

    uri: str
    experiment_id: str
    parent: str
    point: Any  # experiments.sweeps.design.SweepPoint
    index: str  # "3/12": its place in the schedule
    token: str  # one per submission: the same token on a retry (idempotent attempts)
    executor: str
    data: str | None = None
    device: str = "auto"
    threads: int | None = None
    progress: bool = False


@dataclass(frozen=True)
class PointOutcome:
    """How the point's run ended, as the executor reports it back to the driver. ELSEWHERE: the
    point is FINISHED or trained by another driver (`run_id` is that run)."""

    run_id: str | None
    status: str  # FINISHED, FAILED, KILLED or ELSEWHERE
    val_loss: float | None = None
    reason: str | None = None
    node: str | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=2)
def _corpus(data: str | None) -> Any:
    from experiments.training.data import load_corpus

    return load_corpus(data)


def node_name() -> str:
    """The host (in a Ray task: its node's address and id, two nodes may share a host)."""
    return os.environ.get(NODE_ENV) or socket.gethostname()


def run_point(job: PointJob, train: TrainFn | None = None) -> PointOutcome:
    """Train `job.point` into a child run of `job.parent` (see the module docstring)."""
    from experiments.training.hardware import peak_for, resolve_device, training_dtype

    tracker = tr.Tracker(job.uri)
    h = tr.config_hash(job.point.config.to_dict())
    attempt = _close_earlier_attempts(tracker, job, h) + 1
    found = taken(tracker, job.experiment_id, h)
    if found is not None:
        return _elsewhere(found)
    corpus = _corpus(job.data)
    device = resolve_device(job.device)
    run_id = _open(tracker, job, h, attempt, corpus)
    winner = store.claim(tracker.client, job.experiment_id, h, run_id)
    if winner is not None:
        return _elsewhere(tracker.client.get_run(winner))
    plan = _plan(job, corpus, device, train)
    dtype = plan.execution.dtype if plan is not None else training_dtype(device)
    peak = peak_for(device, dtype)
    return _train(tracker, job, run_id, h, corpus, device, dtype, peak, plan, train)


def _close_earlier_attempts(tracker: tr.Tracker, job: PointJob, h: str) -> int:
    """Runs of this submission an earlier attempt left RUNNING: KILLED with the reason; how
    many runs of this point the parent holds already (its attempts so far)."""
    earlier = tr.find_runs(tracker.client, job.experiment_id,
                           f"tags.`{names.PARENT_RUN}` = '{job.parent}' and "
                           f"tags.`{names.CONFIG_HASH}` = '{h}'")
    mine = [r.info.run_id for r in earlier if r.info.status == "RUNNING"
            and r.data.tags.get(names.SUBMISSION) == job.token]
    tr.close_running(tracker, mine, LOST, status="KILLED")
    return len(earlier)


def taken(tracker: tr.Tracker, exp_id: str, h: str) -> Any:
    """The FINISHED run of this point, else a live RUNNING one (another driver's), else None."""
    runs = tr.find_runs(tracker.client, exp_id, f"tags.`{names.ROLE}` = '{names.ROLE_POINT}' "
                                                f"and tags.`{names.CONFIG_HASH}` = '{h}'")
    for run in runs:
        if run.info.status == "FINISHED":
            return run
    live = [r for r in runs if r.info.status == "RUNNING" and not store.is_stale(r)]
    return live[0] if live else None


def _elsewhere(run: Any) -> PointOutcome:
    loss = run.data.metrics.get(names.FINAL_VAL_LOSS) if run.info.status == "FINISHED" else None
    return PointOutcome(str(run.info.run_id), "ELSEWHERE", loss,
                        reason=f"{run.info.status} in {run.data.tags.get(store.WORKER, '?')}")


def _open(tracker: tr.Tracker, job: PointJob, h: str, attempt: int, corpus: Any) -> str:
    from experiments.training.data import loss_unit

    c = job.point.config
    run_id = tracker.create_run(job.experiment_id, names.point_run_name(c.flops_budget, c.params,
                                                                        c.seed), {
        names.ROLE: names.ROLE_POINT, names.CONFIG_HASH: h, names.POINT_INDEX: job.index,
        names.ATTEMPT: str(attempt), names.SUBMISSION: job.token, names.EXECUTOR: job.executor,
        store.WORKER: store.worker_id(), store.HEARTBEAT: f"{time.time():.0f}",
        names.NODE: node_name(), names.LOSS_UNIT: loss_unit(corpus.vocab_size)},
        parent=job.parent)
    tracker.log_params(run_id, {**c.to_dict(), names.LOSS_UNIT_PARAM: loss_unit(corpus.vocab_size)})
    return run_id


def _plan(job: PointJob, corpus: Any, device: Any, train: TrainFn | None) -> Any:
    """The timed (threads, execution) for this shape; None for a test's own train fn."""
    from experiments.training.autotune import COMPILE_MIN_SECONDS, choose
    from experiments.training.hardware import set_threads

    set_threads(job.threads)
    if train is not None:
        return None
    est = job.point.estimated_seconds
    plan = choose(job.point.config, corpus, device, job.threads,
                  bool(est and est > COMPILE_MIN_SECONDS))
    set_threads(plan.threads)
    return plan


def _train(tracker: tr.Tracker, job: PointJob, run_id: str, h: str, corpus: Any, device: Any,
           dtype: Any, peak: Any, plan: Any, train: TrainFn | None) -> PointOutcome:
    from experiments.training.train import train_run

    c = job.point.config
    extra: dict[str, Any] = {}
    tags = {names.DEVICE: str(device), names.DTYPE: str(dtype).replace("torch.", ""),
            names.PEAK_SOURCE: peak.source, names.PEAK_FLOPS: f"{peak.flops_per_s:.4g}"}
    if plan is not None:
        extra = {"execution": plan.execution, "checkpoint": checkpoint_path(job.uri, h)}
        tags.update({names.EXECUTION: plan.label, names.THREADS: str(plan.threads),
                     names.TIMED_TPS: f"{plan.tokens_per_s:.0f}"})
    tracker.set_tags(run_id, tags)
    tracker.log_dataset(run_id, dataset_entry(corpus))
    tracker.log_dict(run_id, c.to_dict(), names.CONFIG_JSON)
    sink = MetricSink(tracker, run_id, heartbeat=True)
    start = time.perf_counter()
    try:
        result = (train or train_run)(c, corpus, device=device, dtype=dtype, peak=peak,
                                      on_metrics=sink.add, progress=job.progress, **extra)
    except KeyboardInterrupt as exc:
        with interrupts_held():
            sink.flush()
            tracker.fail_run(run_id, f"interrupted ({str(exc) or 'Ctrl-C'}) at step "
                                     f"{sink.last_step} of {c.steps}", status="KILLED")
        raise
    except Exception as exc:  # noqa: BLE001  # any failure of the training: record it, go on
        sink.flush()
        reason = failure_reason(exc)
        tracker.fail_run(run_id, reason)
        return PointOutcome(run_id, "FAILED", reason=reason, node=node_name())
    sink.flush()
    tracker.log_metrics(run_id, {names.TOKENS: result.tokens, names.FLOPS_MODEL: result.flops,
                                 names.FLOPS_6ND: 6.0 * c.params * result.tokens,
                                 names.SECONDS: result.seconds, names.FINAL_MFU: result.mfu})
    _log_curve(tracker, run_id, result, sink,
               names.point_run_name(c.flops_budget, c.params, c.seed))
    tracker.end_run(run_id, "FINISHED")
    return PointOutcome(run_id, "FINISHED", result.val_loss, node=node_name(),
                        seconds=time.perf_counter() - start)


def _log_curve(tracker: tr.Tracker, run_id: str, result: Any, sink: MetricSink, name: str) -> None:
    import tempfile

    from experiments.review.plots import loss_curve_png

    with tempfile.TemporaryDirectory() as tmp:
        path = loss_curve_png(result.curve, sink.val_points, name,
                              Path(tmp) / names.LOSS_CURVE_PNG)
        tracker.log_artifact(run_id, path)


def checkpoint_path(uri: str, h: str) -> Path:
    """Beside a local store (`checkpoints/<hash>.pt`), else in the user cache."""
    from experiments.training.hardware import cache_path

    db = store.sqlite_path(uri)
    root = db.resolve().parent if db is not None else cache_path().parent
    return root / "checkpoints" / f"{h}.pt"

