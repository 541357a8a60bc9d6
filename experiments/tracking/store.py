"""Store habits of the sweep: a pre-migrated empty store copied, one creator at a time, points
claimed so N workers share one sweep, heartbeats so a dead worker's point is re-done.

- `prime(uri)`: a new local sqlite store is a copy of an empty store migrated once per MLflow
  version and cached (`$XDG_CACHE_HOME/compute-budget/mlflow-<version>-empty.db`), instead of
  running every alembic migration again (0.6-6.5 s each here). The template's Default experiment
  is removed, so MLflow recreates it with the new store's own artifact root.
- `creation_lock(uri)`: an exclusive file lock beside the database held while the store and the
  experiment are created, so two sweeps started together do not race on the migrations.
- `claim(client, exp_id, config_hash, run_id)`: after creating its run, a worker looks for other
  live runs of the same point; the oldest (start time, then run id) keeps it, the others delete
  their run and move on. A FINISHED run always wins.
- Heartbeats: a running point's tag `budget.heartbeat` is refreshed at every metric flush; a
  RUNNING point whose heartbeat is older than `STALE_AFTER_S`, whose worker process on this
  machine is gone, or that names no worker belongs to a dead process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from experiments.errors import SweepError
from experiments.tracking.names import HEARTBEAT
from experiments.tracking.names import SWEEP_WORKER as WORKER
from experiments.training.hardware import cache_path

STALE_AFTER_S = 180.0  # a live point flushes metrics (and its heartbeat) at least every 10 s
PROBE_TIMEOUT_S = 3.0  # how long the write probe waits for another writer's lock
QUIET_LOGGERS = ("alembic", "sqlalchemy", "sqlalchemy.engine", "mlflow.store.db.utils")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (None for any other store)."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):]).expanduser()


def absolute_uri(uri: str) -> str:
    """A relative sqlite path resolved here, once: workers run in other folders, and MLflow
    caches a store per URI string, so a relative one would follow an earlier working folder."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).expanduser().resolve())
    return uri


def check_writable(uri: str) -> None:
    """A local store that cannot be written is one SweepError line before anything starts."""
    db = sqlite_path(uri)
    if db is None:
        return
    folder = db.parent if db.parent != Path("") else Path(".")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise SweepError(f"tracking store {uri!r} is not usable: {str(folder)!r} {what}")
    if db.exists() and not os.access(db, os.W_OK):
        raise SweepError(f"tracking store {uri!r} is not usable: it is read-only; give a "
                         f"writable --tracking-uri")
    if not os.access(folder, os.W_OK):
        raise SweepError(f"tracking store {uri!r} is not usable: folder {str(folder)!r} is not "
                         f"writable")


def probe_writable(uri: str) -> None:
    """A local store that would refuse the writes to come (read-only file or folder, another
    process holding its write lock) is one SweepError line now, before any work is done."""
    db = sqlite_path(uri)
    if db is None:
        return
    check_writable(uri)
    if not db.exists():
        return
    try:
        con = sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=PROBE_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise SweepError(f"tracking store {uri!r} is not writable: {exc}") from None
    try:
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
    except sqlite3.Error as exc:
        raise SweepError(f"tracking store {uri!r} is not writable: {exc}; nothing was "
                         "done") from None
    finally:
        con.close()


@contextlib.contextmanager
def quiet_migrations() -> Iterator[None]:
    """Alembic, SQLAlchemy and MLflow print hundreds of lines on a new, locked or broken store;
    the failure itself still surfaces (as one SweepError line)."""
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def creation_lock(uri: str) -> Iterator[None]:
    """An exclusive lock on `<db>.lock` (no-op for servers and non-POSIX systems)."""
    db = sqlite_path(uri)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    if db is None:
        yield
        return
    with open(db.with_name(db.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def template_path() -> Path:
    import mlflow

    return cache_path().with_name(f"mlflow-{mlflow.__version__}-empty.db")


def _make_template(path: Path) -> None:
    """Migrate an empty store once in a temporary folder and keep it without its Default row."""
    from mlflow.tracking import MlflowClient

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "empty.db"
        with quiet_migrations():
            MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
        with contextlib.closing(sqlite3.connect(db)) as con:
            con.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            con.execute("DELETE FROM experiments WHERE experiment_id = 0")
            con.commit()
        staged = path.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(db, staged)
        staged.replace(path)


def prime(uri: str) -> bool:
    """Copy the migrated empty template to a new local sqlite store; True if it did."""
    db = sqlite_path(uri)
    if db is None or db.exists():
        return False
    template = template_path()
    try:
        if not template.exists():
            _make_template(template)
        staged = db.with_name(f".{db.name}.{os.getpid()}.tmp")
        shutil.copyfile(template, staged)
        try:
            os.link(staged, db)  # fails if another process created the store meanwhile
        except FileExistsError:
            pass
        finally:
            staged.unlink(missing_ok=True)
    except (OSError, sqlite3.Error):
        return False  # MLflow migrates the store itself, as before
    return True


def worker_id(pid: int | None = None) -> str:
    """host:pid of this process, or of process `pid` on this host (a helper worker)."""
    return f"{os.uname().nodename}:{pid or os.getpid()}"


def heartbeat(client: Any, run_id: str) -> None:
    client.set_tag(run_id, HEARTBEAT, f"{time.time():.0f}")


def is_stale(run: Any, now: float | None = None) -> bool:
    """A RUNNING point whose heartbeat (or start, without one) is older than STALE_AFTER_S, or
    whose worker was a process of this machine that no longer exists."""
    now = time.time() if now is None else now
    worker = run.data.tags.get(WORKER, "")
    if not worker:  # not started by a worker of this code: nothing vouches that it is alive
        return True
    host, _, pid = worker.rpartition(":")
    if host == os.uname().nodename and pid.isdigit() and not _alive(int(pid)):
        return True
    beat = run.data.tags.get(HEARTBEAT)
    last = float(beat) if beat else run.info.start_time / 1000.0
    return now - last > STALE_AFTER_S


def _alive(pid: int) -> bool:
    """This process, or a live one (experiments.team.procs.alive: a zombie child counts as gone)."""
    from experiments.team.procs import alive

    return pid == os.getpid() or alive(pid)


def claim(client: Any, exp_id: str, config_hash: str, run_id: str) -> str | None:
    """None if this run keeps the point; else the run id of the one that has it (this run is
    then deleted). Live rivals: FINISHED, or RUNNING and not stale."""
    from experiments.tracking.writer import CONFIG_HASH, ROLE, find_runs

    rivals = [r for r in find_runs(client, exp_id, f"tags.`{ROLE}` = 'point' and "
                                   f"tags.`{CONFIG_HASH}` = '{config_hash}'")
              if r.info.run_id != run_id and (r.info.status == "FINISHED" or
                                              (r.info.status == "RUNNING" and not is_stale(r)))]
    if not rivals:
        return None
    mine = client.get_run(run_id)
    finished = [r for r in rivals if r.info.status == "FINISHED"]
    older = [r for r in rivals if (r.info.start_time, r.info.run_id) <
             (mine.info.start_time, mine.info.run_id)]
    winner = (finished or older or [None])[0]
    if winner is None:
        return None
    client.delete_run(run_id)
    return str(winner.info.run_id)


def open_sweep_store(tracking_uri: str | None, experiment: str) -> tuple[Any, str, str]:
    """`experiments.tracking.writer.open_store` (the Tracker, experiment id, URI), with the store
    checked writable first, primed from the template when new, created under the lock and
    without migration logs."""
    from experiments.tracking.writer import open_store, resolve_tracking_uri

    uri = absolute_uri(resolve_tracking_uri(tracking_uri))
    check_writable(uri)
    with creation_lock(uri), quiet_migrations():
        prime(uri)
        return open_store(uri, experiment)
