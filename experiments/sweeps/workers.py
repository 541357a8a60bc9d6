"""Points in parallel on one machine: `budget sweep --workers N` (local executor).

At the `cpu` preset's sizes (3k-90k parameters) one thread trains a model fastest (the autotuner
times 1 thread against all cores and 1 wins on every shape), so a 2-core machine left to one
sweep process idles a core. With N workers the sweep process (worker 0) starts N - 1 copies of
the same command (`--worker-index k`, cores / N threads each), and they share the store exactly
as independent workers do (experiments.tracking.store claims and heartbeats): each point is trained once,
by whoever claims it first, and the adaptive decisions (re-centring, edge extension) wait for
the points they need, so every worker walks the same schedule (experiments.sweeps.schedule).

Worker 0 relays each helper's progress lines to stderr prefixed `[worker k]`, waits for the
helpers before it closes the sweep's parent run, and stops them (SIGTERM: their point is marked
KILLED) when it is interrupted; on Linux a helper also gets SIGTERM when worker 0 dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Any

import click

STOP_WAIT_S = 30.0  # how long an interrupted worker 0 waits for its helpers to close their runs


def worker_count(requested: int | None, preset_workers: int, device_type: str, cores: int) -> int:
    """Workers to run: --workers, else the preset's (0: one per CPU core); 1 on a GPU."""
    if device_type != "cpu":
        return 1 if requested is None else requested
    n = preset_workers if requested is None else requested
    return max(1, cores if n == 0 else n)


def helper_argv(spec: Any, uri: str, index: int, workers: int, threads: int) -> list[str]:
    """The command line of helper `index` of `workers`: the same sweep, its store spelled out."""
    argv = [sys.executable, "-m", "budget", "sweep", "--preset", spec.preset,
            "--experiment", spec.experiment, "--tracking-uri", uri, "--device", spec.device,
            "--threads", str(threads), "--workers", str(workers), "--worker-index", str(index),
            "--seed", str(spec.seed), "--family", spec.family]
    if spec.budgets:
        argv += ["--budgets", ",".join(repr(float(b)) for b in spec.budgets)]
    for flag, value in (("--points", spec.points), ("--lr", spec.lr), ("--data", spec.data)):
        if value is not None:
            argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Helpers:
    """The helper processes of worker 0 and the threads relaying their stderr."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    relays: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, spec: Any, uri: str, workers: int, threads: int,
              progress: bool) -> Helpers:
        helpers = cls()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for index in range(1, workers):
            proc = subprocess.Popen(helper_argv(spec, uri, index, workers, threads), env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE,
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            helpers.procs.append(proc)
            assert proc.stderr is not None
            relay = threading.Thread(target=_relay, args=(proc.stderr, index, progress),
                                     daemon=True)
            relay.start()
            helpers.relays.append(relay)
        if progress and helpers.procs:
            click.echo(f"sweep: {workers} workers on this machine ({threads} thread(s) each; "
                       f"helper pids {', '.join(str(p.pid) for p in helpers.procs)})", err=True)
        return helpers

    def wait(self) -> list[int]:
        """Exit codes once every helper has ended (they end when the schedule is done)."""
        codes = [p.wait() for p in self.procs]
        for relay in self.relays:
            relay.join(timeout=5)
        return codes

    def stop(self) -> None:
        """SIGTERM to every helper still running (each marks its point KILLED), then wait."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _relay(stream: IO[bytes], index: int, progress: bool) -> None:
    """A helper's stderr, line by line, to ours with `[worker k]` in front (carriage-return
    redraws of a progress bar become lines)."""
    for raw in iter(stream.readline, b""):
        for line in raw.decode("utf-8", "replace").replace("\r", "\n").splitlines():
            if line.strip() and (progress or line.startswith(("Error", "WARNING"))):
                click.echo(f"[worker {index}] {line}", err=True)
    stream.close()
