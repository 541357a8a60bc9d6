"""`budget server start --supervise`: a watchdog in the foreground that checks the server every
few seconds (PostgreSQL by a query, MLflow by a REST call, artifacts by a listing) and starts what
is down, backing off (doubling to a ceiling) while restarts keep failing. Every restart and its
reason goes to `<dir>/supervise.log` and stderr. `budget server stop` (which records the server
as not wanted) ends it; so does SIGTERM or SIGINT, leaving the server as it is.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.errors import SweepError
from experiments.team.health import COMPONENT_NAMES
from experiments.team.server import ServerConfig, read_state, server_status, start_server

CHECK_INTERVAL_S = 5.0
MAX_BACKOFF_S = 120.0
SUPERVISE_LOG = "supervise.log"


def backoff(failures: int, interval: float = CHECK_INTERVAL_S,
            ceiling: float = MAX_BACKOFF_S) -> float:
    """Seconds until the next check after `failures` failed restarts in a row: the interval,
    doubled per failure, at most `ceiling`."""
    return min(ceiling, interval * 2.0 ** max(0, failures))


def supervise(cfg: ServerConfig, given: dict[str, Any], interval: float = CHECK_INTERVAL_S,
              say: Callable[[str], None] | None = None) -> None:
    """Start the server, then keep it up until it is stopped by request or signalled."""
    state = Path(cfg.state_dir).expanduser().resolve()
    stop = threading.Event()
    log = state / SUPERVISE_LOG

    def note(line: str) -> None:
        stamped = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}"
        with log.open("a", encoding="utf-8") as f:
            f.write(stamped + "\n")
        if say:
            say(stamped)

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    start_server(cfg, given)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    note(f"watching {state} every {interval:g} s")
    failures, wait = 0, interval
    try:
        while not stop.wait(wait):
            recorded = read_state(state)
            if recorded is None or not recorded.wanted:
                note("the server was stopped by request; the watchdog ends")
                return
            now = server_status(state)
            if now is None or now.healthy:
                failures, wait = 0, interval
                continue
            if not (read_state(state) or now).wanted:  # `stop` began while we checked
                continue
            why = "; ".join(f"{COMPONENT_NAMES[c]} down: {now.components[c]}" for c in now.down)
            note(f"{why}; starting what is down (attempt {failures + 1})")
            try:
                back = start_server(ServerConfig(state_dir=str(state), host=now.host,
                                                 port=now.port, workers=now.workers,
                                                 allowed_hosts=now.allowed_hosts,
                                                 basic_auth=now.basic_auth,
                                                 artifacts_destination=now.artifacts_destination),
                                    given={})
                note(f"healthy again after {back.startup_seconds or 0:.1f} s")
                failures, wait = 0, interval
            except SweepError as exc:
                failures += 1
                wait = backoff(failures, interval)
                note(f"restart failed: {exc}; next try in {wait:g} s")
        note("signalled; the watchdog ends and leaves the server as it is")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
