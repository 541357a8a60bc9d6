"""Start the MLflow UI on the sweeps' store (`budget ui`)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass

from experiments.errors import SweepError
from experiments.tracking import artifact_root, resolve_tracking_uri

STARTUP_TIMEOUT_S = 120.0  # the MLflow server answers in 5-25 s (25 s on 2 busy cores)


@dataclass(frozen=True)
class UiServer:
    """A running MLflow UI: its URL, store and process id."""

    url: str
    tracking_uri: str
    pid: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_port(host: str, port: int) -> None:
    """Raise SweepError when `port` is out of range or already taken on `host`."""
    if not 1 <= port <= 65535:
        raise SweepError(f"--port {port} must be between 1 and 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            raise SweepError(f"--port {port} is already in use on {host}; choose another "
                             f"port") from None


def ui_command(tracking_uri: str, host: str, port: int) -> list[str]:
    """The `mlflow ui` command line for a store (local artifacts beside a sqlite file)."""
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri,
           "--host", host, "--port", str(port), "--workers", "1"]
    root = artifact_root(tracking_uri)
    if root:
        cmd += ["--default-artifact-root", root]
    return cmd


def start_ui(tracking_uri: str | None = None, host: str = "127.0.0.1",
             port: int = 5000) -> tuple[UiServer, "subprocess.Popen[bytes]"]:
    """Start `mlflow ui` and wait until its /health endpoint answers."""
    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        raise SweepError(f"--tracking-uri {uri!r} is already a server; open it in a browser")
    check_port(host, port)
    log = tempfile.TemporaryFile()  # the server's output, read back only if it dies
    proc = subprocess.Popen(ui_command(uri, host, port), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            tail = " ".join(err.strip().splitlines()[-1:]) or f"exit code {proc.returncode}"
            raise SweepError(f"the MLflow UI did not start: {tail}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return UiServer(url, uri, proc.pid), proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    stop_ui(proc)
    raise SweepError(f"the MLflow UI did not answer on {url} within {STARTUP_TIMEOUT_S:.0f} s")


def wait_ui(proc: "subprocess.Popen[bytes]") -> None:
    """Block until the server exits; Ctrl-C or SIGTERM stop it (never leave it orphaned)."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_ui(proc)


def stop_ui(proc: "subprocess.Popen[bytes]") -> None:
    """Terminate the server we started (and only it)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
