"""`budget server backup FILE` / `restore FILE`: the team's store in one archive.

The archive (a gzip tar, written 0600: it holds the password hashes) has `mlflow.dump` (pg_dump's
custom format of the `mlflow` database: runs, params, metrics, tags, experiments), `artifacts/`
(the server's local artifact folder) and `auth/` (basic-auth's user database and the admin and
CSRF secrets, when basic-auth is on), with `manifest.json` saying what it holds. pg_dump reads a
consistent snapshot while the server runs. `restore` loads it into a stopped server's folder (a
new one: initdb first) with pg_restore, then `budget server start` serves it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from experiments.errors import SweepError
from experiments.team.auth import ADMIN_PASSWORD_FILE, AUTH_DB, FLASK_SECRET_FILE
from experiments.team.postgres import (
    DB_NAME,
    DB_USER,
    LOOPBACK,
    PGDATA_DIR,
    configured_port,
    create_database,
    drop_database,
    init_postgres,
    pg_binary,
    postgres_pid,
    run_pg_client,
    start_postgres,
    stop_postgres,
)
from experiments.team.server import ARTIFACTS_DIR, free_port, read_state, server_status

DUMP, MANIFEST, AUTH_FOLDER = "mlflow.dump", "manifest.json", "auth"
AUTH_FILES = (AUTH_DB, ADMIN_PASSWORD_FILE, FLASK_SECRET_FILE)
FORMAT = 1


@dataclass(frozen=True)
class BackupInfo:
    """What a backup archive holds (or what a restore put back)."""

    archive: str
    state_dir: str
    database_bytes: int
    artifact_files: int
    auth: bool
    created: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def backup(state_dir: str | Path, archive: str | Path) -> BackupInfo:
    """pg_dump of the running server's database plus its artifact folder, into `archive`."""
    began = time.monotonic()
    state = Path(state_dir).expanduser().resolve()
    info = server_status(state)
    if info is None:
        raise SweepError(f"no team server was started in {state}; nothing to back up")
    if info.postgres_pid is None:
        raise SweepError(f"PostgreSQL of the server in {state} is not running; start it with "
                         f"budget server start --dir {state}")
    if not info.artifacts_destination.startswith("file:"):
        raise SweepError(f"the artifacts live at {info.artifacts_destination}, outside {state}; "
                         "back that store up with its own tools (this archive holds local ones)")
    target = Path(archive).expanduser().resolve()
    if not target.parent.is_dir():
        raise SweepError(f"backup FILE {str(archive)!r}: folder {target.parent} does not exist")
    artifacts = Path(info.artifacts_destination[len("file://"):])
    with tempfile.TemporaryDirectory(prefix="budget-backup-") as tmp:
        dump = Path(tmp) / DUMP
        run_pg_client(state, [pg_binary("pg_dump"), "-Fc", "-h", LOOPBACK, "-p",
                              str(info.postgres_port), "-U", DB_USER, "-d", DB_NAME,
                              "-f", str(dump)], "pg_dump")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        auth = [name for name in AUTH_FILES if (state / name).is_file()] if info.basic_auth else []
        files = [p for p in artifacts.rglob("*") if p.is_file()] if artifacts.is_dir() else []
        manifest = {"format": FORMAT, "created": created, "database": DB_NAME,
                    "artifact_files": len(files), "auth": auth}
        partial = target.with_name(f".{target.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
            tar.add(dump, DUMP)
            for path in files:
                tar.add(path, f"{ARTIFACTS_DIR}/{path.relative_to(artifacts).as_posix()}")
            for name in auth:
                tar.add(state / name, f"{AUTH_FOLDER}/{name}")
        partial.chmod(0o600)
        partial.replace(target)
        size = dump.stat().st_size
    return BackupInfo(str(target), str(state), size, len(files), bool(auth), created,
                      round(time.monotonic() - began, 1))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = len(data), 0o600, int(time.time())
    tar.addfile(member, io.BytesIO(data))


def restore(archive: str | Path, state_dir: str | Path) -> BackupInfo:
    """Load `archive` into the server folder `state_dir` (created, with a new cluster, when new;
    its MLflow must be stopped): the database replaced by the dump, the artifact folder and the
    auth files by the archive's. PostgreSQL is left as it was found (stopped if it was)."""
    began = time.monotonic()
    state = Path(state_dir).expanduser().resolve()
    running = server_status(state)
    if running is not None and running.mlflow_pid is not None:
        raise SweepError(f"the MLflow server in {state} is running; stop it first (budget server "
                         f"stop --dir {state}) so no run is written during the restore")
    source = Path(archive).expanduser()
    try:
        tar = tarfile.open(source, mode="r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise SweepError(f"restore FILE {str(archive)!r} is not a backup archive ({exc})") from None
    with tar, tempfile.TemporaryDirectory(prefix="budget-restore-") as tmp:
        try:
            manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
            tar.extractall(tmp, filter="data")
        except (KeyError, AttributeError, ValueError, tarfile.TarError) as exc:
            raise SweepError(f"restore FILE {str(archive)!r} is not a budget server backup "
                             f"({exc})") from None
        if manifest.get("format") != FORMAT:
            raise SweepError(f"restore FILE {str(archive)!r} has format "
                             f"{manifest.get('format')!r}; this version reads {FORMAT}")
        state.mkdir(parents=True, exist_ok=True)
        state.chmod(0o711 if os.geteuid() == 0 else 0o700)
        if not (state / PGDATA_DIR / "PG_VERSION").is_file():
            init_postgres(state, free_port())
        recorded = read_state(state)
        port = recorded.postgres_port if recorded else configured_port(state)
        was_running = postgres_pid(state) is not None
        if not was_running:
            start_postgres(state)
        try:
            drop_database(state, port)
            create_database(state, port)
            run_pg_client(state, [pg_binary("pg_restore"), "--no-owner", "-h", LOOPBACK, "-p",
                                  str(port), "-U", DB_USER, "-d", DB_NAME,
                                  str(Path(tmp) / DUMP)], "pg_restore")
        finally:
            if not was_running:
                stop_postgres(state)
        artifacts = state / ARTIFACTS_DIR
        shutil.rmtree(artifacts, ignore_errors=True)
        if (Path(tmp) / ARTIFACTS_DIR).is_dir():
            shutil.copytree(Path(tmp) / ARTIFACTS_DIR, artifacts)
        else:
            artifacts.mkdir()
        for name in manifest.get("auth", []):
            if name in AUTH_FILES:
                shutil.copyfile(Path(tmp) / AUTH_FOLDER / name, state / name)
                (state / name).chmod(0o600)
        files = sum(1 for p in artifacts.rglob("*") if p.is_file())
        size = (Path(tmp) / DUMP).stat().st_size
    return BackupInfo(str(source.resolve()), str(state), size, files,
                      bool(manifest.get("auth")), str(manifest.get("created", "")),
                      round(time.monotonic() - began, 1))
