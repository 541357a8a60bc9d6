"""The team tracking server: `mlflow server` on a PostgreSQL backend with proxied artifacts.

`start_server(ServerConfig(...))` creates (once) a PostgreSQL cluster in `<dir>/pgdata` with
initdb, listening on a loopback port only (no Unix socket), password-protected (scram-sha-256;
the generated password lives in `<dir>/pgpass`, mode 0600, handed to libpq as PGPASSFILE so it
is never on a command line or in a URI), starts it with pg_ctl, creates the `mlflow` database,
then starts `mlflow server --backend-store-uri postgresql+psycopg2://... --serve-artifacts
--artifacts-destination <dir>/artifacts` (clients upload artifacts over HTTP: no shared
filesystem) and waits for /health. PIDs, ports and URIs go to `<dir>/server.json`;
`stop_server` stops MLflow (its process group, by the PID it recorded) and then PostgreSQL
(pg_ctl, which signals the postmaster PID in its own pid file), in that order.

The PostgreSQL side (initdb as a non-root user, the pgpass file, the psycopg2 URI) lives in
`experiments.team.postgres`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from experiments.errors import SweepError
from experiments.team.postgres import (
    LOOPBACK,
    PGDATA_DIR,
    PGPASS_FILE,
    alive,
    backend_uri,
    check_reachable,
    configured_port,
    create_database,
    init_postgres,
    postgres_pid,
    proc_stat,
    start_postgres,
    stop_postgres,
)

STATE_FILE, ARTIFACTS_DIR, MLFLOW_LOG = "server.json", "artifacts", "mlflow.log"
AUTH_INI, AUTH_DB, ADMIN_PASSWORD_FILE = "basic_auth.ini", "basic_auth.db", "admin-password"
AUTH_CACHE_TTL_S = 60
FLASK_SECRET_FILE = "flask-secret"  # basic-auth's CSRF key, the same across restarts
ADMIN_USER = "admin"
HEALTH_TIMEOUT_S = 120.0  # measured healthy in 9-13 s on 2 cores; CI machines are busier
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ServerConfig:
    """What `budget server start` was asked for."""

    state_dir: str = "budget-server"
    host: str = LOOPBACK  # where MLflow listens; PostgreSQL always listens on loopback only
    port: int = 5000
    postgres_port: int | None = None  # None: a free loopback port, kept in server.json
    allowed_hosts: str | None = None  # MLflow's --allowed-hosts (None: localhost + private IPs)
    artifacts_destination: str | None = None  # None: <state_dir>/artifacts
    workers: int = 1
    basic_auth: bool = False  # MLflow's basic-auth app; the admin password in <dir>/admin-password


@dataclass(frozen=True)
class ServerInfo:
    """A team server's state: where it answers, what it stores, its process ids."""

    state_dir: str
    tracking_uri: str
    backend_store_uri: str  # no password: libpq reads it from PGPASSFILE
    artifacts_destination: str
    host: str
    port: int
    postgres_port: int
    mlflow_pid: int | None
    postgres_pid: int | None
    healthy: bool
    allowed_hosts: str | None = None
    startup_seconds: float | None = None
    basic_auth: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    """Nothing listens there; SO_REUSEADDR as uvicorn sets it, so the TIME_WAIT connections a
    server stopped a moment ago leaves behind do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def mlflow_command(cfg: ServerConfig, pg_port: int, artifacts: str) -> list[str]:
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri(pg_port),
           "--serve-artifacts", "--artifacts-destination", artifacts, "--host", cfg.host,
           "--port", str(cfg.port), "--workers", str(cfg.workers)]
    if cfg.allowed_hosts:
        cmd += ["--allowed-hosts", cfg.allowed_hosts]
    if cfg.basic_auth:
        cmd += ["--app-name", "basic-auth"]
    return cmd


def _secret(path: Path) -> str:
    """A random secret kept in `path` (mode 0600), made on first use."""
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(18) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def write_auth_config(state: Path) -> dict[str, str]:
    """MLflow's basic-auth config (users in a sqlite file beside it, READ for everyone else);
    the environment the server needs: the admin password and the CSRF key (made once, 0600)."""
    (state / AUTH_INI).write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{state / AUTH_DB}\nadmin_username = {ADMIN_USER}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # a PBKDF2 check per request made every logged batch slow; a changed password now
        # takes up to this long to reach the other workers
        f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_S}\n",
        encoding="utf-8")
    return {"MLFLOW_AUTH_CONFIG_PATH": str(state / AUTH_INI),
            "MLFLOW_AUTH_ADMIN_PASSWORD": _secret(state / ADMIN_PASSWORD_FILE),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": _secret(state / FLASK_SECRET_FILE)}


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _client_url(host: str, port: int) -> str:
    return f"http://{LOOPBACK if host in ('0.0.0.0', '::') else host}:{port}"


def _write_state(state: Path, info: ServerInfo) -> None:
    (state / STATE_FILE).write_text(json.dumps(info.to_dict(), indent=2) + "\n", encoding="utf-8")


def read_state(state_dir: str | Path) -> ServerInfo | None:
    try:
        data = json.loads((Path(state_dir) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return ServerInfo(**data)


def start_server(cfg: ServerConfig) -> ServerInfo:
    """Start PostgreSQL (initdb on first use) and the MLflow server on it; wait for /health."""
    began = time.monotonic()
    state = Path(cfg.state_dir).expanduser().resolve()
    running = server_status(state)
    if running is not None and running.healthy:
        return running
    if not 1 <= cfg.port <= 65535 or not _port_free(cfg.host, cfg.port):
        raise SweepError(f"--port {cfg.port} is not free on {cfg.host}; choose another port")
    state.mkdir(parents=True, exist_ok=True)
    check_reachable(state)
    previous = read_state(state)
    if not (state / PGDATA_DIR / "PG_VERSION").is_file():
        pg_port = cfg.postgres_port or free_port()
        init_postgres(state, pg_port)
    else:  # an existing cluster keeps the port its config and pgpass were written for
        pg_port = previous.postgres_port if previous else configured_port(state)
    if postgres_pid(state) is None:
        start_postgres(state)
    create_database(state, pg_port)
    artifacts = cfg.artifacts_destination or (state / ARTIFACTS_DIR).as_uri()
    proc = _spawn_mlflow(cfg, state, pg_port, artifacts)
    url = _client_url(cfg.host, cfg.port)
    info = ServerInfo(str(state), url, backend_uri(pg_port), artifacts, cfg.host, cfg.port,
                      pg_port, proc.pid, postgres_pid(state), False, cfg.allowed_hosts,
                      basic_auth=cfg.basic_auth)
    _write_state(state, info)
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop_server(state)
            tail = _log_error(state / MLFLOW_LOG) or f"exit code {proc.returncode}"
            raise SweepError(f"the MLflow server did not start: {tail} (log: {state / MLFLOW_LOG})")
        if healthy(url):
            done = ServerInfo(**{**info.to_dict(), "healthy": True,
                                 "startup_seconds": round(time.monotonic() - began, 1)})
            _write_state(state, done)
            return done
        time.sleep(0.5)
    stop_server(state)
    raise SweepError(f"the MLflow server did not answer on {url} within {HEALTH_TIMEOUT_S:.0f} s "
                     f"(log: {state / MLFLOW_LOG})")


def _log_error(log: Path) -> str:
    """The last line of the log naming an error (else its last line)."""
    lines = log.read_text(errors="replace").strip().splitlines()
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return (errors or lines or [""])[-1].strip()


def _spawn_mlflow(cfg: ServerConfig, state: Path, pg_port: int,
                  artifacts: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PGPASSFILE": str(state / PGPASS_FILE)}
    env.pop("MLFLOW_TRACKING_URI", None)
    # MLflow 3's job runner (GenAI scorers, trace roll-ups) starts eight more Python processes
    # beside the server; training runs never use it
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if cfg.basic_auth:  # by environment, never on a command line
        env.update(write_auth_config(state))
    log = (state / MLFLOW_LOG).open("ab")
    try:  # its own session: it outlives this command and is stopped as one process group
        return subprocess.Popen(mlflow_command(cfg, pg_port, artifacts), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=state, start_new_session=True)
    finally:
        log.close()


def server_status(state_dir: str | Path) -> ServerInfo | None:
    """The recorded server with its processes checked now; None if none was ever started here."""
    state = Path(state_dir).expanduser().resolve()
    info = read_state(state)
    if info is None:
        return None
    mlflow_pid = info.mlflow_pid if info.mlflow_pid and alive(info.mlflow_pid) else None
    ok = mlflow_pid is not None and healthy(info.tracking_uri)
    return ServerInfo(**{**info.to_dict(), "mlflow_pid": mlflow_pid,
                         "postgres_pid": postgres_pid(state), "healthy": ok})


def stop_server(state_dir: str | Path) -> ServerInfo | None:
    """Stop MLflow (SIGTERM to its process group, SIGKILL after STOP_TIMEOUT_S), then PostgreSQL
    (pg_ctl stop -m fast); None if no server was ever started here."""
    state = Path(state_dir).expanduser().resolve()
    info = read_state(state)
    if info is None:
        return None
    if info.mlflow_pid and alive(info.mlflow_pid):
        _stop_group(info.mlflow_pid)
    stop_postgres(state)
    stopped = ServerInfo(**{**info.to_dict(), "mlflow_pid": None, "postgres_pid": None,
                            "healthy": False})
    _write_state(state, stopped)
    return stopped


def _stop_group(pid: int) -> None:
    """The process group led by `pid` (the MLflow server, uvicorn and their workers): SIGTERM,
    then SIGKILL to what is left after STOP_TIMEOUT_S."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        alive(pid)  # reap our own child
        if _wait_gone(lambda: _grouprunning(pid), wait):
            return


def _wait_gone(running: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running():
            return True
        time.sleep(0.2)
    return False


def _grouprunning(pgid: int) -> bool:
    """Any non-zombie process of process group `pgid` left (Linux /proc; else the leader)."""
    if not Path("/proc/self").exists():
        return alive(pgid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(entry.name)
            if fields and fields[2] == str(pgid) and fields[0] != "Z":
                return True
    return False
