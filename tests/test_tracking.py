"""The one MLflow writer: no fluent API or global URI anywhere, names in one module, credentials
never written, two stores in one process kept apart (real sqlite stores)."""

import ast
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments.tracking import names
from experiments.tracking.writer import REDACTED, Tracker, close_running, open_store, redact

ROOT = Path(__file__).resolve().parent.parent
FLUENT = {"start_run", "end_run", "set_tracking_uri", "set_experiment", "log_param", "log_params",
          "log_metric", "log_metrics", "log_artifact", "log_artifacts", "log_dict", "log_figure",
          "log_input", "set_tag", "set_tags", "active_run", "autolog"}


def _sources(*packages):
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_no_fluent_mlflow_call_and_no_global_uri_anywhere():
    """Every write goes through experiments.tracking.writer.Tracker (an MlflowClient)."""
    found = []
    for path in _sources("budget", "experiments", "fits"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "mlflow" and node.attr in FLUENT):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} mlflow.{node.attr}")
    assert found == []


def test_budget_report_never_imports_mlflow_or_experiments():
    """budget/report asks experiments (through the report command) for MLflow work."""
    bad = []
    for path in _sources("budget/report"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{path.name}: {m}" for m in mods if m.split(".")[0] in ("mlflow", "experiments")]
    assert bad == []


@pytest.mark.parametrize("key, value, expected", [
    ("sweep.tracking_uri", '"http://alice:s3cr3t@mlflow.example:5000"',
     '"http://mlflow.example:5000"'),
    ("backend", "postgresql+psycopg2://budget:pw@127.0.0.1:5432/mlflow",
     "postgresql+psycopg2://127.0.0.1:5432/mlflow"),
    ("db_password", "hunter2", REDACTED),
    ("RAY_AUTH_TOKEN", "abc", REDACTED),
    ("eval_tokens", "65536", "65536"),  # a count of tokens is not a secret
    ("sweep.tracking_uri", '"sqlite:////tmp/x/mlflow.db"', '"sqlite:////tmp/x/mlflow.db"'),
])
def test_redact(key, value, expected):
    assert redact(key, value) == expected


def test_two_stores_in_one_process_stay_apart_and_credentials_are_never_written(tmp_path,
                                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    ta, exp_a, _ = open_store(a, "one")
    tb, exp_b, _ = open_store(b, "two")
    run_a = ta.create_run(exp_a, "ra", {names.ROLE: names.ROLE_POINT})
    run_b = tb.create_run(exp_b, "rb", {names.ROLE: names.ROLE_POINT}, parent=run_a)
    ta.log_params(run_a, {"uri": "http://u:p4ss@h:1", "api_key": "k", "n": 3})
    ta.log_metrics(run_a, {"loss": 1.5}, step=2)
    ta.end_run(run_a)
    assert [r.info.run_id for r in MlflowClient(a).search_runs([exp_a])] == [run_a]
    assert [r.info.run_id for r in MlflowClient(b).search_runs([exp_b])] == [run_b]
    got = MlflowClient(a).get_run(run_a)
    assert got.data.params == {"uri": "http://h:1", "api_key": REDACTED, "n": "3"}
    assert got.data.metrics == {"loss": 1.5} and got.info.status == "FINISHED"
    assert MlflowClient(b).get_run(run_b).data.tags[names.PARENT_RUN] == run_a
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["a.db", "b.db"]  # no ./mlflow.db


def test_close_running_kills_only_runs_left_running(tmp_path):
    tracker, exp, _ = open_store(f"sqlite:///{tmp_path}/m.db", "close")
    done = tracker.create_run(exp, "done", {})
    tracker.end_run(done)
    left = tracker.create_run(exp, "left", {})
    assert close_running(tracker, [done, left], "still RUNNING at the end") == [left]
    run = tracker.client.get_run(left)
    assert run.info.status == "KILLED" and run.data.tags[names.FAILURE] == "still RUNNING at the end"
    assert tracker.status(done) == "FINISHED"


def test_end_run_prints_nothing_on_stdout(tmp_path, capfd):
    tracker = Tracker(f"sqlite:///{tmp_path}/q.db")
    _, exp, _ = open_store(tracker.uri, "quiet")
    run = tracker.create_run(exp, "q", {})
    tracker.end_run(run)
    assert capfd.readouterr().out == ""


def test_ray_address_without_the_ray_executor_is_one_line():
    from click.testing import CliRunner

    from budget.cli import main

    result = CliRunner().invoke(main, ["sweep", "--preset", "smoke", "--ray-address", "h:6379",
                                       "--dry-run"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: --ray-address h:6379 needs --executor ray"
