"""The order a sweep trains its points in, shared by `run_sweep` and `plan_sweep` (--dry-run).

Budgets from small to large. For each budget: its sizes (centred on the law's N_opt x the
preset's `centre`, or, for an adaptive preset, on the previous budget's measured vertex moved
by (C / C_prev)^0.5); then, for an adaptive preset, up to `EXTENSIONS` extra sizes beyond an
edge while the lowest loss sits on that edge; then, at the preset's `seed_budget`, every size of
that budget again with seed + 1 (the seed noise the fit's loss differences are compared with).

`Schedule.point(p)` is given each point in turn: the sweep trains it (or finds it finished or
running elsewhere), the dry run marks it finished (already in the store) or planned. Decisions
that need results (vertex, edge) use only finished points; a point running in another worker
or submitted to an executor is waited for (`Schedule.wait`) only when a decision needs it, so
the points of a budget train at once, and two drivers make the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Callable

from experiments.sweeps.design import (
    Preset,
    SweepPoint,
    budget_points,
    edge_extension,
    point_for,
    vertex,
)

EXTENSIONS = 2  # extra sizes per budget at most, beyond an edge minimum
RECENTRE_EXPONENT = 0.5  # N_opt ~ C^0.5 (Hoffmann et al. 2022 Table 2; Besiroglu et al. 2024)


@dataclass
class Outcome:
    """What became of one point: FINISHED (trained now or before), FAILED, KILLED, RUNNING
    (in another driver), PENDING (submitted to an executor; `pending.result()` ends it) or
    PLANNED (dry run)."""

    point: SweepPoint
    status: str
    val_loss: float | None = None
    run_id: str | None = None
    skipped: bool = False
    reason: str | None = None
    seconds: float | None = None
    node: str | None = None
    pending: Any = None  # experiments.sweeps.executors.Pending while PENDING


@dataclass
class Schedule:
    """Walks the budgets; `visit(point)` returns the point's Outcome."""

    preset: Preset
    budgets: tuple[float, ...]
    points: int
    seed: int
    design: dict[str, Any]  # vocab_size, dataset, dataset_digest, code_version, peak_flops_per_s
    visit: Callable[[SweepPoint], Outcome]
    wait: Callable[[Outcome], Outcome] | None = None  # dry run: None (never waits)
    lr: float | None = None  # --lr: one lr for every point

    def __post_init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def _go(self, point: SweepPoint) -> Outcome:
        if self.lr is not None:
            from experiments.sweeps.design import with_overrides

            point = with_overrides(point, lr=self.lr)
        outcome = self.visit(point)
        self.outcomes.append(outcome)
        return outcome

    def _losses(self, budget: float, seed: int) -> list[tuple[float, float]] | None:
        """(N, loss) of the budget's finished points; None while some are unknown."""
        out = []
        for i, o in enumerate(self.outcomes):
            c = o.point.config
            if c.flops_budget != budget or c.seed != seed:
                continue
            if o.status in ("RUNNING", "PENDING") and self.wait is not None:
                o = self.outcomes[i] = self.wait(o)
            if o.status == "FINISHED" and o.val_loss is not None:
                out.append((float(c.params), float(o.val_loss)))
            elif o.status in ("PLANNED", "RUNNING"):
                return None
        return out

    def run(self) -> list[Outcome]:
        previous: tuple[float, float | None] | None = None
        for budget in sorted(self.budgets):
            centre = None
            if self.preset.adaptive and previous and previous[1]:
                centre = previous[1] * (budget / previous[0]) ** RECENTRE_EXPONENT
            shapes = []
            for point in budget_points(self.preset, budget, self.points, centre=centre,
                                       seed=self.seed, **self.design):
                shapes.append(point.config.architecture)
                self._go(point)
            if self.preset.adaptive:
                shapes += self._extend(budget, set(shapes))
                losses = self._losses(budget, self.seed)
                previous = (budget, vertex(losses) if losses else None)
            if self.preset.seed_budget == budget:
                for shape in shapes:
                    self._go(point_for(shape, budget, self.preset, seed=self.seed + 1,
                                       **self.design))
        return self.outcomes

    def _extend(self, budget: float, tried: set[Any]) -> list[Any]:
        added: list[Any] = []
        vocab = int(self.design.get("vocab_size", 256))
        for _ in range(EXTENSIONS):
            losses = self._losses(budget, self.seed)
            if not losses or len(losses) < 2:
                return added
            shape = edge_extension(self.preset, losses, self.points, tried, vocab,
                                   str(self.design.get("family", "gpt2")))
            if shape is None:
                return added
            tried.add(shape)
            added.append(shape)
            self._go(point_for(shape, budget, self.preset, seed=self.seed, **self.design))
        return added


def seed_noise(outcomes: list[Outcome], budget: float, seed: int) -> dict[str, float] | None:
    """At `budget`: mean and largest |loss(seed) - loss(seed + 1)| over the sizes run with both,
    against the spread of loss over sizes (what the parabola has to resolve)."""
    by_seed: dict[int, dict[int, float]] = {seed: {}, seed + 1: {}}
    for o in outcomes:
        c = o.point.config
        if c.flops_budget == budget and c.seed in by_seed and o.status == "FINISHED" \
                and o.val_loss is not None:
            by_seed[c.seed][c.params] = o.val_loss
    both = sorted(set(by_seed[seed]) & set(by_seed[seed + 1]))
    if len(both) < 2:
        return None
    gaps = [abs(by_seed[seed][n] - by_seed[seed + 1][n]) for n in both]
    losses = list(by_seed[seed].values())
    neighbours = sorted(by_seed[seed].items())
    steps = [abs(b[1] - a[1]) for a, b in pairwise(neighbours)]
    return {"budget_flops": budget, "sizes": float(len(both)),
            "mean_abs_seed_gap": sum(gaps) / len(gaps), "max_abs_seed_gap": max(gaps),
            "loss_spread_over_sizes": max(losses) - min(losses),
            "median_neighbour_gap": sorted(steps)[len(steps) // 2] if steps else 0.0}
