"""Nothing left running by a start that did not finish: what `budget server start` brings up
(PostgreSQL, MLflow) is stopped again if the start fails, is interrupted (Ctrl-C, SIGTERM, SIGHUP:
in-process), or is killed outright (SIGKILL, out of memory: by a guard process).

The guard is a small process in its own session started with the start; the start tells it on a
pipe each part it brings up and "ok" when done. If the pipe closes without "ok" (the start died),
the guard stops those parts. `python -m experiments.team.guard DIR` is that process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

POSTGRES, MLFLOW, OK = "postgres", "mlflow", "ok"


class Started:
    """The parts this start brought up, mirrored to the guard process."""

    def __init__(self, state: Path) -> None:
        self.state, self.names = state, list[str]()
        self._guard: subprocess.Popen[str] | None = None

    def add(self, name: str) -> None:
        if self._guard is None:
            self._guard = subprocess.Popen(
                [sys.executable, "-m", "experiments.team.guard", str(self.state)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                text=True, start_new_session=True)
        self.names.append(name)
        self._say(name)

    def release(self) -> None:
        """The start ended on its own (done, or undone in-process): the guard has nothing to do."""
        if self._guard is not None:
            self._say(OK)
            pipe: IO[str] | None = self._guard.stdin
            if pipe is not None:
                pipe.close()
            self._guard.wait(timeout=30)

    def _say(self, word: str) -> None:
        assert self._guard is not None and self._guard.stdin is not None
        self._guard.stdin.write(word + "\n")
        self._guard.stdin.flush()


def undo(state: Path, names: list[str]) -> None:
    """Stop the parts in `names` (MLflow first, then PostgreSQL) and record them stopped."""
    from dataclasses import replace

    from experiments.team.postgres import stop_postgres
    from experiments.team.procs import alive, stop_group
    from experiments.team.server import _write_state, read_state

    info = read_state(state)
    if MLFLOW in names and info and info.mlflow_pid and alive(info.mlflow_pid):
        stop_group(info.mlflow_pid)
    if POSTGRES in names:
        stop_postgres(state)
    if info is not None:
        _write_state(state, replace(info, mlflow_pid=None if MLFLOW in names else info.mlflow_pid,
                                    healthy=False))


@contextmanager
def undo_on_failure(state: Path) -> Iterator[Started]:
    """SIGTERM or SIGHUP becomes KeyboardInterrupt while starting; on any failure the parts this
    start brought up are stopped again; if the process dies, the guard stops them."""
    started = Started(state)
    main = threading.current_thread() is threading.main_thread()
    previous = {}

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if main:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, interrupt)
    try:
        yield started
    except BaseException:
        undo(state, started.names)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        started.release()


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the start's terminal closing is not our end
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    names = []
    for line in sys.stdin:
        word = line.strip()
        if word == OK:
            return
        names.append(word)
    undo(Path(argv[0]), names)  # the pipe closed without "ok": the start died


if __name__ == "__main__":
    main(sys.argv[1:])
