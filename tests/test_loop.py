"""The whole loop on real parts (issue 5): a real smoke sweep (torch, sqlite MLflow store) ->
`budget fit --experiment` (scipy, logged back to MLflow) -> `budget plan --calibrate`."""

import json
import socket

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from budget.cli import main
from experiments.errors import SweepError
from experiments.review.fitting import FIT_JSON, FIT_ROLE, check_enough

pytestmark = pytest.mark.slow  # trains real models (still seconds each)


EXP = "smoke"  # the session's shared smoke sweep (tests/conftest.py)


@pytest.fixture(scope="module")
def store(smoke_sweep):
    assert smoke_sweep.experiment == EXP
    return smoke_sweep.uri


def run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def fitted(store):
    result = run("fit", "--experiment", EXP, "--tracking-uri", store, "--bootstrap", "30",
                 "--approach", "all", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_fit_is_logged_back_as_its_own_run(store, fitted):
    sweep = fitted["sweep"]
    assert sweep["runs"] >= 6 and len(sweep["budgets_flops"]) == 2
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(sweep["fit_run_id"])
    assert run.data.tags["budget.role"] == FIT_ROLE
    assert set(run.data.tags["budget.sweep_parents"].split(",")) == set(sweep["sweep_parents"])
    assert run.data.metrics["approach3.alpha"] == pytest.approx(fitted["approach3"]["alpha"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert FIT_JSON in artifacts and "plots" in artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert any("frontier" in p for p in plots) and any("residual" in p for p in plots)


def test_the_logged_fit_file_is_versioned(store, fitted, tmp_path):
    """The fit.json logged to MLflow is the same versioned fit file `budget fit --json` prints."""
    assert (fitted["kind"], fitted["schema_version"]) == ("compute-budget.fit", 1)
    client = MlflowClient(tracking_uri=store)
    local = client.download_artifacts(fitted["sweep"]["fit_run_id"], FIT_JSON, str(tmp_path))
    logged = json.loads(open(local, encoding="utf-8").read())
    assert (logged["kind"], logged["schema_version"]) == ("compute-budget.fit", 1)


def test_the_smoke_calibration_is_refused_with_one_line(store, fitted, tmp_path):
    """The smoke sweep's smallest model wins at every budget (no interior minimum): the fit
    records itself not usable for planning, and `plan
    --calibrate` (from the store or the saved file) and the proposal refuse it in one line that
    says why and which preset to run instead."""
    planning = fitted["planning"]
    assert planning["usable"] is False and planning["interior_budgets"] == 0
    assert planning["max_span"] == 10.0 and planning["params_opt_span"] > 1.0
    client = MlflowClient(store)
    fit_run = client.get_run(fitted["sweep"]["fit_run_id"])
    assert fit_run.data.tags["budget.usable_for_planning"] == "false"
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fitted))
    for args in (["plan", "--flops", "1e21", "--calibrate", EXP, "--tracking-uri", store],
                 ["plan", "--flops", "3e10", "--calibrate", str(path), "--json"],
                 ["report", "--flops", "3e10", "--calibrate", str(path), "--out",
                  str(tmp_path / "p")]):
        result = run(*args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "is not usable for planning: 0 of 2 budget(s) have their " \
            "lowest loss inside the sampled sizes" in lines[0], lines
        assert "budget sweep --preset cpu" in lines[0]
    assert not (tmp_path / "p" / "proposal.md").exists()


@pytest.mark.parametrize("command", [
    ["fit", "--experiment", EXP, "--bootstrap", "30"],
    ["report", "--flops", "1e21", "--gpu", "h100", "--experiment", EXP],
])
def test_a_store_that_refuses_writes_fails_at_once_in_one_line(store, command, tmp_path):
    """Another process holds the store's write lock (what a read-only store looks like to a
    writer): `fit` fails before it fits and `report --experiment` before it writes a file, each
    in one line, in seconds (issue 27: 235 lines after the fit; 105 s and 37 lines)."""
    import sqlite3
    import time

    holder = sqlite3.connect(store[len("sqlite:///"):], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    start = time.monotonic()
    try:
        result = run(*command, "--tracking-uri", store, "--out", str(tmp_path / "p")) \
            if command[0] == "report" else run(*command, "--tracking-uri", store)
    finally:
        holder.close()
    assert time.monotonic() - start < 20
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not writable: database is locked" in lines[0], lines
    assert not (tmp_path / "p").exists()


def test_holdout_needs_three_budgets(store):
    result = run("fit", "--experiment", EXP, "--tracking-uri", store, "--holdout-largest")
    assert result.exit_code == 2
    assert "needs at least 3 compute budgets, the runs have 2" in result.stderr


def test_unknown_and_empty_experiments(store):
    result = run("plan", "--flops", "1e21", "--calibrate", "nope", "--tracking-uri", store)
    assert result.exit_code == 2 and "experiment 'nope' not found" in result.stderr
    MlflowClient(tracking_uri=store).create_experiment("empty")
    result = run("fit", "--experiment", "empty", "--tracking-uri", store)
    assert result.exit_code == 2
    assert "has no finished sweep runs" in result.stderr and result.stderr.count("\n") == 1


def test_a_store_that_is_not_there_is_not_created(tmp_path):
    missing = tmp_path / "nowhere" / "mlflow.db"
    result = run("fit", "--experiment", "x", "--tracking-uri", f"sqlite:///{missing}")
    assert result.exit_code == 2 and str(missing.parent) in result.stderr
    assert "does not exist" in result.stderr and result.stderr.count("\n") == 1
    assert not missing.parent.exists()


def test_too_few_runs_or_budgets():
    import pandas as pd

    one_budget = pd.DataFrame({"params": [1e4, 2e4, 4e4], "tokens": [1e6, 5e5, 2.5e5],
                               "flops": [6e10] * 3, "loss": [2.1, 2.0, 2.2]})
    with pytest.raises(SweepError, match="3 finished runs over 1 budget"):
        check_enough(one_budget, "tiny")


def test_a_server_that_does_not_answer():
    with socket.socket() as s:  # a free port on loopback with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("plan", "--flops", "1e21", "--calibrate", EXP,
                 "--tracking-uri", f"http://127.0.0.1:{port}")
    assert result.exit_code == 2
    assert f"tracking server http://127.0.0.1:{port} does not answer" in result.stderr
