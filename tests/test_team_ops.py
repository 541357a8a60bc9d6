"""Team operations with real parts: one PostgreSQL + MLflow (basic-auth) server on 127.0.0.1 for
the module. Status checks each part by using it (kill PostgreSQL: `status` names it, `start`
brings back only it and a sweep continues; the --supervise watchdog does the same alone), start
refuses options that differ from the running server's, each researcher has an account and their
runs carry their name, every secret is 0600, backup then restore into a new folder gives back
every run, metric and artifact, and a start interrupted half-way leaves nothing running."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("psycopg2")
from click.testing import CliRunner  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from budget.cli import main  # noqa: E402
from experiments.team.auth import ADMIN_PASSWORD_FILE, ADMIN_USER, SECRET_FILES  # noqa: E402
from experiments.team.procs import running  # noqa: E402
from experiments.team.server import (  # noqa: E402
    ServerConfig,
    default_state_dir,
    free_port,
    read_state,
    server_status,
    start_server,
    stop_server,
)
from experiments.tracking import names  # noqa: E402
from experiments.tracking.writer import Tracker  # noqa: E402

pytestmark = pytest.mark.slow
PASSWORDS = {"alice": "alice-long-password-1", "bob": "bob-long-password-22"}


@pytest.fixture(scope="module")
def base():
    # under /tmp, world-traversable: as root, PostgreSQL runs as the postgres user
    folder = Path(tempfile.mkdtemp(prefix="budget-ops-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    for srv in folder.iterdir():
        if (srv / "server.json").is_file():
            stop_server(srv)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(base):
    return start_server(ServerConfig(state_dir=str(base / "srv"), port=free_port(),
                                     basic_auth=True))


def _cli(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def _as(monkeypatch, user):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS.get(user) or "")


@pytest.fixture(scope="module")
def users(server, base):
    """alice from a 0600 password file, bob typed at the prompt; each logs a run with a metric
    history and an artifact in their own experiment."""
    pw = base / "alice.pw"
    pw.write_text(PASSWORDS["alice"] + "\n")
    pw.chmod(0o600)
    made = _cli("server", "user", "add", "alice", "--dir", server.state_dir,
                "--password-file", pw, "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["username"] == "alice"
    typed = _cli("server", "user", "add", "bob", "--dir", server.state_dir,
                 input=f"{PASSWORDS['bob']}\n{PASSWORDS['bob']}\n")
    assert typed.exit_code == 0, typed.output
    assert PASSWORDS["bob"] not in typed.stdout
    runs = {}
    mp = pytest.MonkeyPatch()
    for user in PASSWORDS:
        _as(mp, user)
        tracker = Tracker(server.tracking_uri)
        client = MlflowClient(server.tracking_uri)
        exp = client.create_experiment(f"ops-{user}")
        run_id = tracker.create_run(exp, f"{user}-run", {names.ROLE: names.ROLE_POINT})
        for step in range(5):
            client.log_metric(run_id, "train_loss", 4.0 - step * 0.5, step=step)
        note = base / f"{user}.txt"
        note.write_text(f"written by {user}\n")
        client.log_artifact(run_id, str(note))
        client.set_terminated(run_id, "FINISHED")
        runs[user] = (exp, run_id)
    mp.undo()
    return runs


def test_default_data_folder_is_persistent_per_user_never_temporary(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_state_dir() == str(tmp_path / "data" / "compute-budget" / "server")
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", "/home/ann")
    assert default_state_dir() == "/home/ann/.local/share/compute-budget/server"
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # PostgreSQL's user cannot enter /root
    assert default_state_dir() == "/var/lib/compute-budget/server"


def test_start_refuses_options_that_differ_from_the_running_servers(server):
    for args, named in ((["--basic-auth"], None), (["--port", server.port + 1], "--port"),
                        (["--workers", "2", "--host", "0.0.0.0"], "--workers"),
                        (["--allowed-hosts", "x.example:5000"], "--allowed-hosts")):
        result = _cli("server", "start", "--dir", server.state_dir, *args)
        if named is None:  # the same options as the running server's: it is kept
            assert result.exit_code == 0, result.output
            assert json.loads(_cli("server", "status", "--dir", server.state_dir,
                                   "--json").stdout)["basic_auth"] is True
            continue
        assert result.exit_code == 2, result.output
        err = [line for line in result.stderr.splitlines() if not line.startswith("Warning")]
        assert len(err) == 1 and "with other options" in err[0] and named in err[0], err
    plain = ServerConfig(state_dir=server.state_dir, port=server.port)  # basic-auth off
    with pytest.raises(Exception, match=r"--basic-auth off \(running: on\)"):
        start_server(plain)
    assert server_status(server.state_dir).healthy


def test_every_secret_is_0600_and_no_password_is_in_argv(server, users):
    state = Path(server.state_dir)
    secrets_ = [state / name for name in SECRET_FILES]
    assert all(p.is_file() for p in secrets_), [p for p in secrets_ if not p.is_file()]
    for path in [*secrets_, state / "mlflow.log"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    admin = (state / ADMIN_PASSWORD_FILE).read_text().strip()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert admin not in argv and not any(p in argv for p in PASSWORDS.values())


def test_each_researchers_runs_carry_their_name_and_permissions_follow_mlflow(server, users,
                                                                              monkeypatch):
    admin = MlflowClient(server.tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN_USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", (Path(server.state_dir)
                                                    / ADMIN_PASSWORD_FILE).read_text().strip())
    for user, (_, run_id) in users.items():
        run = admin.get_run(run_id)
        assert run.info.user_id == user and run.data.tags[names.MLFLOW_USER] == user
    _as(monkeypatch, "bob")
    bob = MlflowClient(server.tracking_uri)
    alice_exp, alice_run = users["alice"]
    assert bob.get_run(alice_run).info.status == "FINISHED"  # READ for every signed-in user
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|403|Permission"):
        bob.create_run(alice_exp)  # alice created it: she MANAGEs it, bob may not write
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password-123")
    with pytest.raises(MlflowException, match="401|Unauthorized|credentials"):
        MlflowClient(server.tracking_uri).get_run(alice_run)


def test_password_file_readable_by_others_is_refused_in_one_line(server, base):
    loose = base / "loose.pw"
    loose.write_text("some-long-password-here\n")
    loose.chmod(0o644)
    result = _cli("server", "user", "add", "carol", "--dir", server.state_dir,
                  "--password-file", loose)
    assert result.exit_code == 2 and "chmod 600" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def after_postgres_died(server, users):
    """SIGKILL to the postmaster; what `status` said; `start`'s answer; a sweep run after it."""
    before = server_status(server.state_dir)
    os.kill(before.postgres_pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while running(before.postgres_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    status = _cli("server", "status", "--dir", server.state_dir, "--json")
    started = _cli("server", "start", "--dir", server.state_dir, "--json")
    mp = pytest.MonkeyPatch()
    _as(mp, "alice")
    from experiments.sweeps.sweep import SweepSpec, run_sweep

    swept = run_sweep(SweepSpec(preset="smoke", budgets=(2e9,), points=2, threads=1,
                                experiment="ops-sweep", tracking_uri=server.tracking_uri),
                      progress=False)
    mp.undo()
    return before, status, started, swept


def test_status_names_dead_postgres_and_start_brings_back_only_it(server, after_postgres_died):
    before, status, started, swept = after_postgres_died
    assert status.exit_code == 1
    down = json.loads(status.stdout)
    assert down["healthy"] is False and down["postgres_pid"] is None
    assert down["components"]["postgres"] != "ok" and down["components"]["mlflow"] != "ok"
    text = _cli("server", "status", "--dir", server.state_dir)  # healthy again by now
    assert text.exit_code == 0 and "healthy" in text.stdout
    assert started.exit_code == 0, started.output
    up = json.loads(started.stdout)
    assert up["healthy"] and up["components"] == {"postgres": "ok", "mlflow": "ok",
                                                  "artifacts": "ok"}
    assert up["mlflow_pid"] == before.mlflow_pid  # MLflow kept: only PostgreSQL was down
    assert up["postgres_pid"] != before.postgres_pid
    assert [r.status for r in swept.runs] == ["FINISHED", "FINISHED"]


def test_watchdog_restarts_dead_postgres_and_logs_why(server, after_postgres_died):
    state = Path(server.state_dir)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    watch = subprocess.Popen([sys.executable, "-m", "budget", "server", "start", "--supervise",
                              "--dir", str(state)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
    try:
        log = state / "supervise.log"
        deadline = time.monotonic() + 60
        while not (log.is_file() and "watching" in log.read_text()):
            assert time.monotonic() < deadline and watch.poll() is None
            time.sleep(0.3)
        pid = server_status(state).postgres_pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while "healthy again" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert "PostgreSQL down" in text and "attempt 1" in text
        now = server_status(state)
        assert now.healthy and now.postgres_pid != pid
    finally:
        watch.send_signal(signal.SIGTERM)
        watch.wait(timeout=30)
    assert watch.returncode == 0 and server_status(state).healthy  # left running as it was


def _everything(uri):
    """Every run of every experiment: info, params, tags, metric histories, artifact bytes."""
    client = MlflowClient(uri)
    out = {}
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id]):
            arts = {}
            todo = [a for a in client.list_artifacts(run.info.run_id)]
            while todo:
                a = todo.pop()
                if a.is_dir:
                    todo += client.list_artifacts(run.info.run_id, a.path)
                else:
                    local = client.download_artifacts(run.info.run_id, a.path,
                                                      tempfile.mkdtemp(dir="/tmp"))
                    arts[a.path] = Path(local).read_bytes()
            out[run.info.run_id] = (
                exp.name, run.info.status, run.info.user_id, run.data.params, run.data.tags,
                {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)]
                 for k in run.data.metrics}, arts)
    return out


def test_backup_then_restore_into_a_new_folder_gives_back_every_run(server, users,
                                                                    after_postgres_died, base,
                                                                    monkeypatch):
    archive = base / "team.tar.gz"
    done = _cli("server", "backup", archive, "--dir", server.state_dir, "--json")
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds the password hashes
    assert json.loads(done.stdout)["artifact_files"] >= 2 + 2 * 2  # notes, configs and curves
    fresh = base / "restored"
    back = _cli("server", "restore", archive, "--dir", fresh)
    assert back.exit_code == 0, back.output
    assert _cli("server", "restore", archive, "--dir", server.state_dir).exit_code == 2  # running
    second = _cli("server", "start", "--dir", fresh, "--port", free_port(), "--basic-auth",
                  "--json")
    assert second.exit_code == 0, second.output
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN_USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", (fresh / ADMIN_PASSWORD_FILE).read_text().strip())
    original, restored = _everything(server.tracking_uri), _everything(json.loads(second.stdout)["tracking_uri"])
    assert len(original) >= 2 + 3  # alice's, bob's, the sweep's parent and points
    assert restored == original
    _as(monkeypatch, "alice")  # accounts came back with their passwords
    assert MlflowClient(read_state(fresh).tracking_uri).get_run(users["alice"][1])
    stop_server(fresh)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_start_interrupted_half_way_leaves_nothing_running(base, sig):
    """issue 27: `budget server start` killed during start-up left PostgreSQL and MLflow up.
    SIGTERM: undone in-process; SIGKILL: by the guard process the start runs beside it."""
    state = base / f"interrupted-{sig.name}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "budget", "server", "start", "--dir",
                             str(state), "--port", str(free_port())], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while True:  # MLflow spawned (its pid recorded), not yet answering
        info = read_state(state)
        if info is not None and info.mlflow_pid:
            break
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    deadline = time.monotonic() + 60  # the guard needs a moment after a SIGKILL
    while running(info.mlflow_pid) and time.monotonic() < deadline:
        time.sleep(0.3)
    pg_pid = int((state / "pgdata" / "postmaster.pid").read_text().split()[0]) \
        if (state / "pgdata" / "postmaster.pid").exists() else None
    assert not running(info.mlflow_pid)
    while pg_pid and running(pg_pid) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert pg_pid is None or not running(pg_pid)
    assert server_status(state).mlflow_pid is None and server_status(state).postgres_pid is None


def test_a_refused_sign_in_is_one_line_and_no_password_is_echoed(server, users, monkeypatch):
    """Before: `budget fit --experiment` on a basic-auth server without (or with wrong)
    credentials ended in MLflow's 401 traceback; with user:password@ in the URI, the
    unknown-experiment line printed the password."""
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    for uri in (server.tracking_uri, server.tracking_uri.replace("//", "//alice:wrong-one-123@")):
        result = _cli("fit", "--experiment", "ops-alice", "--tracking-uri", uri)
        assert result.exit_code == 2 and "refused the sign-in" in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and "wrong-one-123" not in result.stderr
    signed = server.tracking_uri.replace("//", f"//alice:{PASSWORDS['alice']}@")
    result = _cli("fit", "--experiment", "no-such-experiment", "--tracking-uri", signed)
    assert result.exit_code == 2 and "not found" in result.stderr
    assert PASSWORDS["alice"] not in result.stderr
