"""`budget ui`: a real MLflow UI on the sweep store, and one-line errors."""

import json
import socket
import urllib.request

import pytest
from click.testing import CliRunner

from budget.cli import main
from experiments.ui import ui_command


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
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["ui", "--port", str(port), "--tracking-uri",
                                           f"sqlite:///{tmp_path}/mlflow.db"])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: --port {port} is already in use on 127.0.0.1; " \
                                    f"choose another port"


@pytest.mark.parametrize("port", ["0", "70000", "web"])
def test_bad_port_exits_2(port):
    result = CliRunner().invoke(main, ["ui", "--port", port])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def test_ui_starts_answers_and_stops(tmp_path):
    port = free_port()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = CliRunner().invoke(main, ["ui", "--port", str(port), "--tracking-uri", uri,
                                       "--check", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["url"] == f"http://127.0.0.1:{port}" and data["tracking_uri"] == uri
    with pytest.raises(OSError):  # --check stopped the server it started
        urllib.request.urlopen(data["url"] + "/health", timeout=2)
