"""The sweep on Ray (`budget sweep --executor ray`): the static grid, each point a Ray task.

`experiments.sweeps.sweep.run_sweep` hands a spec with `executor="ray"` here. The driver designs the grid
(`experiments.sweeps.sweep._grid`), skips points whose config hash already FINISHED, creates each child
run itself (`experiments.sweeps.points`: parent, point index, attempt and config-hash tags) and hands its
id to the task (`experiments.sweeps.ray_exec`); every write goes through `experiments.tracking.writer.Tracker`.
The adaptive schedule of the local executor (re-centring, edge extension, workers sharing one
sweep) is not used here: Ray's tasks are placed at once.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from experiments.sweeps.design import SweepPoint, get_preset
from experiments.sweeps.sweep import PointResult, SweepResult, SweepSpec, _grid, _sigterm_as_interrupt
from experiments.tracking import names
from experiments.tracking import writer as tr

TrainFn = Callable[..., Any]


def _point(p: SweepPoint, **kw: Any) -> PointResult:
    c = p.config
    base = dict(params=c.params, params_non_embedding=c.params_non_embedding, tokens=c.tokens,
                flops=c.flops_budget, n_layer=c.n_layer, d_model=c.d_model,
                estimated_seconds=p.estimated_seconds)
    base.update(kw)
    return PointResult(**base)  # type: ignore[arg-type]


def plan_sweep_ray(spec: SweepSpec) -> SweepResult:
    """The grid `run_sweep` would train, with time estimates; trains nothing, logs nothing."""
    from experiments.sweeps.ray_exec import expected_nodes
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
    device = resolve_device("auto")  # the driver's; each task resolves --device on its node
    peak = peak_for(device, training_dtype(device))
    grid = _grid(spec, corpus, peak.flops_per_s)
    runs = [_point(p, run_id=None, status="PLANNED", val_loss=None, node=n)
            for p, n in zip(grid, expected_nodes(spec, grid))]
    return SweepResult(spec.experiment, None, None, tr.resolve_tracking_uri(spec.tracking_uri),
                       True, runs, str(device), peak.flops_per_s)


def run_sweep_ray(spec: SweepSpec, *, progress: bool = True,
                  train: TrainFn | None = None) -> SweepResult:
    """Train the grid into MLflow (see the module docstring); `train` defaults to train_run."""
    from experiments.sweeps.ray_exec import run_points
    from experiments.training.data import load_corpus
    from experiments.training.hardware import (
        peak_for,
        resolve_device,
        set_threads,
        training_dtype,
    )
    from experiments.training.train import train_run

    get_preset(spec.preset)
    set_threads(spec.threads)
    corpus = load_corpus(spec.data)
    device = resolve_device("auto")  # the driver's; each task resolves --device on its node
    tracker, exp_id, uri = tr.open_store(spec.tracking_uri, spec.experiment)
    client = tracker.client
    dtype = training_dtype(device)
    peak = peak_for(device, dtype)
    grid = _grid(spec, corpus, peak.flops_per_s)
    hashes = [tr.config_hash(p.config.to_dict()) for p in grid]
    done = tr.finished_points(client, exp_id)
    parent = _parent_run(tracker, exp_id, tr.sweep_hash(hashes, spec.preset), spec)
    context = _RunContext(tracker, exp_id, parent, corpus, device, dtype, peak,
                          train or train_run, progress)
    results: dict[int, PointResult] = {}
    try:
        with _sigterm_as_interrupt():
            tracker.log_dataset(parent, _dataset(corpus))
            todo = []
            for i, (point, h) in enumerate(zip(grid, hashes), 1):
                if h in done:
                    run = done[h]
                    results[i] = _point(point, run_id=run.info.run_id, status="FINISHED",
                                        val_loss=run.data.metrics.get(names.FINAL_VAL_LOSS),
                                        skipped=True)
                else:
                    todo.append((i, point, h))
            results.update(run_points(context, spec, todo, len(grid)))
            ordered = [results[i] for i in sorted(results)]
            _finish_parent(tracker, parent, ordered, spec)
    except KeyboardInterrupt:
        tracker.fail_run(parent, "interrupted (KeyboardInterrupt)", status="KILLED")
        raise
    except BaseException as exc:
        tracker.fail_run(parent, failure_reason(exc))
        raise
    tracker.end_run(parent)
    return SweepResult(spec.experiment, exp_id, parent, tr.redact("", uri), False, ordered,
                       str(device), peak.flops_per_s)


def _parent_run(tracker: tr.Tracker, exp_id: str, sweep_hash: str, spec: SweepSpec) -> str:
    """The parent run of this exact sweep if one exists (resume), else a new one."""
    client = tracker.client
    found = tr.find_runs(client, exp_id, f"tags.`{tr.SWEEP_HASH}` = '{sweep_hash}' and "
                                         f"tags.`{tr.ROLE}` = 'sweep'")
    if found:
        parent = str(found[0].info.run_id)
        _close_stale_children(tracker, exp_id, parent)
        tracker.reopen(parent)  # resumed: it runs again until it ends
        return parent
    run_id = tracker.create_run(exp_id, f"sweep-{spec.preset}-{time.strftime('%Y%m%d-%H%M%S')}",
                                {tr.ROLE: names.ROLE_SWEEP, tr.SWEEP_HASH: sweep_hash})
    tracker.log_params(run_id, {f"{names.SWEEP_PARAM_PREFIX}{key}": json.dumps(value)
                                for key, value in spec.to_dict().items()})
    return run_id


def _close_stale_children(tracker: tr.Tracker, exp_id: str, parent: str) -> None:
    """Points left RUNNING by a process that died (kill -9, power loss) become KILLED."""
    stale = tr.find_runs(tracker.client, exp_id, f"tags.`{names.PARENT_RUN}` = '{parent}' and "
                                                 "attributes.status = 'RUNNING'")
    tr.close_running(tracker, [r.info.run_id for r in stale],
                     "stale: its process ended without closing it")


def _dataset(corpus: Any) -> Any:
    """The MLflow dataset entry of the corpus (the local executor's, experiments.sweeps.point_run)."""
    from experiments.sweeps.point_run import dataset_entry

    return dataset_entry(corpus)


def _finish_parent(tracker: tr.Tracker, parent: str, results: list[PointResult],
                   spec: SweepSpec) -> None:
    finished = [r for r in results if r.status == "FINISHED" and r.val_loss is not None]
    tracker.set_tags(parent, {names.POINTS_FINISHED: str(len(finished)),
                              names.POINTS_FAILED: str(sum(r.status == "FAILED" for r in results))})
    if finished:
        from experiments.review.plots import isoflop_png

        with tempfile.TemporaryDirectory() as tmp:
            path = isoflop_png([(r.flops, r.params, float(r.val_loss)) for r in finished  # type: ignore[arg-type]
                                ], Path(tmp) / names.ISOFLOP_PNG,
                               title=f"IsoFLOP curves ({spec.experiment})")
            tracker.log_artifact(parent, path)


class _RunContext:
    """What the Ray executor needs on the driver: `open` creates each child run (parent, point
    index, attempt, config hash) and experiments.sweeps.ray_exec hands its id to the task."""

    def __init__(self, tracker: tr.Tracker, exp_id: str, parent: str, corpus: Any, device: Any,
                 dtype: Any, peak: Any, train: TrainFn, progress: bool) -> None:
        self.tracker, self.exp_id, self.parent = tracker, exp_id, parent
        self.corpus, self.device, self.dtype, self.peak = corpus, device, dtype, peak
        self.train, self.progress = train, progress
        earlier = tr.find_runs(tracker.client, exp_id, f"tags.`{names.PARENT_RUN}` = '{parent}'")
        self.attempts = Counter(r.data.tags.get(names.CONFIG_HASH, "") for r in earlier)

    def open(self, point: SweepPoint, h: str, index: str, executor: str) -> str:
        """The point's child run, created here (parent, point index, attempt, config hash)."""
        from experiments.sweeps.points import open_point

        self.attempts[h] += 1
        return open_point(self.tracker, self.exp_id, self.parent, point, h, index=index,
                          attempt=self.attempts[h], executor=executor,
                          dataset=_dataset(self.corpus))


def failure_reason(exc: BaseException) -> str:
    from experiments.sweeps.points import failure_reason as reason

    return reason(exc)
