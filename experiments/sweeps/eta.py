"""What the sweep says while it runs: ETAs from measured speed, resume and dry-run notes.

The ETA of the points still to go is their design estimate (`experiments.sweeps.design._estimate`)
rescaled by what the finished points really took against their own estimates, so it corrects
itself as the sweep runs; before any point has finished, a point's own estimate is its D over
the tokens per second timed for its shape (experiments.training.autotune).
"""

from __future__ import annotations

import math
import shlex
from typing import Any

import click

from experiments.sweeps.design import Preset, SweepPoint

DAY_S = 86400.0
EVAL_SHARE = 0.1  # validation passes add about a tenth to the training time of a point


class Clock:
    """Remaining-time bookkeeping over the static grid (the basis of 'to go')."""

    def __init__(self, grid: list[SweepPoint], workers: int = 1) -> None:
        self.workers = max(1, workers)  # points trained at once: the time to go is shared
        self.left = {id(p): p for p in grid}
        self.by_key = {(p.config.flops_budget, p.config.params, p.config.seed): p for p in grid}
        self.spent = 0.0
        self.estimated = 0.0
        self.count = 0

    def ratio(self) -> float:
        """Measured seconds over estimated seconds of the points trained so far (1 if none)."""
        return self.spent / self.estimated if self.estimated > 0 else 1.0

    def _remove(self, point: SweepPoint) -> None:
        c = point.config
        found = self.by_key.pop((c.flops_budget, c.params, c.seed), None)
        if found is not None:
            self.left.pop(id(found), None)
        elif self.left:  # an adaptive point replaces one of the static grid's at its budget
            same = [k for k, p in self.left.items() if p.config.flops_budget == c.flops_budget]
            if same:
                self.left.pop(same[0])

    def announce(self, point: SweepPoint, plan: Any) -> None:
        c = point.config
        own = own_estimate(point, plan)
        rest = sum(self._scaled(p) for p in self.left.values() if p is not point) / self.workers
        how = f", {plan.label}, {plan.tokens_per_s:,.0f} tok/s timed" if plan is not None else ""
        click.echo(f"sweep point {self.count + 1}: C={c.flops_budget:.3g} N={c.params:,} "
                   f"D={c.tokens:,} lr={c.lr:.2g} seed={c.seed} (~{own / 60:.1f} min{how}; "
                   f"about {len(self.left)} to go, ~{(rest + own) / 60:.1f} min)", err=True)

    def _scaled(self, point: SweepPoint) -> float:
        est = point.estimated_seconds
        return 0.0 if math.isnan(est) else est * self.ratio()  # NaN: no peak known

    def elsewhere(self, point: SweepPoint) -> None:
        """A point finished earlier or trained by another worker: no longer to go here."""
        self._remove(point)

    def done(self, point: SweepPoint, seconds: float, finished: bool) -> None:
        self.count += 1
        if finished and not math.isnan(point.estimated_seconds):
            self.spent += seconds
            self.estimated += point.estimated_seconds
        self._remove(point)


def own_estimate(point: SweepPoint, plan: Any) -> float:
    """D / timed tokens per second (plus evaluation), else the design estimate."""
    if plan is not None and plan.tokens_per_s > 0:
        return point.config.tokens / plan.tokens_per_s * (1.0 + EVAL_SHARE)
    est = point.estimated_seconds
    return 0.0 if math.isnan(est) else est


def say_resuming(client: Any, exp_id: str, parent: str, clock: Clock) -> None:
    """'resuming: N finished, K killed, M to go' from the parent's children in the store."""
    from experiments.tracking.writer import find_runs

    runs = find_runs(client, exp_id, f"tags.mlflow.parentRunId = '{parent}'")
    finished = {r.data.tags.get("budget.config_hash") for r in runs
                if r.info.status == "FINISHED"}
    killed = sum(r.info.status in ("KILLED", "FAILED") for r in runs
                 if r.data.tags.get("budget.config_hash") not in finished)
    from experiments.tracking.writer import config_hash

    to_go = sum(config_hash(p.config.to_dict()) not in finished for p in clock.left.values())
    click.echo(f"resuming sweep run {parent}: {len(finished)} finished (skipped), {killed} "
               f"killed or failed (re-run), about {to_go} to go", err=True)


def resume_command(spec: Any, uri: str) -> str:
    """The command line that resumes this sweep (the store spelled out)."""
    parts = ["budget", "sweep", "--preset", spec.preset, "--experiment", spec.experiment,
             "--tracking-uri", uri]
    if spec.budgets:
        parts += ["--budgets", ",".join(f"{b:g}" for b in spec.budgets)]
    for flag, value in (("--points", spec.points), ("--lr", spec.lr), ("--data", spec.data),
                        ("--threads", spec.threads), ("--workers", spec.workers),
                        ("--executor", spec.executor), ("--ray-address", spec.ray_address)):
        if value is not None:
            parts += [flag, str(value)]
    if spec.seed:
        parts += ["--seed", str(spec.seed)]
    return shlex.join(parts)


def dry_run_notes(runs: list[Any], device: str, peak: float | None, preset: Preset,
                  workers: int = 1) -> list[str]:
    """What the dry run cannot show as rows: skipped points, adaptivity, a very long estimate."""
    notes = []
    skipped = sum(r.skipped for r in runs)
    if skipped:
        notes.append(f"{skipped} point(s) already FINISHED in the store will be skipped")
    if preset.adaptive:
        notes.append("adaptive preset: a budget whose lowest loss lies on an edge gets up to 2 "
                     "more sizes, and each budget re-centres on the previous one's measured "
                     "minimum, so later rows can change once earlier budgets have run")
    total = sum(r.estimated_seconds for r in runs
                if not r.skipped and not math.isnan(r.estimated_seconds)) / max(1, workers)
    if total > DAY_S:
        notes.append(f"WARNING: about {total / DAY_S:,.1f} days on {device} "
                     f"(peak {(peak or 0) / 1e9:,.0f} GFLOP/s): the '{preset.name}' preset is "
                     f"sized for a faster device; use --budgets/--points for a smaller sweep")
    return notes
