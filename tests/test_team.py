"""The team setup with real parts: a throwaway PostgreSQL cluster on a loopback port (initdb,
pg_ctl), `mlflow server` on it with proxied artifacts, an in-process Ray cluster with 2 CPUs;
smoke sweeps over Ray land in the server, a killed worker's run never stays RUNNING, a rerun
resumes, no credential is logged, and everything stops by PID."""

import json
import os
import shutil
import signal
import stat
import tempfile
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("psycopg2")
from click.testing import CliRunner  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from budget.cli import main  # noqa: E402
from experiments.sweeps.sweep import SweepSpec, plan_sweep, run_sweep  # noqa: E402
from experiments.team.auth import ADMIN_PASSWORD_FILE, ADMIN_USER  # noqa: E402
from experiments.team.health import api_get  # noqa: E402
from experiments.team.postgres import PGPASS_FILE  # noqa: E402
from experiments.team.procs import running  # noqa: E402
from experiments.team.server import (  # noqa: E402
    ServerConfig,
    free_port,
    server_status,
    start_server,
    stop_server,
)
from experiments.tracking import names  # noqa: E402
from experiments.training.train import train_run  # noqa: E402

pytestmark = pytest.mark.slow


def healthy(url):
    return api_get(url, "/health", None)[0] == 200


@pytest.fixture(scope="module")
def server():
    """The team server with MLflow's basic-auth on; clients sign in as its admin."""
    # under /tmp, world-traversable: as root, PostgreSQL runs as the postgres user
    base = Path(tempfile.mkdtemp(prefix="budget-team-", dir="/tmp"))
    base.chmod(0o755)
    info = start_server(ServerConfig(state_dir=str(base / "srv"), port=free_port(),
                                     basic_auth=True))
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_USERNAME", ADMIN_USER)
    mp.setenv("MLFLOW_TRACKING_PASSWORD", admin_password(info))
    yield info
    mp.undo()
    stop_server(info.state_dir)
    shutil.rmtree(base, ignore_errors=True)


def admin_password(info):
    return (Path(info.state_dir) / ADMIN_PASSWORD_FILE).read_text().strip()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))  # workers inherit it
    ray.init(address="local", num_cpus=2, object_store_memory=128 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False)
    yield
    ray.shutdown()
    mp.undo()


@pytest.fixture(scope="module")
def swept(server, cluster):
    uri = server.tracking_uri.replace("http://", f"http://{ADMIN_USER}:{admin_password(server)}@")
    spec = SweepSpec(preset="smoke", budgets=(3e9, 6e9), points=2, experiment="team",
                     tracking_uri=uri, threads=1, executor="ray")
    return spec, run_sweep(spec, progress=False)


def test_server_runs_on_postgres_on_loopback_and_keeps_its_password_off_command_lines(server):
    import psycopg2

    assert server.healthy and server.host == "127.0.0.1"
    assert server.backend_store_uri.startswith("postgresql+psycopg2://budget@127.0.0.1:")
    pgpass = Path(server.state_dir) / PGPASS_FILE
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600
    password = pgpass.read_text().strip().rsplit(":", 1)[1]
    cmdline = Path(f"/proc/{server.mlflow_pid}/cmdline").read_bytes().decode()
    assert password not in cmdline and "--serve-artifacts" in cmdline
    assert password not in (Path(server.state_dir) / "server.json").read_text()
    conn = psycopg2.connect(host="127.0.0.1", port=server.postgres_port, user="budget",
                            dbname="mlflow", passfile=str(pgpass))
    with conn, conn.cursor() as cur:
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone()[0] == "127.0.0.1"
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'runs'")
        assert cur.fetchone()[0] == 1  # MLflow's schema lives in PostgreSQL
    conn.close()
    with pytest.raises(psycopg2.OperationalError):  # scram-sha-256: no password, no entry
        psycopg2.connect(host="127.0.0.1", port=server.postgres_port, user="budget",
                         dbname="mlflow", password="wrong", connect_timeout=5)


def test_status_command_prints_one_json_object(server):
    result = CliRunner().invoke(main, ["server", "status", "--dir", server.state_dir, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["healthy"] is True and data["mlflow_pid"] == server.mlflow_pid


def test_status_of_a_folder_without_a_server_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["server", "status", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: no team server was started in --dir")
    assert len(result.stderr.strip().splitlines()) == 1


def test_sweep_over_ray_lands_every_run_with_metrics_and_artifacts(server, swept):
    spec, result = swept
    client = MlflowClient(server.tracking_uri)
    assert [r.status for r in result.runs] == ["FINISHED"] * len(result.runs) == ["FINISHED"] * 4
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags[names.POINTS_FINISHED] == "4"
    assert names.ISOFLOP_PNG in [a.path for a in client.list_artifacts(result.parent_run_id)]
    for r in result.runs:
        run = client.get_run(r.run_id)
        tags = run.data.tags
        assert run.info.status == "FINISHED"
        assert tags[names.PARENT_RUN] == result.parent_run_id and tags[names.EXECUTOR] == "ray"
        assert tags[names.ATTEMPT] == "1" and tags[names.NODE] == r.node
        assert run.data.metrics[names.FINAL_VAL_LOSS] == pytest.approx(r.val_loss)
        steps = -(-int(run.data.params["tokens"]) // (int(run.data.params["batch_size"])
                                                      * int(run.data.params["n_ctx"])))
        assert len(client.get_metric_history(r.run_id, names.TRAIN_LOSS)) == steps
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied, over HTTP
        assert {a.path for a in client.list_artifacts(r.run_id)} >= {names.CONFIG_JSON,
                                                                      names.LOSS_CURVE_PNG}
    stored = list((Path(server.state_dir) / "artifacts").rglob(names.LOSS_CURVE_PNG))
    assert len(stored) == 4  # the server wrote them to its --artifacts-destination


def test_basic_auth_guards_the_server_and_no_credential_is_ever_logged(server, swept):
    import urllib.error
    import urllib.request

    _, result = swept
    with pytest.raises(urllib.error.HTTPError) as denied:  # no credentials: 401
        urllib.request.urlopen(f"{server.tracking_uri}/api/2.0/mlflow/experiments/search"
                               "?max_results=1", timeout=10)
    assert denied.value.code == 401
    secret = admin_password(server)
    client = MlflowClient(server.tracking_uri)
    exp = client.get_experiment_by_name("team")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 5  # the parent and its 4 points
    for run in runs:
        values = list(run.data.params.values()) + list(run.data.tags.values())
        assert not [v for v in values if secret in v]
    assert secret not in (Path(server.state_dir) / "server.json").read_text()
    assert secret not in Path(f"/proc/{server.mlflow_pid}/cmdline").read_bytes().decode()
    assert json.loads(client.get_run(result.parent_run_id).data.params["sweep.tracking_uri"]) \
        == server.tracking_uri


def test_rerun_resumes(server, swept):
    spec, first = swept
    again = run_sweep(spec, progress=False)
    assert all(r.skipped for r in again.runs)
    assert [r.run_id for r in again.runs] == [r.run_id for r in first.runs]
    assert again.parent_run_id == first.parent_run_id


def test_a_killed_worker_ends_its_run_failed_never_running(server, cluster):
    """SIGKILL of the worker training the second point, on every attempt: Ray retries the task
    (each lost attempt's run KILLED by the next), gives up after MAX_RETRIES, the last run ends
    KILLED with Ray's reason, the sweep goes on; a rerun redoes it as the next attempt."""
    def killed_on_second(config, *args, **kwargs):
        if config.params == second:
            os.kill(os.getpid(), signal.SIGKILL)
        return train_run(config, *args, **kwargs)

    spec = SweepSpec(preset="smoke", budgets=(2e9,), points=2, experiment="team-kill",
                     tracking_uri=server.tracking_uri, threads=1, executor="ray")
    second = plan_sweep(SweepSpec(preset="smoke", budgets=(2e9,), points=2, threads=1)).runs[1].params
    result = run_sweep(spec, progress=False, train=killed_on_second)
    client = MlflowClient(server.tracking_uri)
    statuses = [client.get_run(r.run_id).info.status for r in result.runs]
    assert statuses[0] == "FINISHED" and statuses[1] == "KILLED"
    reason = client.get_run(result.runs[1].run_id).data.tags[names.FAILURE]
    assert "gave up after 2 retries" in reason and "ray:" in reason
    exp = client.get_experiment_by_name("team-kill")
    assert not client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
    lost = client.search_runs([exp.experiment_id], "attributes.status = 'KILLED'")
    assert len(lost) == 3  # attempts 1 and 2 closed by their retry, attempt 3 by the driver
    again = run_sweep(spec, progress=False)
    assert [r.skipped for r in again.runs] == [True, False]
    assert client.get_run(again.runs[1].run_id).data.tags[names.ATTEMPT] == "4"


def test_an_interrupted_driver_leaves_no_run_running(server, cluster):
    """SIGTERM to the driver while a task trains (what `kill` or a closing terminal does): the
    task is cancelled, its run and the parent end KILLED, nothing stays RUNNING."""
    import threading
    import time

    def slow(config, *args, **kwargs):
        time.sleep(60)

    client = MlflowClient(server.tracking_uri)

    def interrupt_when_training():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            exp = client.get_experiment_by_name("team-ctrl-c")
            if exp and client.search_runs([exp.experiment_id], f"tags.`{names.NODE}` != ''"):
                break  # a task has started training
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    spec = SweepSpec(preset="smoke", budgets=(2e9,), points=1, experiment="team-ctrl-c",
                     tracking_uri=server.tracking_uri, threads=1, executor="ray")
    threading.Thread(target=interrupt_when_training, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, progress=False, train=slow)
    exp = client.get_experiment_by_name("team-ctrl-c")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]  # the point, the parent
    point = next(r for r in runs if r.data.tags.get(names.ROLE) == names.ROLE_POINT)
    assert point.data.tags[names.FAILURE].startswith("interrupted")


def test_stop_stops_mlflow_then_postgres_by_pid(server, swept):
    before = server_status(server.state_dir)
    assert before.mlflow_pid and before.postgres_pid
    stopped = stop_server(server.state_dir)
    assert stopped.mlflow_pid is None and stopped.postgres_pid is None
    assert not running(before.mlflow_pid) and not running(before.postgres_pid)
    assert not healthy(server.tracking_uri)
    assert not server_status(server.state_dir).healthy
    # a second start on the folder reuses the cluster, its port and its runs
    again = start_server(ServerConfig(state_dir=server.state_dir, port=server.port,
                                      basic_auth=True))
    assert again.healthy and again.postgres_port == server.postgres_port
    assert MlflowClient(again.tracking_uri).get_run(swept[1].parent_run_id).info.status == "FINISHED"
    stop_server(server.state_dir)
    assert not healthy(server.tracking_uri)
