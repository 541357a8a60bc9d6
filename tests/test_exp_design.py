"""IsoFLOP grid design: sizes around the planner's optimum, D = C / (6 N), planner shapes."""

import math

import numpy as np
import pytest

from budget.models.families import shape_for_params
from budget.scaling.laws import compute_optimal
from experiments.errors import SweepError
from experiments.sweeps.design import (
    PRESETS,
    SHAPE_TOLERANCE,
    design_sweep,
    get_preset,
    model_sizes,
)


def test_sizes_are_log_spaced_around_the_planner_optimum():
    """The cpu preset centres on 0.4 x Epoch's N_opt (its lr scan found the optimum lower)
    and spans N_c / 2.5 .. 2.5 N_c; an explicit centre (re-centring) replaces it."""
    preset = PRESETS["cpu"]
    sizes = model_sizes(3e11, 5, preset)
    n_c = 0.4 * compute_optimal(preset.law, 3e11).params
    assert sizes[0] == pytest.approx(n_c / 2.5) and sizes[-1] == pytest.approx(2.5 * n_c)
    assert sizes[2] == pytest.approx(n_c)
    assert model_sizes(3e11, 3, preset, centre=1e4)[1] == pytest.approx(1e4)
    ratios = np.diff(np.log(sizes))
    assert np.allclose(ratios, ratios[0])


def test_grid_tokens_follow_six_n_d():
    for point in design_sweep(PRESETS["cpu"]):
        c = point.config
        assert 6 * c.params * c.tokens == pytest.approx(c.flops_budget, rel=1e-4)
        assert c.params_non_embedding < c.params


def test_grid_shapes_come_from_the_planner():
    preset = PRESETS["gpu"]
    grid = design_sweep(preset, budgets=(1e15,), points=3)
    for point, n in zip(grid, model_sizes(1e15, 3, preset)):
        assert point.config.architecture == shape_for_params(
            n, "gpt2", n_ctx=preset.n_ctx, vocab_size=256, width_step=preset.multiple_of,
            head_dim=preset.head_dim, tolerance=SHAPE_TOLERANCE, tp_multiple=1).with_(name="")


def test_grid_has_distinct_shapes_per_budget_and_grows_with_budget():
    grid = design_sweep(PRESETS["cpu"], budgets=(1e11, 1e12), points=5)
    for budget in (1e11, 1e12):
        shapes = [p.config.architecture for p in grid if p.config.flops_budget == budget]
        assert len(shapes) == len(set(shapes)) >= 4
    small = [p.config.params for p in grid if p.config.flops_budget == 1e11]
    large = [p.config.params for p in grid if p.config.flops_budget == 1e12]
    assert np.median(large) > np.median(small)


def test_estimates_scale_with_the_peak():
    slow = design_sweep(PRESETS["smoke"], peak_flops_per_s=1e9)
    fast = design_sweep(PRESETS["smoke"], peak_flops_per_s=1e12)
    assert all(s.estimated_seconds > f.estimated_seconds > 0 for s, f in zip(slow, fast))
    assert math.isnan(design_sweep(PRESETS["smoke"])[0].estimated_seconds)


@pytest.mark.parametrize("kwargs, message", [
    ({"budgets": ()}, "empty"),
    ({"budgets": (-1.0,)}, "-1.0"),
    ({"budgets": (float("nan"),)}, "nan"),
    ({"points": 0}, "--points 0"),
])
def test_bad_grids_raise(kwargs, message):
    with pytest.raises(SweepError, match=message):
        design_sweep(PRESETS["smoke"], **kwargs)


def test_unknown_preset_names_the_choices():
    with pytest.raises(SweepError, match="smoke, cpu, gpu"):
        get_preset("laptop")


def test_cpu_preset_is_a_width_family_with_a_per_width_lr():
    """Every cpu-preset model has 3 layers (only the width varies, so loss(N) is smooth) and
    lr = 2.4e-2 (16 / d_model)^1.5 capped at 3e-2, the rule of the preset's lr scan."""
    grid = design_sweep(PRESETS["cpu"])
    assert {p.config.n_layer for p in grid} == {3}
    for p in grid:
        c = p.config
        assert c.lr == pytest.approx(min(3e-2, 2.4e-2 * (16 / c.d_model) ** 1.5))
        assert c.eval_tokens == 1 << 18


def test_edge_minimum_gets_a_size_beyond_it_and_an_interior_one_does_not():
    from experiments.sweeps.design import edge_extension, shape_of, vertex

    preset = PRESETS["cpu"]
    falling = [(1e4, 2.3), (2e4, 2.2), (4e4, 2.1)]
    tried = {shape_of(n, preset, 256) for n, _ in falling}
    beyond = edge_extension(preset, falling, 6, tried, 256)
    assert beyond is not None and beyond not in tried
    assert beyond.params_total() > 4e4
    bowl = [(1e4, 2.3), (2e4, 2.1), (4e4, 2.2)]
    assert edge_extension(preset, bowl, 6, tried, 256) is None
    assert 1e4 < vertex(bowl) < 4e4 and vertex(falling) is None
