"""The sweep's parent run, start to end, through the one writer (`experiments.tracking.writer`).

- `close_dead_runs`: at the start of any sweep in an experiment, every RUNNING run (parent or
  point, any researcher's) whose process is gone, by heartbeat age or a dead pid on this host
  (`experiments.tracking.store.is_stale`), ends KILLED with the reason.
- `open_parent`: the parent of this exact sweep (its identity: what it measures, the same for
  every executor) is resumed (RUNNING again, its old failure reason dropped) or created.
- `Heartbeat`: a thread refreshing the parent's heartbeat while the driver lives.
- `finish_parent`: the IsoFLOP figure, a per-budget table of the best size and loss
  (`best_by_budget.json`) and metrics for them (`best_loss`, `best_params` per budget as a step,
  and `best_loss.C<budget>`), the counts; FINISHED, or FAILED when no point finished.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from experiments.tracking import names, store
from experiments.tracking import writer as tr

HEARTBEAT_EVERY_S = 20.0
DEAD = "stale: its process ({worker}) ended without closing it (last heartbeat {age:.0f} s ago)"


def close_dead_runs(tracker: tr.Tracker, exp_id: str) -> list[str]:
    """RUNNING runs of the experiment whose process is gone: KILLED with the reason."""
    now = time.time()
    closed = []
    for run in tr.find_runs(tracker.client, exp_id, "attributes.status = 'RUNNING'"):
        if store.is_stale(run, now):
            beat = run.data.tags.get(names.HEARTBEAT)
            age = now - (float(beat) if beat else run.info.start_time / 1000.0)
            reason = DEAD.format(worker=run.data.tags.get(names.SWEEP_WORKER, "unknown"), age=age)
            closed += tr.close_running(tracker, [run.info.run_id], reason)
    return closed


def open_parent(tracker: tr.Tracker, exp_id: str, sweep_hash: str, spec: Any) -> tuple[str, bool]:
    """The parent run of this sweep, resumed (True) or new (False); RUNNING and held by us."""
    found = tr.find_runs(tracker.client, exp_id, f"tags.`{names.SWEEP_HASH}` = '{sweep_hash}' "
                                                 f"and tags.`{names.ROLE}` = '{names.ROLE_SWEEP}'")
    held = {store.WORKER: store.worker_id(), store.HEARTBEAT: f"{time.time():.0f}"}
    if found:
        parent = str(found[0].info.run_id)
        tracker.reopen(parent)
        if names.FAILURE in found[0].data.tags:  # a resumed sweep's old failure is history
            tracker.client.delete_tag(parent, names.FAILURE)
        tracker.set_tags(parent, held)
        return parent, True
    run_id = tracker.create_run(exp_id, names.sweep_run_name(spec.preset,
                                                             time.strftime("%Y%m%d-%H%M%S")),
                                {names.ROLE: names.ROLE_SWEEP, names.SWEEP_HASH: sweep_hash,
                                 **held})
    tracker.log_params(run_id, {f"{names.SWEEP_PARAM_PREFIX}{k}": json.dumps(v)
                                for k, v in spec.to_dict().items()})
    return run_id, False


class Heartbeat:
    """Refreshes a run's heartbeat tag every HEARTBEAT_EVERY_S until stopped."""

    def __init__(self, tracker: tr.Tracker, run_id: str) -> None:
        self.tracker, self.run_id = tracker, run_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        while not self.stopped.wait(HEARTBEAT_EVERY_S):
            try:
                store.heartbeat(self.tracker.client, self.run_id)
            except Exception:  # noqa: BLE001  # a store hiccup: the next beat tries again
                pass

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def best_by_budget(finished: list[tuple[float, int, float]]) -> list[dict[str, float]]:
    """(budget, params, loss) of finished points -> per budget the size with the lowest loss."""
    best: dict[float, tuple[int, float]] = {}
    for c, n, loss in finished:
        if c not in best or loss < best[c][1]:
            best[c] = (n, loss)
    return [{"flops": c, "best_params": float(n), "best_loss": loss,
             "points": float(sum(1 for x in finished if x[0] == c))}
            for c, (n, loss) in sorted(best.items())]


def finish_parent(tracker: tr.Tracker, parent: str, finished: list[tuple[float, int, float]],
                  counts: dict[str, int], experiment: str, loss_unit: str,
                  noise: dict[str, float] | None) -> str:
    """Figure, table, metrics and counts on the parent; ended FINISHED, or FAILED when no point
    finished; the status it ended with."""
    tracker.set_tags(parent, {names.POINTS_FINISHED: str(counts.get("FINISHED", 0)),
                              names.POINTS_FAILED: str(counts.get("FAILED", 0)),
                              names.POINTS_ELSEWHERE: str(counts.get("RUNNING", 0)),
                              names.LOSS_UNIT: loss_unit})
    if noise:
        tracker.log_metrics(parent, {f"seed_noise.{k}": v for k, v in noise.items()})
    table = best_by_budget(finished)
    for step, row in enumerate(table):
        label = names.budget_label(row["flops"])
        tracker.log_metrics(parent, {names.BEST_LOSS: row["best_loss"],
                                     names.BEST_PARAMS: row["best_params"]}, step=step)
        tracker.log_metrics(parent, {f"{names.BEST_LOSS}.C{label}": row["best_loss"],
                                     f"{names.BEST_PARAMS}.C{label}": row["best_params"]})
    if table:
        tracker.log_dict(parent, {k: [r[k] for r in table] for k in table[0]},
                         names.BEST_TABLE_JSON)
        _figure(tracker, parent, finished, experiment)
    if not finished:
        reason = f"no point finished ({counts.get('FAILED', 0)} failed)"
        tracker.fail_run(parent, reason)
        return "FAILED"
    tracker.end_run(parent, "FINISHED")
    return "FINISHED"


def _figure(tracker: tr.Tracker, parent: str, finished: list[tuple[float, int, float]],
            experiment: str) -> None:
    from experiments.review.plots import isoflop_png

    title = f"IsoFLOP curves ({experiment})".replace("$", r"\$")  # matplotlib mathtext
    with tempfile.TemporaryDirectory() as tmp:
        path = isoflop_png([(c, n, loss) for c, n, loss in finished],
                           Path(tmp) / names.ISOFLOP_PNG, title=title)
        tracker.log_artifact(parent, path)
