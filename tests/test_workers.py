"""`--workers N` (experiments.sweeps.workers): how many, and the helpers' command line (issue 15.2)."""

import pytest

from budget.cli.sweep import command as sweep_command
from experiments.sweeps.sweep import SweepSpec
from experiments.sweeps.workers import helper_argv, worker_count


@pytest.mark.parametrize("requested, preset, device, cores, expected", [
    (None, 0, "cpu", 2, 2),   # the cpu preset: one worker per core
    (None, 0, "cpu", 16, 16),
    (None, 1, "cpu", 8, 1),   # smoke and gpu presets: one
    (3, 1, "cpu", 2, 3),      # --workers wins
    (None, 0, "cuda", 16, 1),  # one GPU: one worker
    (2, 0, "cuda", 16, 2),
])
def test_worker_count(requested, preset, device, cores, expected):
    assert worker_count(requested, preset, device, cores) == expected


def test_helper_command_line_is_the_same_sweep():
    """A helper's argv, parsed by `budget sweep` itself, gives back the sweep's spec: exact
    budgets and lr (repr, not %g), the store spelled out, its index, the workers and threads."""
    spec = SweepSpec(preset="cpu", budgets=(1.5e11, 2.5e11), points=4, data="corpus.txt",
                     seed=3, experiment="e", lr=0.00123456789, family="llama")
    argv = helper_argv(spec, "sqlite:////tmp/x/mlflow.db", 1, 2, 1)
    assert argv[1:4] == ["-m", "budget", "sweep"]
    ctx = sweep_command.make_context("sweep", argv[4:])
    p = ctx.params
    assert p["budgets"] == (1.5e11, 2.5e11) and p["lr"] == 0.00123456789
    assert (p["points"], p["data"], p["seed"], p["family"]) == (4, "corpus.txt", 3, "llama")
    assert (p["experiment"], p["tracking_uri"]) == ("e", "sqlite:////tmp/x/mlflow.db")
    assert (p["worker_index"], p["workers"], p["threads"]) == (1, 2, 1)
    assert p["executor"] == "local" and not p["dry_run"]
