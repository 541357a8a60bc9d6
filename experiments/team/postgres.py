"""The team server's PostgreSQL: a password-protected cluster on a loopback port, by initdb and
pg_ctl (`experiments.team.server` runs MLflow on it), and the process checks both use.

initdb refuses to run as root: as root, PostgreSQL runs as the `postgres` user (or `nobody`) via
runuser, with a data folder that user owns. The password is generated into `<dir>/pgpass` (mode
0600, libpq's PGPASSFILE format), never on a command line or in a URI. The URI names psycopg2
because SQLAlchemy 2.1 picks psycopg 3 for a bare `postgresql://`.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from experiments.errors import SweepError
from experiments.team.procs import running

PGPASS_FILE, PGDATA_DIR, POSTGRES_LOG = "pgpass", "pgdata", "postgres.log"
DB_USER, DB_NAME = "budget", "mlflow"
LOOPBACK = "127.0.0.1"
PG_START_TIMEOUT_S = 60
PG_STOP_TIMEOUT_S = 20.0
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian/Ubuntu keep initdb and pg_ctl off PATH
PG_USERS = ("postgres", "nobody")  # who runs PostgreSQL when we are root


def pg_binary(name: str) -> str:
    """initdb or pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")),
                        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    for folder in reversed(candidates):
        if (folder / name).is_file():
            return str(folder / name)
    raise SweepError(f"PostgreSQL's {name} is not installed; install it (Debian/Ubuntu: apt-get "
                     "install postgresql) or put its bin folder on PATH")


def pg_user() -> str | None:
    """The account PostgreSQL runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in PG_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise SweepError("running as root, and neither a 'postgres' nor a 'nobody' user exists for "
                     "PostgreSQL (initdb refuses root); create one or run as another user")


def _as_pg(cmd: list[str]) -> list[str]:
    user = pg_user()
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def _own(path: Path) -> None:
    user = pg_user()
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(cmd: list[str], what: str, timeout: float = 120) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SweepError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
        raise SweepError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def check_reachable(state: Path) -> None:
    """As root, the PostgreSQL user must be able to walk down to the state folder."""
    user = pg_user()
    if not user:
        return
    probe = ["runuser", "-u", user, "--", "test", "-x", str(state)]
    if subprocess.run(probe, check=False).returncode != 0:
        raise SweepError(f"PostgreSQL runs as '{user}' (initdb refuses root), and '{user}' cannot "
                         f"reach {state}; give --dir a folder it can reach, e.g. /srv/budget-server")


def init_postgres(state: Path, port: int) -> None:
    """initdb a password-protected cluster in state/pgdata listening on 127.0.0.1:port only."""
    pgdata, password = state / PGDATA_DIR, secrets.token_urlsafe(24)
    pgpass = state / PGPASS_FILE
    fd = os.open(pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"{LOOPBACK}:{port}:*:{DB_USER}:{password}\n")
    pgdata.mkdir(mode=0o700)
    _own(pgdata)
    pwfile = pgdata.parent / f".pw-{secrets.token_hex(4)}"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    _own(pwfile)
    try:
        _run(_as_pg([pg_binary("initdb"), "-D", str(pgdata), "-U", DB_USER, f"--pwfile={pwfile}",
                     "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions"]),
             "initdb")
    finally:
        pwfile.unlink(missing_ok=True)
    with (pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(f"\n# compute-budget team server: loopback TCP only, no Unix socket\n"
                   f"listen_addresses = '{LOOPBACK}'\nport = {port}\n"
                   f"unix_socket_directories = ''\n")


def start_postgres(state: Path) -> None:
    """pg_ctl start; a pid file left by a postmaster that died (killed: its PID is gone or a
    zombie nobody reaped, which PostgreSQL would take for a live server) is removed first."""
    log = state / PGDATA_DIR / POSTGRES_LOG
    lock = state / PGDATA_DIR / "postmaster.pid"
    try:
        stale = int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        stale = None
    if stale is not None and not running(stale):
        lock.unlink(missing_ok=True)
    _run(_as_pg([pg_binary("pg_ctl"), "-D", str(state / PGDATA_DIR), "-l", str(log), "-w",
                 "-t", str(PG_START_TIMEOUT_S), "start"]), "pg_ctl start",
         timeout=PG_START_TIMEOUT_S + 10)


def postgres_pid(state: Path) -> int | None:
    """The postmaster's PID from its own pid file, when that process is alive."""
    try:
        pid = int((state / PGDATA_DIR / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if running(pid) else None


def create_database(state: Path, port: int) -> None:
    import psycopg2

    os.environ.setdefault("PGPASSFILE", str(state / PGPASS_FILE))
    conn = psycopg2.connect(host=LOOPBACK, port=port, user=DB_USER, dbname="postgres",
                            passfile=str(state / PGPASS_FILE))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {DB_NAME}")
    finally:
        conn.close()


def drop_database(state: Path, port: int) -> None:
    """DROP the mlflow database (a restore replaces it whole; MLflow must be stopped)."""
    import psycopg2

    conn = psycopg2.connect(host=LOOPBACK, port=port, user=DB_USER, dbname="postgres",
                            passfile=str(state / PGPASS_FILE))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    finally:
        conn.close()


def run_pg_client(state: Path, cmd: list[str], what: str) -> str:
    """pg_dump or pg_restore over loopback TCP, the password read from the pgpass file by libpq."""
    env = {**os.environ, "PGPASSFILE": str(state / PGPASS_FILE), "PGCONNECT_TIMEOUT": "10"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False,
                              env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SweepError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-2:])
        raise SweepError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def backend_uri(port: int) -> str:
    """psycopg2 named: SQLAlchemy 2.1's bare postgresql:// means psycopg 3."""
    return f"postgresql+psycopg2://{DB_USER}@{LOOPBACK}:{port}/{DB_NAME}"


def configured_port(state: Path) -> int:
    for line in (state / PGPASS_FILE).read_text(encoding="utf-8").splitlines():
        return int(line.split(":")[1])
    raise SweepError(f"{state / PGPASS_FILE} is empty; remove {state} and start again")


def stop_postgres(state: Path) -> int | None:
    """pg_ctl stop -m fast, then wait until the postmaster process is gone (its pid file goes
    first); the postmaster's PID, None if it was not running."""
    postmaster = postgres_pid(state)
    if postmaster is None:
        return None
    _run(_as_pg([pg_binary("pg_ctl"), "-D", str(state / PGDATA_DIR), "-m", "fast", "-w",
                 "stop"]), "pg_ctl stop")
    deadline = time.monotonic() + PG_STOP_TIMEOUT_S
    while running(postmaster) and time.monotonic() < deadline:
        time.sleep(0.2)
    return postmaster
