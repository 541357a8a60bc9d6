"""The cpu preset's order of work on a known loss surface (a parabola in log N whose optimum
moves as C^0.5): edge minima get extra sizes, later budgets re-centre, the seed budget (1e11)
runs twice."""

import math

from experiments.sweeps.design import PRESETS
from experiments.sweeps.schedule import Outcome, Schedule, seed_noise


def surface(point):
    c = point.config
    optimum = 3e3 * (c.flops_budget / 1e11) ** 0.5  # below the first budget's sizes
    loss = 2 + 0.1 * math.log(c.params / optimum) ** 2 + 0.002 * c.seed
    return Outcome(point, "FINISHED", loss)


def test_schedule_extends_edges_recentres_and_repeats_a_seed():
    preset = PRESETS["cpu"]
    outcomes = Schedule(preset, preset.budgets, preset.points, 0, {"vocab_size": 256},
                        surface).run()
    for budget in preset.budgets:
        runs = sorted((o.point.config.params, o.val_loss) for o in outcomes
                      if o.point.config.flops_budget == budget and o.point.config.seed == 0)
        best = min(range(len(runs)), key=lambda i: runs[i][1])
        assert 0 < best < len(runs) - 1, (budget, runs)  # every budget: an interior minimum
    first = [o for o in outcomes if o.point.config.flops_budget == 1e11]
    assert len(first) > len({o.point.config.params for o in first[:preset.points]})  # extended
    seeds = {o.point.config.params for o in outcomes if o.point.config.seed == 1}
    twice = {o.point.config.params for o in outcomes
             if o.point.config.seed == 0 and o.point.config.flops_budget == preset.seed_budget}
    assert preset.seed_budget == 1e11 and seeds == twice
    noise = seed_noise(outcomes, preset.seed_budget, 0)
    assert noise["mean_abs_seed_gap"] == noise["max_abs_seed_gap"] == \
        pytest_approx(0.002)
    assert noise["loss_spread_over_sizes"] > 10 * noise["mean_abs_seed_gap"]


def pytest_approx(x):
    import pytest

    return pytest.approx(x, abs=1e-9)


def test_dry_run_waits_for_nothing_and_leaves_later_budgets_on_the_law():
    preset = PRESETS["cpu"]
    outcomes = Schedule(preset, preset.budgets, preset.points, 0, {"vocab_size": 256},
                        lambda p: Outcome(p, "PLANNED")).run()
    assert all(o.status == "PLANNED" for o in outcomes)
    assert len(outcomes) == len({(o.point.config.flops_budget, o.point.config.params,
                                  o.point.config.seed) for o in outcomes})
