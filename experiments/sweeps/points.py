"""One sweep point as one MLflow run, split where an executor needs it split.

`open_point` runs on the driver: it creates the child run (parent, point index, attempt, config
hash and executor tags; the config as params and config.json; the corpus as the dataset input)
and returns its id. `train_point` runs wherever the point trains (this process, or a Ray task
handed the run id): it records the device, dtype, peak and node, trains, buffers per-step
metrics into batches, logs the final metrics and the loss curve, and ends the run FINISHED, or
FAILED with the reason (any exception of the training), or KILLED on Ctrl-C (re-raised).
Every write goes through `experiments.tracking.writer.Tracker`.
"""

from __future__ import annotations

import socket
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from experiments.tracking import names
from experiments.tracking.writer import Tracker

METRIC_FLUSH = 100  # steps buffered between MLflow log_batch calls
FLUSH_EVERY_S = 10.0  # ... or seconds, whichever comes first
REASON_CHARS = 4000  # MLflow tag values hold 8000 characters; a reason rarely needs half


@dataclass(frozen=True)
class PointOutcome:
    """How a point's run ended, as the executor reports it back to the sweep."""

    run_id: str
    status: str  # FINISHED, FAILED or KILLED
    val_loss: float | None = None
    reason: str | None = None
    node: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def failure_reason(exc: BaseException) -> str:
    """'Type: message' on one line, at most REASON_CHARS characters."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:REASON_CHARS]


def open_point(tracker: Tracker, experiment_id: str, parent: str, point: Any, config_hash: str,
               *, index: str, attempt: int, executor: str, dataset: Any) -> str:
    """Create the point's child run on the driver; its id (the executor trains into it)."""
    c = point.config
    run_id = tracker.create_run(experiment_id, names.point_run_name(c.flops_budget, c.params), {
        names.ROLE: names.ROLE_POINT, names.CONFIG_HASH: config_hash, names.POINT_INDEX: index,
        names.ATTEMPT: str(attempt), names.EXECUTOR: executor}, parent=parent)
    tracker.log_params(run_id, c.to_dict())
    tracker.log_dataset(run_id, dataset)
    tracker.log_dict(run_id, c.to_dict(), names.CONFIG_JSON)
    return run_id


def train_point(tracker: Tracker, run_id: str, config: Any, corpus: Any, *, device: Any,
                dtype: Any, peak: Any, train: Callable[..., Any], progress: bool,
                node: str | None = None, on_failure: Callable[[str], None] | None = None
                ) -> PointOutcome:
    """Train `config` into the open run `run_id` and end it (see the module docstring)."""
    node = node or socket.gethostname()
    tracker.set_tags(run_id, {names.DEVICE: str(device),
                              names.DTYPE: str(dtype).replace("torch.", ""),
                              names.PEAK_SOURCE: peak.source,
                              names.PEAK_FLOPS: f"{peak.flops_per_s:.4g}", names.NODE: node})
    sink = MetricSink(tracker, run_id)
    try:
        result = train(config, corpus, device=device, dtype=dtype, peak=peak,
                       on_metrics=sink.add, progress=progress)
    except KeyboardInterrupt:
        sink.flush()
        tracker.fail_run(run_id, "interrupted (KeyboardInterrupt)", status="KILLED")
        raise
    except Exception as exc:  # any failure of the training: record it, the sweep goes on
        sink.flush()
        reason = failure_reason(exc)
        tracker.fail_run(run_id, reason)
        if on_failure is not None:
            on_failure(reason)
        return PointOutcome(run_id, "FAILED", reason=reason, node=node)
    sink.flush()
    tracker.log_metrics(run_id, {names.TOKENS: result.tokens, names.FLOPS_MODEL: result.flops,
                                 names.FLOPS_6ND: 6.0 * config.params * result.tokens,
                                 names.SECONDS: result.seconds, names.FINAL_MFU: result.mfu})
    _log_curve(tracker, run_id, result, sink,
               names.point_run_name(config.flops_budget, config.params))
    tracker.end_run(run_id, "FINISHED")
    return PointOutcome(run_id, "FINISHED", val_loss=result.val_loss, node=node)


def _log_curve(tracker: Tracker, run_id: str, result: Any, sink: "MetricSink", name: str) -> None:
    from experiments.review.plots import loss_curve_png

    with tempfile.TemporaryDirectory() as tmp:
        path = loss_curve_png(result.curve, sink.val_points, name, Path(tmp) / names.LOSS_CURVE_PNG)
        tracker.log_artifact(run_id, path)


class MetricSink:
    """Buffers per-step metrics and writes them in batches through the Tracker, every
    METRIC_FLUSH steps or FLUSH_EVERY_S seconds, whichever comes first (a SIGKILL loses at most
    that). With `heartbeat`, each flush also refreshes the run's heartbeat tag, by which other
    local workers tell a live point from a dead one (experiments.tracking.store.is_stale)."""

    def __init__(self, tracker: Tracker, run_id: str, *, heartbeat: bool = False) -> None:
        self.tracker, self.run_id, self.heartbeat = tracker, run_id, heartbeat
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
        if names.VAL_LOSS in metrics and names.TOKENS_SEEN in metrics:
            self.val_points.append((metrics[names.TOKENS_SEEN], metrics[names.VAL_LOSS]))
        elif names.FINAL_VAL_LOSS in metrics:
            self.val_points.append((self._tokens, metrics[names.FINAL_VAL_LOSS]))
        if names.TOKENS_SEEN in metrics:
            self._tokens = metrics[names.TOKENS_SEEN]
        self.steps += 1
        self.last_step = max(self.last_step, step)
        if self.steps % METRIC_FLUSH == 0 or time.monotonic() - self._flushed > FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        self.tracker.log_metric_batch(self.run_id, self.buffer)
        self.buffer = []
        self._flushed = time.monotonic()
        if self.heartbeat:
            from experiments.tracking import store

            store.heartbeat(self.tracker.client, self.run_id)
