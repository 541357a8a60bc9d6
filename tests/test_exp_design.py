"""IsoFLOP grid design: sizes around the planner's optimum, D = C / (6 N), planner shapes."""

import math

import numpy as np
import pytest

from budget.models.transformer import shape_for_params
from budget.scaling.laws import compute_optimal
from experiments.design import (
    PRESETS,
    SHAPE_TOLERANCE,
    design_sweep,
    get_preset,
    model_sizes,
)
from experiments.errors import SweepError


def test_sizes_are_log_spaced_around_the_planner_optimum():
    preset = PRESETS["cpu"]
    sizes = model_sizes(3e11, 5, preset)
    n_opt = compute_optimal(preset.law, 3e11).params
    assert sizes[0] == pytest.approx(n_opt / 4) and sizes[-1] == pytest.approx(4 * n_opt)
    assert sizes[2] == pytest.approx(n_opt)
    ratios = np.diff(np.log(sizes))
    assert np.allclose(ratios, ratios[0])


def test_grid_tokens_follow_six_n_d():
    for point in design_sweep(PRESETS["cpu"]):
        c = point.config
        assert 6 * c.params * c.tokens == pytest.approx(c.flops_budget, rel=1e-4)
        assert c.params_non_embedding < c.params


def test_grid_shapes_come_from_the_planner():
    preset = PRESETS["cpu"]
    grid = design_sweep(preset, budgets=(1e11,), points=3)
    for point, n in zip(grid, model_sizes(1e11, 3, preset)):
        assert point.config.shape == shape_for_params(
            n, n_ctx=preset.n_ctx, vocab_size=256, multiple_of=preset.multiple_of,
            head_dim=preset.head_dim, tolerance=SHAPE_TOLERANCE)


def test_grid_has_distinct_shapes_per_budget_and_grows_with_budget():
    grid = design_sweep(PRESETS["cpu"], budgets=(1e11, 1e12), points=5)
    for budget in (1e11, 1e12):
        shapes = [p.config.shape for p in grid if p.config.flops_budget == budget]
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
