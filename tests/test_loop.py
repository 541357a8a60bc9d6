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


def test_calibrated_plan_from_the_experiment(store, fitted):
    result = run("plan", "--flops", "1e21", "--gpu", "h100", "--calibrate", EXP,
                 "--tracking-uri", store, "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    mine = next(a for a in plan["allocations"] if a["law"] == "calibrated")
    assert 6 * mine["params"] * mine["tokens"] == pytest.approx(1e21)
    assert mine["params_ci"][0] <= mine["params"] <= mine["params_ci"][1]
    assert mine["tokens_ci"][0] <= mine["tokens"] <= mine["tokens_ci"][1]
    cal = plan["calibration"]
    assert cal["extrapolation_decades"] == pytest.approx(21 - 10.176, abs=0.01)  # 1.5e10 swept
    assert cal["warning"].startswith("VERY LONG")
    assert plan["recommended"] == "epoch"  # ten orders of magnitude: shown, not recommended
    assert {r["law"] for r in cal["comparison"]} >= {"epoch", "chinchilla", "kaplan"}


def test_calibrated_plan_in_a_fresh_process_reads_only_the_given_store(store, fitted, tmp_path):
    """A new process has no global MLflow URI: the fit must be read from --tracking-uri, and no
    default ./mlflow.db may appear in the working directory."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "budget", "plan", "--flops", "3e10", "--calibrate",
                          EXP, "--tracking-uri", store, "--json"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["recommended"] == "calibrated"
    assert not (tmp_path / "mlflow.db").exists()


def test_calibrated_plan_near_the_sweep_recommends_it(store, fitted, tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fitted))
    from_file = json.loads(run("plan", "--flops", "3e10", "--calibrate", str(path), "--json").stdout)
    from_store = json.loads(run("plan", "--flops", "3e10", "--calibrate", EXP,
                                "--tracking-uri", store, "--json").stdout)
    assert from_file["recommended"] == "calibrated"
    mine = [next(a for a in p["allocations"] if a["law"] == "calibrated")
            for p in (from_file, from_store)]
    assert mine[0]["params"] == pytest.approx(mine[1]["params"])


def test_report_with_calibration_has_the_same_plan(store, fitted, tmp_path):
    """`budget report --calibrate` embeds exactly the plan of `budget plan --calibrate`, a
    calibration section, and the sweep's IsoFLOP and frontier figures logged with the fit."""
    args = ["--flops", "1e21", "--gpu", "h100", "--calibrate", EXP, "--tracking-uri", store]
    result = run("report", *args, "--out", str(tmp_path / "p"), "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    plan = json.loads(run("plan", *args, "--json").stdout)
    assert json.loads((tmp_path / "p" / "plan.json").read_text()) == plan
    names = {p.rsplit("/", 1)[-1] for p in written["figures"]}
    assert "calibration_fit_frontier.png" in names
    # the IsoFLOP figure exists when Approach 2 could be fitted (interior minima at 2+ budgets)
    assert ("calibration_fit_isoflop.png" in names) == ("approach2" in fitted)
    text = (tmp_path / "p" / "proposal.md").read_text()
    assert "Calibration against our own sweep" in text and "VERY LONG extrapolation" in text


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
    assert result.exit_code == 2 and "no MLflow store at" in result.stderr
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


def test_calibrated_plan_says_its_loss_unit_and_uses_the_sweeps_setup(store, fitted, tmp_path):
    """Issue 15.3: the smoke sweep trains byte-level models (vocabulary 256, context 32), so the
    calibrated loss is nats per byte (said in the table and the JSON, never bare beside the
    literature's nats per token) and the calibrated shape uses vocabulary 256 and context 32;
    --vocab / --seq-len still win."""
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fitted))
    assert (fitted["sweep"]["loss_unit"], fitted["sweep"]["vocab_size"],
            fitted["sweep"]["n_ctx"]) == ("nats per byte", 256, 32)
    plan = json.loads(run("plan", "--flops", "3e10", "--calibrate", str(path), "--json").stdout)
    assert plan["recommended"] == "calibrated"
    units = {a["law"]: a["loss_unit"] for a in plan["allocations"]}
    assert units["calibrated"] == "nats per byte" and units["epoch"] == "nats per token"
    assert plan["calibration"]["units"]["vocab_size"] == 256
    assert (plan["shape"]["vocab_size"], plan["shape"]["n_ctx"]) == (256, 32)
    text = run("plan", "--flops", "3e10", "--calibrate", str(path)).stdout
    row = next(line for line in text.splitlines() if line.strip().startswith("calibrated *"))
    assert row.rstrip().endswith("nats/byte")
    assert "nats per byte of your sweep" in text and "the sweep's own vocabulary 256" in text
    own = json.loads(run("plan", "--flops", "3e10", "--calibrate", str(path), "--vocab", "32000",
                         "--seq-len", "2048", "--json").stdout)
    assert (own["shape"]["vocab_size"], own["shape"]["n_ctx"]) == (32000, 2048)
    literature = json.loads(run("plan", "--flops", "3e10", "--calibrate", str(path), "--law",
                                "epoch", "--json").stdout)
    assert literature["shape"]["n_ctx"] == 2048  # a literature law's shape keeps the defaults


def test_report_labels_the_calibrated_loss_unit(store, fitted, tmp_path):
    """The proposal names the calibrated loss's unit in its calibration section and table."""
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fitted))
    result = run("report", "--flops", "3e10", "--calibrate", str(path), "--out", str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "p" / "proposal.md").read_text()
    assert "nats per byte" in text and "nats/token on our data" not in text
    assert "not the literature's nats per token" in text
