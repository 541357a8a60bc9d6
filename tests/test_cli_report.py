"""`budget report` through click's CliRunner: the same numbers as `budget plan --json`, the
one-line exit-2 errors, and logging the folder to a real MLflow sqlite store."""

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from budget.cli import main

COMPARE = "a100,h200,mi300x"


def run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def default_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "proposal"
    result = run("report", "--flops", "1e21", "--gpu", "h100", "--compare", COMPARE,
                 "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_names_the_files_and_carries_the_plan(default_report):
    r = default_report
    assert set(r) == {"out_dir", "markdown", "html", "plan_json", "figures", "mlflow", "plan",
                      "compare"}
    for key in ("markdown", "html", "plan_json"):
        assert Path(r[key]).is_file()
    assert [Path(f).name for f in r["figures"]] == ["loss_vs_compute.png", "allocation.png",
                                                    "accelerators.png", "memory.png",
                                                    "tornado.png"]
    assert r["mlflow"] is None


def test_report_plan_equals_budget_plan_json(default_report):
    plan = run("plan", "--flops", "1e21", "--gpu", "h100", "--json")
    assert json.loads(plan.stdout) == default_report["plan"]
    assert Path(default_report["plan_json"]).read_text() == plan.stdout  # byte for byte


@pytest.mark.parametrize("args", [
    ["--budget-usd", "5000", "--gpu", "a100", "--num-gpus", "16", "--mfu", "0.35"],
    ["--params", "7e9", "--tokens", "140e9", "--seq-len", "4096", "--zero", "1", "--law", "kaplan"],
])
def test_same_options_same_plan(tmp_path, args):
    """Every plan option means the same in report: the embedded plan equals `budget plan`."""
    report = run("report", *args, "--out", str(tmp_path / "p"), "--json")
    assert report.exit_code == 0, report.output
    plan = json.loads(run("plan", *args, "--json").stdout)
    assert json.loads(report.stdout)["plan"] == plan
    # the proposal prints a `budget plan` line (budget given as C) that reproduces the numbers
    markdown = (tmp_path / "p" / "proposal.md").read_text()
    line = markdown.split("re-checked with:\n\n```\n")[1].split("\n")[0]
    assert line.startswith("budget plan --flops " if "--budget-usd" in args else
                           "budget plan --params 7000000000.0 --tokens 140000000000.0 ")
    again = json.loads(run(*shlex.split(line)[1:], "--json").stdout)
    # the numbers agree; the labels differ by design: a money budget turns into C at the given MFU,
    # while the --flops line is timed by its layout with --mfu as a labelled override
    for key in ("budget", "gpu", "mfu_source", "time_source", "notes"):
        again.pop(key), plan.pop(key)
    assert again == plan


def test_each_compare_row_equals_budget_plan_on_that_gpu(default_report):
    C = default_report["plan"]["compute_flops"]
    assert [row["gpu"]["id"] for row in default_report["compare"]] == [
        "h100-sxm-80gb", "a100-sxm-80gb", "h200-sxm-141gb", "mi300x"]
    for row in default_report["compare"]:
        plan = json.loads(run("plan", "--flops", repr(C), "--gpu", row["gpu"]["id"], "--num-gpus",
                              str(row["num_gpus"]), "--json").stdout)
        cost = row["cost"]
        assert (plan["gpu_hours"], plan["wall_clock_hours"], plan["cost_usd"]) == \
            (cost["gpu_hours"], cost["wall_clock_hours"], cost["cost_usd"])
        assert plan["memory"] == row["memory"]


def test_text_output_lists_the_files(tmp_path):
    result = run("report", "--flops", "1e21", "--out", str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Train a 2.78B-parameter model on 59.9B tokens")
    assert f"Wrote {tmp_path / 'p' / 'proposal.md'}" in result.stdout


@pytest.mark.parametrize("args,fragment", [
    (["--flops", "1e21", "--compare", "a100,h10"],
     "--compare h10: unknown accelerator 'h10'; close matches: h100"),
    (["--flops", "1e21", "--compare", "v100"], "--compare v100: v100-sxm2-32gb has no bf16 peak"),
    (["--flops", "-1"], "Invalid value for '--flops': '-1' must be > 0"),
    (["--flops", "1e21", "--gpu", "h10"], "unknown accelerator 'h10'"),
    (["--flops", "1e21", "--experiment", " "], "--experiment is empty"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, fragment):
    result = run("report", *args, "--out", str(tmp_path / "p"))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_output_folder_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    under = run("report", "--flops", "1e21", "--out", str(blocker / "proposal"))
    assert under.exit_code == 2 and under.stdout == ""
    assert under.stderr == (f"Error: cannot write the report to '{blocker / 'proposal'}': Not a "
                            f"directory; nothing was changed there; give --out a folder you can write (it "
                            f"is created if missing)\n")
    itself = run("report", "--flops", "1e21", "--out", str(blocker))
    assert itself.exit_code == 2 and itself.stderr.count("\n") == 1
    assert "is a file" in itself.stderr


def test_logs_the_folder_to_a_real_mlflow_sqlite_store(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run("report", "--flops", "1e21", "--compare", "a100", "--out", str(tmp_path / "p"),
                 "--experiment", "proposals", "--tracking-uri", uri, "--json")
    assert result.exit_code == 0, result.output
    logged = json.loads(result.stdout)["mlflow"]
    client = MlflowClient(tracking_uri=uri)
    run_ = client.get_run(logged["run_id"])
    assert run_.info.status == "FINISHED" and run_.data.tags["budget.role"] == "report"
    assert client.get_experiment_by_name("proposals").experiment_id == logged["experiment_id"]
    assert run_.data.params["gpu"] == "h100-sxm-80gb" and run_.data.params["compare"] == "a100-sxm-80gb"
    # the logged hours are the plan's: its layout's billed GPU-hours
    plan = json.loads(Path(json.loads(result.stdout)["plan_json"]).read_text())
    assert run_.data.metrics["gpu_hours"] == pytest.approx(plan["parallel"]["billed_gpu_hours"], rel=1e-6)
    top = {a.path for a in client.list_artifacts(logged["run_id"], "report")}
    assert {"report/proposal.md", "report/proposal.html", "report/plan.json",
            "report/figures"} <= top
    figures = {a.path for a in client.list_artifacts(logged["run_id"], "report/figures")}
    assert "report/figures/memory.png" in figures and len(figures) == 5
    local = client.download_artifacts(logged["run_id"], "report/plan.json", str(tmp_path))
    assert json.loads(Path(local).read_text())["compute_flops"] == 1e21
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts beside the database, not in the CWD


def test_unusable_tracking_store_fails_before_writing(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    uri = f"sqlite:///{blocker / 'mlflow.db'}"
    result = run("report", "--flops", "1e21", "--out", str(tmp_path / "p"), "--experiment", "e",
                 "--tracking-uri", uri)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"Error: tracking store '{uri}' is not usable")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "p").exists()
