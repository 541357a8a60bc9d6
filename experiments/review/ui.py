"""Start the MLflow UI on the sweeps' store (`budget ui`), and never leave it running alone.

The server runs under a small guard process in a session of its own: `budget ui` holds the write
end of a pipe whose read end the guard watches, so when `budget ui` ends in any way (Ctrl-C,
SIGTERM, SIGHUP from a closed terminal, even SIGKILL) the guard sends SIGTERM, then SIGKILL, to
the whole process group: MLflow's uvicorn workers and huey consumers included. The landing URL
opens the experiment's runs table (`#/experiments/<id>/runs`), which MLflow 3 shows as the
model-training view for experiments tagged `mlflow.experimentKind = custom_model_development`,
on the points view (`points_view`): MLflow's table folds child runs under their parent row and
shows no metric column by default, so `budget ui` writes a shared view (the experiment tag
`mlflow.sharedViewState.budget-points`, what the UI's "Share view" writes) that filters to the
point runs, so they are rows of their own, sorted by final validation loss, with the loss and
size columns, and lands on it with `?viewStateShareKey=budget-points`.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Callable

from experiments.errors import SweepError
from experiments.tracking import names
from experiments.tracking.writer import artifact_root, resolve_tracking_uri

STARTUP_TIMEOUT_S = 120.0  # the MLflow server answers in 5-25 s (25 s on 2 busy cores)
PROGRESS_EVERY_S = 5.0  # a "still starting" line this often while MLflow boots
STOP_GRACE_S = 10.0  # SIGTERM, then SIGKILL after this long
LOOPBACK = ("127.0.0.1", "localhost", "::1")

# Runs as `python -c GUARD <fd> <cmd...>`, session leader of the server's process group.
GUARD = r"""
import os, select, signal, subprocess, sys, time
fd, cmd = int(sys.argv[1]), sys.argv[2:]
child = subprocess.Popen(cmd)
def down(*_):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try: os.killpg(0, signal.SIGTERM)
    except ProcessLookupError: pass
    end = time.time() + float(os.environ.get("BUDGET_UI_GRACE", "10"))
    while time.time() < end and child.poll() is None: time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(0, signal.SIGKILL)
for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT): signal.signal(s, down)
while True:
    ready, _, _ = select.select([fd], [], [], 0.5)
    if ready and not os.read(fd, 1): down()
    if child.poll() is not None:
        code = child.returncode
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try: os.killpg(0, signal.SIGTERM)
        except ProcessLookupError: pass
        sys.exit(code)
"""


@dataclass(frozen=True)
class UiServer:
    """A running MLflow UI: its URL, the page it opens on, the store and the process id."""

    url: str
    tracking_uri: str
    pid: int
    landing_url: str = ""
    experiment: str | None = None
    experiment_id: str | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_port(host: str, port: int) -> None:
    """Raise SweepError when `port` is out of range, taken on `host`, or `host` is not an address
    of this machine. SO_REUSEADDR as the server sets it: a port a previous UI left in TIME_WAIT
    is free."""
    if not 1 <= port <= 65535:
        raise SweepError(f"--port {port} must be between 1 and 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise SweepError(f"--host {host!r} is not a known host name or address") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SweepError(f"--port {port} is already in use on {host}; choose another "
                                 f"port") from None
            raise SweepError(f"--host {host!r} cannot be listened on here ({exc.strerror}); "
                             f"use 127.0.0.1 or an address of this machine") from None


def http_url(host: str, port: int) -> str:
    """The URL a browser opens for a server listening on `host`:`port`: a wildcard address is
    reached on the loopback of its family (0.0.0.0 -> 127.0.0.1, :: -> ::1), and an IPv6
    literal is written in brackets (RFC 3986 §3.2.2: http://[::1]:5000)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host.replace('%', '%25')}]"  # a zone id's % escaped (RFC 6874)
    return f"http://{host}:{port}"


def host_warnings(host: str) -> tuple[str, ...]:
    if host in LOOPBACK:
        return ()
    return ((f"--host {host} serves the UI beyond this machine: MLflow has no login, so "
             f"anyone who can reach this host and port can read and change the store"),)


def ui_command(tracking_uri: str, host: str, port: int) -> list[str]:
    """The `mlflow ui` command line for a store (local artifacts beside a sqlite file)."""
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri,
           "--host", host, "--port", str(port), "--workers", "1"]
    root = artifact_root(tracking_uri)
    if root:
        cmd += ["--default-artifact-root", root]
    return cmd


def check_store(uri: str) -> None:
    """A local sqlite store must exist: MLflow would silently serve a new empty one."""
    if uri.startswith(("http://", "https://")):
        raise SweepError(f"--tracking-uri {uri!r} is already a server; open it in a browser")
    if uri.startswith("sqlite:///"):
        db = os.path.expanduser(uri[len("sqlite:///"):])
        if not os.path.isfile(db):
            raise SweepError(f"no MLflow store at {db} (from {uri}); run 'budget sweep' there "
                             "first or pass --tracking-uri sqlite:///PATH/mlflow.db")


def points_view() -> dict[str, object]:
    """The runs-table view of a sweep's points, as MLflow 3.17's shared view state reads it
    (search facets `searchFilter`/`orderByKey`/`orderByAsc` and UI state `selectedColumns`,
    column keys written metrics.`name`). Filtering on the point role leaves the parents
    out, so the UI shows each point as a row instead of folded under its sweep's row."""
    sizes = ["flops_budget", "params", "tokens", names.LOSS_UNIT_PARAM]
    return {"searchFilter": f"tags.`{names.ROLE}` = '{names.ROLE_POINT}'",
            "orderByKey": f"metrics.`{names.FINAL_VAL_LOSS}`", "orderByAsc": True,
            "selectedColumns": [f"metrics.`{names.FINAL_VAL_LOSS}`",
                                *(f"params.`{p}`" for p in sizes)]}


def experiment_id(uri: str, experiment: str) -> str:
    """The id of `experiment` in the store, its points view written (`points_view`); an unknown
    name lists the ones there are."""
    from experiments.tracking.store import quiet_migrations
    from experiments.tracking.writer import Tracker

    with quiet_migrations():
        tracker = Tracker(uri)
        found = tracker.client.get_experiment_by_name(experiment)
        if found is None:
            known = sorted(e.name for e in tracker.client.search_experiments())
            raise SweepError(f"--experiment {experiment!r} is not in {uri}; it has: "
                             f"{', '.join(repr(n) for n in known) or 'no experiments'}")
        key, view = names.SHARED_VIEW + names.POINTS_VIEW, json.dumps(points_view())
        if found.tags.get(key) != view:
            tracker.set_experiment_tag(found.experiment_id, key, view)
    return str(found.experiment_id)


def landing_url(url: str, exp_id: str | None) -> str:
    """The experiment's runs table on its points view (MLflow 3 hash route), else the
    experiment list."""
    if not exp_id:
        return f"{url}/"
    return f"{url}/#/experiments/{exp_id}/runs?viewStateShareKey={names.POINTS_VIEW}"


def start_ui(tracking_uri: str | None = None, host: str = "127.0.0.1", port: int = 5000,
             experiment: str | None = None,
             say: Callable[[str], None] | None = None) -> tuple[UiServer, Any]:
    """Start the guarded `mlflow ui` and wait until /health answers, saying how it goes."""
    uri = resolve_tracking_uri(tracking_uri)
    check_store(uri)
    check_port(host, port)
    exp_id = experiment_id(uri, experiment) if experiment else None
    say = say or (lambda line: None)
    log = tempfile.TemporaryFile()  # noqa: SIM115  # the server's output, open while it runs
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", GUARD, str(read_end),
                             *ui_command(uri, host, port)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, pass_fds=(read_end,))
    os.close(read_end)
    proc.guard_fd = write_end  # type: ignore[attr-defined]  # closed by stop_ui or our exit
    url = http_url(host, port)
    started = time.monotonic()
    said = started
    say(f"starting the MLflow UI on {url} (store {uri}); MLflow takes 5-25 s to boot")
    try:
        while time.monotonic() - started < STARTUP_TIMEOUT_S:
            if proc.poll() is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")
                tail = " ".join(err.strip().splitlines()[-1:]) or f"exit code {proc.returncode}"
                raise SweepError(f"the MLflow UI did not start: {tail}")
            if _healthy(url):
                server = UiServer(url, uri, proc.pid, landing_url(url, exp_id), experiment,
                                  exp_id, host_warnings(host))
                return server, proc
            if time.monotonic() - said >= PROGRESS_EVERY_S:
                said = time.monotonic()
                say(f"  still starting ({said - started:.0f} s)")
            time.sleep(0.5)
    except BaseException:
        stop_ui(proc)
        raise
    stop_ui(proc)
    raise SweepError(f"the MLflow UI did not answer on {url} within {STARTUP_TIMEOUT_S:.0f} s")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def interrupts_as_keyboard() -> dict[int, Any]:
    """SIGTERM and SIGHUP (terminal closed) raise KeyboardInterrupt like Ctrl-C; returns the
    previous handlers for `restore`."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    return {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}


def restore(previous: dict[int, Any]) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)


def wait_ui(proc: Any) -> None:
    """Block until the server exits; Ctrl-C, SIGTERM or SIGHUP stop it and its children."""
    previous = interrupts_as_keyboard()
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        restore(previous)
        stop_ui(proc)


def stop_ui(proc: Any) -> None:
    """SIGTERM to the server's whole process group, SIGKILL after STOP_GRACE_S."""
    fd = getattr(proc, "guard_fd", None)
    if fd is not None:
        proc.guard_fd = None
        try:
            os.close(fd)  # the guard tears the group down on its own as well
        except OSError:
            pass
    for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(proc.pid):
            break
        time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
