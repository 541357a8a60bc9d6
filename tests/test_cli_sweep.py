"""`budget sweep` through click's CliRunner: JSON keys, exit codes, one-line errors."""

import json

import pytest
from click.testing import CliRunner

from budget.cli import main

pytestmark = pytest.mark.slow  # trains real models (still seconds each)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_dry_run_json_lists_the_grid_and_trains_nothing(tmp_path):
    result = invoke("sweep", "--preset", "smoke", "--budgets", "1e10,3e10", "--points", "3",
                    "--threads", "1", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"experiment", "experiment_id", "parent_run_id", "runs"} <= set(data)
    assert data["dry_run"] is True and data["parent_run_id"] is None
    assert len(data["runs"]) == 6
    assert {"run_id", "status", "params", "tokens", "flops", "val_loss"} <= set(data["runs"][0])
    assert {r["flops"] for r in data["runs"]} == {1e10, 3e10}
    assert not (tmp_path / "mlflow.db").exists()


def test_dry_run_table_has_shapes_and_time():
    result = invoke("sweep", "--preset", "cpu", "--dry-run", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "d_model" in result.output and "est. time" in result.output
    assert "nothing trained" in result.output


def test_tiny_sweep_json_into_the_default_store(tmp_path):
    result = invoke("sweep", "--preset", "smoke", "--budgets", "3e9", "--points", "2",
                    "--threads", "1", "--experiment", "cli", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["experiment"] == "cli" and data["tracking_uri"] == "sqlite:///mlflow.db"
    assert (tmp_path / "mlflow.db").exists() and (tmp_path / "mlartifacts").is_dir()
    runs = data["runs"]
    assert [r["status"] for r in runs] == ["FINISHED", "FINISHED"]
    assert all(r["val_loss"] > 0 and len(r["run_id"]) == 32 for r in runs)
    again = json.loads(invoke("sweep", "--preset", "smoke", "--budgets", "3e9", "--points", "2",
                              "--threads", "1", "--experiment", "cli", "--json").stdout)
    assert [r["skipped"] for r in again["runs"]] == [True, True]


def test_sweep_on_user_text_logs_that_dataset(tmp_path):
    import mlflow

    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("The quick brown fox jumps over the lazy dog. " * 500)
    result = invoke("sweep", "--preset", "smoke", "--budgets", "3e9", "--points", "1",
                    "--threads", "1", "--data", "texts", "--experiment", "own", "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["runs"][0]
    assert run["status"] == "FINISHED"
    logged = mlflow.MlflowClient("sqlite:///mlflow.db").get_run(run["run_id"])
    dataset = logged.inputs.dataset_inputs[0].dataset
    assert dataset.name == "texts (22,500 tokens)" and str(tmp_path / "texts") in dataset.source


@pytest.mark.parametrize("args, needle", [
    (["--budgets", "1e10,abc"], "'abc' is not a number"),
    (["--budgets", "1e10,-3"], "'-3' must be a finite number > 0"),
    (["--points", "0"], "'0' must be a whole number >= 1"),
    (["--preset", "laptop"], "'laptop' is not one of"),
    (["--device", "tpu"], "'tpu' is not one of"),
    (["--data", "no/such/file.txt"], "does not exist"),
    (["--lr", "-1"], "must be > 0"),
    (["--threads", "100000"], "100000 is not in the range 1<=x<=1024"),
    (["--workers", "0"], "0 is not in the range 1<=x<=256"),
    (["--workers", "2", "--executor", "ray"], "--workers 2 is for --executor pool"),
])
def test_bad_input_exits_2_with_one_line(args, needle):
    result = CliRunner().invoke(main, ["sweep", "--preset", "smoke", "--dry-run", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0], lines
    assert "Traceback" not in result.output


def test_unusable_tracking_store_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    result = invoke("sweep", "--preset", "smoke", "--budgets", "3e9", "--points", "1",
                    "--tracking-uri", f"sqlite:///{tmp_path}/a_file/mlflow.db")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "not usable" in result.output


def test_help_has_an_example():
    result = invoke("sweep", "--help")
    assert result.exit_code == 0 and "Example: budget sweep" in result.output


def test_cuda_without_a_gpu_is_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = invoke("sweep", "--preset", "smoke", "--dry-run", "--device", "cuda")
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: --device cuda was asked for but torch sees no CUDA "
                                     "device")


def test_a_sweep_whose_every_point_failed_exits_1(tmp_path):
    """An lr of 1e9 diverges at once: the point is FAILED with its reason, and so is the
    command (exit 1, one line saying why), not a silent exit 0."""
    result = invoke("sweep", "--preset", "smoke", "--budgets", "3e9", "--points", "1",
                    "--threads", "1", "--lr", "1e9", "--experiment", "diverge", "--quiet")
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: every point of the sweep FAILED (TrainingFailed: loss is")


def test_a_locked_store_is_one_line_exit_2(tmp_path):
    import sqlite3

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/locked.db"  # absolute: MLflow caches stores by URI
    MlflowClient(uri).create_experiment("locked")
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = invoke("sweep", "--preset", "smoke", "--budgets", "3e9", "--points", "1",
                        "--threads", "1", "--experiment", "locked", "--tracking-uri", uri)
    finally:
        holder.close()
    assert result.exit_code == 2
    assert result.output.strip() == (f"Error: tracking store '{uri}' is not usable: "
                                     "(sqlite3.OperationalError) database is locked")


def test_two_sweeps_of_one_experiment_on_a_fresh_store_share_the_points(tmp_path):
    """Two worker processes started together on a store that does not exist yet: no race on its
    creation, one parent run, and every point trained exactly once (the other worker skips a
    point that is finished or being trained)."""
    import os
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/shared/mlflow.db"
    (tmp_path / "shared").mkdir()
    args = [sys.executable, "-m", "budget", "sweep", "--preset", "smoke", "--budgets",
            "3e9,4e9", "--points", "2", "--threads", "1", "--experiment", "workers",
            "--tracking-uri", uri, "--json"]
    env = {**os.environ, "PYTHONPATH": str(_repo())}
    workers = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env) for _ in range(2)]
    outs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [o[1][-500:] for o in outs]
    reports = [json.loads(o[0]) for o in outs]
    assert reports[0]["parent_run_id"] == reports[1]["parent_run_id"]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("workers")
    points = client.search_runs([exp.experiment_id], "tags.`budget.role` = 'point'")
    finished = [r.data.tags["budget.config_hash"] for r in points if r.info.status == "FINISHED"]
    assert len(finished) == len(set(finished)) == len(reports[0]["runs"]) == 4
    assert all(r.info.status == "FINISHED" for r in points)  # no duplicate, no failure
    trained = [sum(not r["skipped"] for r in rep["runs"]) for rep in reports]
    assert sum(trained) == 4


def test_workers_train_points_in_parallel_processes(tmp_path):
    """`--workers 2`: the process pool trains the points in two worker processes: every point
    FINISHED exactly once, by two distinct processes, one parent run left FINISHED with the
    result table of all points."""
    import os
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [sys.executable, "-m", "budget", "sweep", "--preset", "smoke", "--budgets", "1e10",
            "--points", "4", "--workers", "2", "--experiment", "two", "--tracking-uri", uri,
            "--json"]
    env = {**os.environ, "PYTHONPATH": str(_repo()), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["workers"] == 2 and len(report["runs"]) == 4
    assert all(r["status"] == "FINISHED" and r["val_loss"] for r in report["runs"])
    assert not any(r["skipped"] for r in report["runs"])  # trained now, by one worker or other
    assert report["executor"] == "pool"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("two")
    points = client.search_runs([exp.experiment_id], "tags.`budget.role` = 'point'")
    hashes = [r.data.tags["budget.config_hash"] for r in points]
    assert len(hashes) == len(set(hashes)) == 4 and all(r.info.status == "FINISHED" for r in points)
    assert len({r.data.tags["budget.worker"] for r in points}) == 2  # both processes trained
    each = max(1, len(os.sched_getaffinity(0)) // 2)  # cores / workers threads each
    assert {r.data.tags["budget.threads"] for r in points} == {str(each)}
    assert client.get_run(report["parent_run_id"]).info.status == "FINISHED"


def test_dry_run_divides_the_estimate_over_the_workers():
    one = CliRunner().invoke(main, ["sweep", "--preset", "smoke", "--dry-run", "--json"])
    two = CliRunner().invoke(main, ["sweep", "--preset", "smoke", "--dry-run", "--workers", "2"])
    assert json.loads(one.stdout)["workers"] == 1  # the smoke preset: one worker
    assert "with 2 workers" in two.stdout


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent
