"""Sane ranges warned and advice that never contradicts the plan (issue 17 item 4)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.planner import SANE_COMPUTE_FLOPS, compute_range_warning
from budget.training.memory import fewest_gpus


@pytest.mark.parametrize("flops", ["1e12", "1e40"])
def test_budget_far_outside_the_fitted_range_warns(flops):
    result = CliRunner().invoke(main, ["plan", "--flops", flops, "--gpu", "h100", "--json"])
    assert result.exit_code == 0
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("Warning:")]
    assert len(warnings) == 1 and "far" in warnings[0] and "fitted on" in warnings[0]
    notes = json.loads(result.stdout)["notes"]
    assert any(n.startswith("WARNING: the budget") for n in notes)


def test_budgets_inside_the_range_do_not_warn():
    low, high = SANE_COMPUTE_FLOPS
    assert compute_range_warning(low) == compute_range_warning(high) == compute_range_warning(1e21) == ""
    result = CliRunner().invoke(main, ["plan", "--flops", "1e21", "--gpu", "h100"])
    assert result.exit_code == 0 and "Warning" not in result.stderr


def test_advice_never_repeats_what_the_plan_already_does():
    """At 1e40 FLOPs the plan already uses micro-batch 1 and full recomputation: the note must not
    advise --recompute full (it did)."""
    text = CliRunner().invoke(main, ["plan", "--flops", "1e40", "--gpu", "h100"]).stdout
    assert "recompute full" in text  # the plan says it uses full recomputation
    assert "use --recompute full" not in text and "lower the micro-batch" not in text
    _, note = fewest_gpus(1e9, 1e9, 1e9, acts=100e9, stage=3, usable_bytes=72e9, micro_batch=4,
                          recompute="selective")
    assert "lower the micro-batch or use --recompute full" in note


def test_kaplan_shape_is_headed_kaplan():
    result = CliRunner().invoke(main, ["plan", "--flops", "1e21", "--gpu", "h100", "--law", "kaplan"])
    assert "Shape for kaplan N (non-embedding params" in result.stdout
    data = json.loads(CliRunner().invoke(main, ["plan", "--flops", "1e21", "--gpu", "h100", "--law",
                                                "kaplan", "--json"]).stdout)
    assert data["shape"]["law"] == "kaplan"
