"""The team server's pure parts, without a server: which options differ from a running server's,
the options a plain `start` keeps, the watchdog's backoff, Ray port parsing, password files."""

import json
from pathlib import Path

import pytest

from experiments.errors import SweepError
from experiments.team.auth import read_password_file
from experiments.team.ray_head import RayPorts, head_command, parse_ports
from experiments.team.server import ServerInfo, config_for, differing
from experiments.team.supervise import backoff


def _info(state, **kw):
    base = dict(state_dir=str(state), tracking_uri="http://127.0.0.1:5000",
                backend_store_uri="postgresql+psycopg2://budget@127.0.0.1:5432/mlflow",
                artifacts_destination=(state / "artifacts").as_uri(), host="127.0.0.1",
                port=5000, postgres_port=5432, mlflow_pid=123, postgres_pid=45, healthy=True)
    return ServerInfo(**{**base, **kw})


def test_options_that_differ_from_a_running_server_are_named(tmp_path):
    running = _info(tmp_path, basic_auth=False)
    assert differing(tmp_path, {"basic_auth": True}, running) == ["--basic-auth on (running: off)"]
    assert differing(tmp_path, {"port": 5000, "host": "127.0.0.1"}, running) == []
    assert differing(tmp_path, {"workers": 4, "allowed_hosts": "h:5000"}, running) == [
        "--workers 4 (running: 1)", "--allowed-hosts h:5000 (running: None)"]
    assert differing(tmp_path, {"artifacts_destination": None}, running) == []  # the default
    # MLflow down: it starts again with the new options; the cluster's port cannot change
    down = _info(tmp_path, mlflow_pid=None)
    assert differing(tmp_path, {"port": 6000, "postgres_port": 9999}, down) == [
        "--postgres-port 9999 (running: 5432)"]


def test_a_plain_start_keeps_the_options_the_server_last_ran_with(tmp_path):
    (tmp_path / "server.json").write_text(json.dumps(
        _info(tmp_path, port=5123, basic_auth=True, workers=3).to_dict()))
    cfg = config_for(tmp_path, {})
    assert (cfg.port, cfg.basic_auth, cfg.workers, cfg.artifacts_destination) == (5123, True, 3, None)
    assert config_for(tmp_path, {"workers": 1}).workers == 1
    assert config_for(tmp_path / "new", {}).port == 5000  # nothing recorded: the defaults


def test_watchdog_backoff_doubles_to_a_ceiling():
    assert [backoff(n, 5.0, 120.0) for n in range(7)] == [5, 10, 20, 40, 80, 120, 120]


def test_ray_ports_parse_and_every_one_reaches_the_command():
    ports = parse_ports("gcs=7000,min_worker=11000,max-worker=11010")
    assert (ports.gcs, ports.min_worker, ports.max_worker) == (7000, 11000, 11010)
    cmd = head_command("10.0.0.5", ports)
    assert cmd[cmd.index("--port") + 1] == "7000" and cmd.count("10.0.0.5") == 2
    for bad in ("gcs=0", "nope=1", "gcs=x", "min_worker=20,max_worker=10"):
        with pytest.raises(SweepError):
            parse_ports(bad)
    with pytest.raises(SweepError, match="every interface"):
        head_command("0.0.0.0", RayPorts())


def test_a_password_file_others_can_read_is_refused(tmp_path):
    pw = Path(tmp_path / "pw")
    pw.write_text("a-long-enough-password\n")
    pw.chmod(0o640)
    with pytest.raises(SweepError, match="chmod 600"):
        read_password_file(pw)
    pw.chmod(0o600)
    assert read_password_file(pw) == "a-long-enough-password"
    with pytest.raises(SweepError, match="cannot be read"):
        read_password_file(tmp_path / "missing")
