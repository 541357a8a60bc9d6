"""Process checks and stops for the team server's processes (Linux /proc, else signals)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

STOP_TIMEOUT_S = 20.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def proc_stat(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
    except (OSError, IndexError):
        return None


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its parent can reap it)."""
    fields = proc_stat(str(pid))
    if fields is None:
        return alive(pid) if not Path("/proc/self").exists() else False
    return fields[0] != "Z" and alive(pid)


def stop_group(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """The process group led by `pid` (the MLflow server, uvicorn and their workers): SIGTERM,
    then SIGKILL to what is left after `timeout` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        alive(pid)  # reap our own child
        if wait_gone(lambda: group_running(pid), wait):
            return


def wait_gone(still: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not still():
            return True
        time.sleep(0.2)
    return False


def group_running(pgid: int) -> bool:
    """Any non-zombie process of process group `pgid` left (Linux /proc; else the leader)."""
    if not Path("/proc/self").exists():
        return alive(pgid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(entry.name)
            if fields and fields[2] == str(pgid) and fields[0] != "Z":
                return True
    return False
