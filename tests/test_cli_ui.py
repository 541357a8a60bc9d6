"""`budget ui`: a real MLflow UI on the sweep store, and one-line errors."""

import json
import socket
import urllib.request

import pytest
from click.testing import CliRunner

from budget.cli import main
from experiments.review.ui import ui_command


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_command_serves_local_artifacts_beside_the_database(tmp_path):
    cmd = ui_command(f"sqlite:///{tmp_path}/mlflow.db", "127.0.0.1", 5001)
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path}/mlflow.db"
    assert cmd[cmd.index("--default-artifact-root") + 1] == (tmp_path / "mlartifacts").as_uri()
    assert cmd[cmd.index("--port") + 1] == "5001"


def test_port_in_use_is_one_line_exit_2(tmp_path):
    uri, _ = _store(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["ui", "--port", str(port), "--tracking-uri", uri])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: --port {port} is already in use on 127.0.0.1; " \
                                    f"choose another port"


@pytest.mark.parametrize("port", ["0", "70000", "web"])
def test_bad_port_exits_2(port):
    result = CliRunner().invoke(main, ["ui", "--port", port])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def _store(tmp_path, experiment="sweep-a"):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return uri, MlflowClient(uri).create_experiment(experiment)


def test_ui_lands_on_the_experiments_runs_table_and_stops(tmp_path):
    """A real MLflow server on 127.0.0.1: the landing URL is the experiment's runs table
    (MLflow 3's hash route `#/experiments/<id>/runs`) on the points view, the id is the one the server reports
    for the name, and --check stops the server and its workers."""
    port = free_port()
    uri, exp_id = _store(tmp_path)
    result = CliRunner().invoke(main, ["ui", "--port", str(port), "--tracking-uri", uri,
                                       "--experiment", "sweep-a", "--check", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["url"] == f"http://127.0.0.1:{port}" and data["tracking_uri"] == uri
    assert data["landing_url"] == (f"http://127.0.0.1:{port}/#/experiments/{exp_id}/runs"
                                   "?viewStateShareKey=budget-points")
    assert data["experiment_id"] == exp_id and data["warnings"] == []
    assert "starting the MLflow UI" in result.stderr
    with pytest.raises(OSError):  # --check stopped the server it started
        urllib.request.urlopen(data["url"] + "/health", timeout=2)


def test_port_left_in_time_wait_by_a_previous_server_is_free():
    """The server closing first leaves its port in TIME_WAIT: a plain bind is refused, the
    check (SO_REUSEADDR, as uvicorn binds) lets the new UI start."""
    from experiments.review.ui import check_port

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = srv.accept()
    conn.close()  # the server side closes first: TIME_WAIT on the server's port
    client.close()
    srv.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    check_port("127.0.0.1", port)


def test_unknown_experiment_and_missing_store_are_one_line(tmp_path):
    uri, _ = _store(tmp_path)
    result = CliRunner().invoke(main, ["ui", "--tracking-uri", uri, "--experiment", "nope",
                                       "--port", str(free_port())])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: --experiment 'nope' is not in {uri}; it has: " \
                                    "'Default', 'sweep-a'"
    missing = f"sqlite:///{tmp_path}/elsewhere/mlflow.db"
    result = CliRunner().invoke(main, ["ui", "--tracking-uri", missing])
    assert result.exit_code == 2 and "no MLflow store at" in result.output
    assert not (tmp_path / "elsewhere").exists()  # nothing created


def test_bad_host_is_not_port_in_use(tmp_path):
    uri, _ = _store(tmp_path)
    result = CliRunner().invoke(main, ["ui", "--tracking-uri", uri, "--host", "no.such.host.invalid"])
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: --host 'no.such.host.invalid' is not a known host "
                                     "name or address")


def test_killed_ui_takes_mlflow_and_its_workers_down(tmp_path):
    """SIGKILL cannot be caught: the guard process sees the pipe close and ends the group."""
    import os
    import signal
    import subprocess
    import sys
    import time

    port = free_port()
    uri, _ = _store(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "budget", "ui", "--port", str(port),
                             "--tracking-uri", uri], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("MLflow UI: "), line
        pgids = _groups_serving(uri)
        assert len(pgids) == 1 and str(os.getpgid(proc.pid)) not in pgids  # a group of its own
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _groups_serving(uri):
        time.sleep(0.5)
    assert not _groups_serving(uri)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


def _groups_serving(uri):
    import subprocess

    out = subprocess.run(["ps", "-eo", "pgid,args", "--cols", "100000"], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if uri in line and "budget ui" not in line}


@pytest.mark.parametrize("host,url", [("::1", "http://[::1]:5000"), ("::", "http://[::1]:5000"),
                                      ("0.0.0.0", "http://127.0.0.1:5000"),
                                      ("127.0.0.1", "http://127.0.0.1:5000"),
                                      ("fe80::1%eth0", "http://[fe80::1%25eth0]:5000")])
def test_http_url_brackets_ipv6_literals(host, url):
    """Issue 27: `--host ::1` printed http://::1:5000, which no browser or urllib opens."""
    from experiments.review.ui import http_url

    assert http_url(host, 5000) == url


def test_ui_on_ipv6_loopback_prints_a_url_that_answers(tmp_path):
    """A real MLflow server on ::1: the printed URL is bracketed and its /health answered while
    it ran (the command waits on that very URL before printing it)."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
            port = sock.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    uri, _ = _store(tmp_path)
    result = CliRunner().invoke(main, ["ui", "--host", "::1", "--port", str(port),
                                       "--tracking-uri", uri, "--check", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["url"] == f"http://[::1]:{port}"
