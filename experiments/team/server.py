"""The team tracking server: `mlflow server` on a PostgreSQL backend with proxied artifacts.

`start_server(ServerConfig(...))` creates (once) a PostgreSQL cluster in `<dir>/pgdata` with
initdb, listening on a loopback port only (no Unix socket), password-protected (scram-sha-256;
the generated password lives in `<dir>/pgpass`, mode 0600, handed to libpq as PGPASSFILE so it
is never on a command line or in a URI), starts it with pg_ctl, creates the `mlflow` database,
then starts `mlflow server --backend-store-uri postgresql+psycopg2://... --serve-artifacts
--artifacts-destination <dir>/artifacts` (clients upload artifacts over HTTP: no shared
filesystem) and waits until its REST API answers. It starts only the parts that are down, refuses
options that differ from a running server's, and stops what it started if it is interrupted on the
way. PIDs, ports, URIs and the options go to `<dir>/server.json`; `stop_server` stops MLflow (its
process group) and then PostgreSQL (pg_ctl), in that order. Every secret in `<dir>` is mode 0600.

The default `<dir>` is persistent: `$XDG_DATA_HOME/compute-budget/server` (as root, where
PostgreSQL runs as another user who cannot enter /root: /var/lib/compute-budget/server).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from experiments.errors import SweepError
from experiments.team.auth import (
    SECRET_FILES,
    admin_auth,
    write_auth_config,
)
from experiments.team.guard import Started, undo_on_failure
from experiments.team.health import (
    ARTIFACTS,
    MLFLOW,
    POSTGRES,
    check_artifacts,
    check_mlflow,
    check_postgres,
)
from experiments.team.postgres import (
    LOOPBACK,
    PGDATA_DIR,
    PGPASS_FILE,
    backend_uri,
    check_reachable,
    configured_port,
    create_database,
    init_postgres,
    postgres_pid,
    start_postgres,
    stop_postgres,
)
from experiments.team.procs import alive, stop_group

STATE_FILE, ARTIFACTS_DIR, MLFLOW_LOG = "server.json", "artifacts", "mlflow.log"
HEALTH_TIMEOUT_S = 120.0  # measured healthy in 9-13 s on 2 cores; CI machines are busier
RECONNECT_WAIT_S = 20.0  # a live MLflow whose PostgreSQL came back reconnects (pool_pre_ping)
NOT_CHECKED = "not checked"
ROOT_DATA_DIR = "/var/lib/compute-budget/server"
# the options a running server keeps; given again with another value, start refuses
OPTION_FLAGS = {"host": "--host", "port": "--port", "workers": "--workers",
                "allowed_hosts": "--allowed-hosts", "basic_auth": "--basic-auth",
                "artifacts_destination": "--artifacts-destination",
                "postgres_port": "--postgres-port"}


def default_state_dir() -> str:
    """A persistent per-user folder (XDG data home), never a temporary one; as root (PostgreSQL
    then runs as another user, who cannot enter /root) the system data folder."""
    if os.geteuid() == 0:
        return ROOT_DATA_DIR
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "compute-budget" / "server")


@dataclass(frozen=True)
class ServerConfig:
    """What `budget server start` was asked for."""

    state_dir: str = field(default_factory=default_state_dir)
    host: str = LOOPBACK  # where MLflow listens; PostgreSQL always listens on loopback only
    port: int = 5000
    postgres_port: int | None = None  # None: a free loopback port, kept in server.json
    allowed_hosts: str | None = None  # MLflow's --allowed-hosts (None: localhost + private IPs)
    artifacts_destination: str | None = None  # None: <state_dir>/artifacts
    workers: int = 1
    basic_auth: bool = False  # MLflow's basic-auth app; the admin password in <dir>/admin-password


@dataclass(frozen=True)
class ServerInfo:
    """A team server's state: where it answers, what it stores, its process ids, and for each
    part (postgres, mlflow, artifacts) "ok" or why it is down."""

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
    workers: int = 1
    wanted: bool = True  # False after `stop`: a watchdog then leaves it down
    components: dict[str, str] = field(default_factory=dict)

    @property
    def down(self) -> list[str]:
        return [name for name, state in self.components.items()
                if state != "ok" and not state.startswith(NOT_CHECKED)]

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


def _client_url(host: str, port: int) -> str:
    return f"http://{LOOPBACK if host in ('0.0.0.0', '::') else host}:{port}"


def _write_state(state: Path, info: ServerInfo) -> None:
    (state / STATE_FILE).write_text(json.dumps(info.to_dict(), indent=2) + "\n", encoding="utf-8")


def read_state(state_dir: str | Path) -> ServerInfo | None:
    try:
        data = json.loads((Path(state_dir) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    known = {f.name for f in fields(ServerInfo)}
    return ServerInfo(**{k: v for k, v in data.items() if k in known})


def config_for(state_dir: str | Path, given: dict[str, Any]) -> ServerConfig:
    """The options given on the command line over those recorded in `state_dir` (else the
    defaults): a plain `start` restarts the server as it was."""
    state = Path(state_dir).expanduser().resolve()
    previous = read_state(state)
    base = ServerConfig(state_dir=str(state))
    if previous is not None:
        default_artifacts = (state / ARTIFACTS_DIR).as_uri()
        base = replace(base, host=previous.host, port=previous.port, workers=previous.workers,
                       allowed_hosts=previous.allowed_hosts, basic_auth=previous.basic_auth,
                       artifacts_destination=None if previous.artifacts_destination
                       == default_artifacts else previous.artifacts_destination)
    return replace(base, **given)


def differing(state: Path, given: dict[str, Any], running: ServerInfo) -> list[str]:
    """The options given that differ from the running server's, as 'flag value (running: x)':
    every option while MLflow runs, and --postgres-port once the cluster exists."""
    now = {"host": running.host, "port": running.port, "workers": running.workers,
           "allowed_hosts": running.allowed_hosts, "basic_auth": running.basic_auth,
           "artifacts_destination": running.artifacts_destination,
           "postgres_port": running.postgres_port}
    out = []
    for name, value in given.items():
        if name not in OPTION_FLAGS or (name == "postgres_port" and value is None):
            continue
        if name != "postgres_port" and running.mlflow_pid is None:
            continue  # MLflow is down: it starts again with these options
        if name == "artifacts_destination" and value is None:
            value = (state / ARTIFACTS_DIR).as_uri()
        if value != now[name]:
            def show(v: Any) -> Any:
                return ("on" if v else "off") if name == "basic_auth" else v
            out.append(f"{OPTION_FLAGS[name]} {show(value)} (running: {show(now[name])})")
    return out


def start_server(cfg: ServerConfig, given: dict[str, Any] | None = None) -> ServerInfo:
    """Start what is down of PostgreSQL (initdb on first use) and the MLflow server on it; wait
    until every part answers. `given`: the options asked for explicitly (default: all of cfg);
    one that differs from a running server's is refused, in one line naming them."""
    began = time.monotonic()
    state = Path(cfg.state_dir).expanduser().resolve()
    given = {f.name: getattr(cfg, f.name) for f in fields(cfg)} if given is None else given
    running = server_status(state)
    if running is not None:
        changed = differing(state, given, running)
        if changed:
            raise SweepError(f"a server already runs in {state} with other options: "
                             f"{', '.join(changed)}; stop it first (budget server stop --dir "
                             f"{state}) or start without them")
    if running is not None and running.healthy:
        return _record(state, replace(running, wanted=True))
    with undo_on_failure(state) as started:
        return _bring_up(cfg, state, running, began, started)


def _bring_up(cfg: ServerConfig, state: Path, running: ServerInfo | None, began: float,
              started: Started) -> ServerInfo:
    mlflow_alive = running is not None and running.mlflow_pid is not None
    if not mlflow_alive and (not 1 <= cfg.port <= 65535 or not _port_free(cfg.host, cfg.port)):
        raise SweepError(f"--port {cfg.port} is not free on {cfg.host}; choose another port")
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o711 if os.geteuid() == 0 else 0o700)  # as root, PostgreSQL's user walks in
    check_reachable(state)
    if not (state / PGDATA_DIR / "PG_VERSION").is_file():
        pg_port = cfg.postgres_port or free_port()
        init_postgres(state, pg_port)
    else:  # an existing cluster keeps the port its config and pgpass were written for
        pg_port = running.postgres_port if running else configured_port(state)
    if postgres_pid(state) is None:
        started.add(POSTGRES)
        start_postgres(state)
    create_database(state, pg_port)
    artifacts = cfg.artifacts_destination or (state / ARTIFACTS_DIR).as_uri()
    if artifacts.startswith("file:"):
        Path(artifacts[len("file://"):]).mkdir(parents=True, exist_ok=True)
    url = _client_url(cfg.host, cfg.port)
    pid = running.mlflow_pid if running and mlflow_alive else None
    if pid is not None and not _wait_api(state, url, cfg.basic_auth, RECONNECT_WAIT_S, None):
        stop_group(pid)  # alive but not answering with its store back: restart it
        pid = None
    proc = None
    if pid is None:
        started.add(MLFLOW)
        proc = _spawn_mlflow(cfg, state, pg_port, artifacts)
        pid = proc.pid
    info = ServerInfo(str(state), url, backend_uri(pg_port), artifacts, cfg.host, cfg.port,
                      pg_port, pid, postgres_pid(state), False, cfg.allowed_hosts,
                      basic_auth=cfg.basic_auth, workers=cfg.workers)
    _write_state(state, info)
    if not _wait_api(state, url, cfg.basic_auth, HEALTH_TIMEOUT_S, proc):
        raise SweepError(f"the MLflow server did not answer on {url} within "
                         f"{HEALTH_TIMEOUT_S:.0f} s (log: {state / MLFLOW_LOG})")
    _lock_secrets(state)
    return _record(state, replace(server_status(state) or info,
                                  startup_seconds=round(time.monotonic() - began, 1)))


def _record(state: Path, info: ServerInfo) -> ServerInfo:
    _write_state(state, info)
    return info


def _wait_api(state: Path, url: str, basic_auth: bool, timeout: float,
              proc: subprocess.Popen[bytes] | None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = _log_error(state / MLFLOW_LOG) or f"exit code {proc.returncode}"
            raise SweepError(f"the MLflow server did not start: {tail} (log: {state / MLFLOW_LOG})")
        if check_mlflow(url, admin_auth(state) if basic_auth else None) is None:
            return True
        time.sleep(0.5)
    return False


def _lock_secrets(state: Path) -> None:
    """Every secret the server keeps in its folder, 0600 (the auth db MLflow may have made)."""
    for name in SECRET_FILES:
        if (state / name).exists():
            (state / name).chmod(0o600)


def _log_error(log: Path) -> str:
    """The last line of the log naming an error (else its last line)."""
    lines = log.read_text(errors="replace").strip().splitlines()
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return (errors or lines or [""])[-1].strip()


def _spawn_mlflow(cfg: ServerConfig, state: Path, pg_port: int,
                  artifacts: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PGPASSFILE": str(state / PGPASS_FILE)}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(name, None)
    # MLflow 3's job runner (GenAI scorers, trace roll-ups) starts eight more Python processes
    # beside the server; training runs never use it
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if cfg.basic_auth:  # by environment, never on a command line
        env.update(write_auth_config(state))
    fd = os.open(state / MLFLOW_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:  # its own session: it outlives this command and is stopped as one process group;
        # umask 077: the files it makes (auth db, artifacts, logs) are its own
        return subprocess.Popen(mlflow_command(cfg, pg_port, artifacts), stdout=fd,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=state, start_new_session=True, umask=0o077)
    finally:
        os.close(fd)


def server_status(state_dir: str | Path) -> ServerInfo | None:
    """The recorded server with each part checked now (PostgreSQL by a query, MLflow by a REST
    call, the artifact store by a listing through the server); None if none was started here."""
    state = Path(state_dir).expanduser().resolve()
    info = read_state(state)
    if info is None:
        return None
    mlflow_pid = info.mlflow_pid if info.mlflow_pid and alive(info.mlflow_pid) else None
    pg_pid = postgres_pid(state)
    auth = admin_auth(state) if info.basic_auth else None
    pg = check_postgres(state, info.postgres_port) if pg_pid else "not running"
    api = check_mlflow(info.tracking_uri, auth) if mlflow_pid else "not running"
    store = (check_artifacts(info.tracking_uri, auth, info.artifacts_destination)
             if api is None else f"{NOT_CHECKED} (the MLflow API is down)")
    components = {POSTGRES: pg or "ok", MLFLOW: api or "ok", ARTIFACTS: store or "ok"}
    return replace(info, mlflow_pid=mlflow_pid, postgres_pid=pg_pid, components=components,
                   healthy=all(v == "ok" for v in components.values()))


def stop_server(state_dir: str | Path) -> ServerInfo | None:
    """Stop MLflow (SIGTERM to its process group, SIGKILL after STOP_TIMEOUT_S), then PostgreSQL
    (pg_ctl stop -m fast); None if no server was ever started here."""
    state = Path(state_dir).expanduser().resolve()
    info = read_state(state)
    if info is None:
        return None
    _write_state(state, replace(info, wanted=False))  # a watchdog now leaves it down
    if info.mlflow_pid and alive(info.mlflow_pid):
        stop_group(info.mlflow_pid)
    stop_postgres(state)
    stopped = replace(info, mlflow_pid=None, postgres_pid=None, healthy=False, wanted=False,
                      components={})
    _write_state(state, stopped)
    return stopped
