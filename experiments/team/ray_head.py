"""Ray head bring-up as a platform engineer runs it: every port Ray opens is named and binds the
address given (loopback for one machine, the cluster network's address otherwise, never 0.0.0.0),
and token authentication is on with the token in a file only its owner reads (0600; Ray's own
`~/.ray/auth_token` is written with the default umask).

The ports (Ray 2.60 `ray start` options; defaults are ours where Ray's are random):
GCS `--port`, dashboard `--dashboard-port` (bound by `--dashboard-host`), Ray client server
`--ray-client-server-port`, object manager `--object-manager-port`, node manager
`--node-manager-port`, metrics export `--metrics-export-port`, dashboard agent
`--dashboard-agent-listen-port` and `--dashboard-agent-grpc-port`, runtime env agent
`--runtime-env-agent-port`, workers `--min-worker-port`..`--max-worker-port`.
"""

from __future__ import annotations

import os
import secrets
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from experiments.errors import SweepError


@dataclass(frozen=True)
class RayPorts:
    """Every port a Ray head opens, by its `ray start` option."""

    gcs: int = 6379
    dashboard: int = 8265
    client_server: int = 10001
    object_manager: int = 8076
    node_manager: int = 8077
    metrics_export: int = 8080
    dashboard_agent_listen: int = 52365
    dashboard_agent_grpc: int = 8078
    runtime_env_agent: int = 8079
    min_worker: int = 10002
    max_worker: int = 10100

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fixed(self) -> dict[str, int]:
        """The single ports (not the worker range)."""
        return {k: v for k, v in self.to_dict().items() if k not in ("min_worker", "max_worker")}


# Measured on Ray 2.60 (tests/test_team_ray.py): these bind every interface (`::`, dual stack)
# whatever --node-ip-address says, and the runtime env agent binds the host's primary address;
# deploy/ray-head.nft drops them from anywhere but the cluster network and loopback
BINDS_EVERY_INTERFACE = ("gcs", "object_manager", "node_manager")
BINDS_HOST_ADDRESS = ("runtime_env_agent",)

OPTION = {"gcs": "--port", "dashboard": "--dashboard-port",
          "client_server": "--ray-client-server-port", "object_manager": "--object-manager-port",
          "node_manager": "--node-manager-port", "metrics_export": "--metrics-export-port",
          "dashboard_agent_listen": "--dashboard-agent-listen-port",
          "dashboard_agent_grpc": "--dashboard-agent-grpc-port",
          "runtime_env_agent": "--runtime-env-agent-port", "min_worker": "--min-worker-port",
          "max_worker": "--max-worker-port"}


def has_client() -> bool:
    """ray[client] installed (grpcio): the Ray client server can start."""
    import importlib.util

    return importlib.util.find_spec("grpc") is not None


def has_dashboard() -> bool:
    """ray[default] installed: the dashboard (and its job API, `ray job submit`) can start."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("aiohttp", "aiohttp_cors", "opencensus", "prometheus_client"))


def head_command(address: str, ports: RayPorts, num_cpus: int | None = None,
                 temp_dir: str | None = None) -> list[str]:
    """`ray start --head` with every port fixed and bound to `address`."""
    if address in ("0.0.0.0", "::", ""):
        raise SweepError(f"--address {address!r} binds every interface; give the address of the "
                         "cluster network (or 127.0.0.1 for one machine)")
    cmd = ["ray", "start", "--head", "--node-ip-address", address, "--dashboard-host", address,
           "--disable-usage-stats"]
    for name, value in ports.to_dict().items():
        if name == "client_server" and not has_client():
            continue  # the client server needs ray[client]; without the option it is not started
        cmd += [OPTION[name], str(value)]
    if not has_dashboard():
        cmd += ["--include-dashboard", "false"]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    if temp_dir:
        cmd += ["--temp-dir", temp_dir]
    return cmd


def write_token(path: str | Path) -> Path:
    """A random token in `path` (created 0600, its folder 0700 when new); kept if it exists
    with mode 0600, refused if others could read it."""
    token = Path(path).expanduser().resolve()
    if token.exists():
        mode = token.stat().st_mode & 0o777
        if mode & 0o077:
            raise SweepError(f"--token-file {token} is mode {mode:04o}; others could read it: "
                             f"chmod 600 {token}")
        return token
    token.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secrets.token_hex(32))
    return token


def head_env(token: Path) -> dict[str, str]:
    """What `ray start` and every driver and worker joining need: token mode, the token file."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def driver_lines(address: str, ports: RayPorts, token: Path) -> list[str]:
    """The exports a researcher's shell needs to send sweeps to this head."""
    env = {"RAY_ADDRESS": f"{address}:{ports.gcs}", **head_env(token)}
    return [f"export {k}={shlex.quote(v)}" for k, v in env.items()]


@dataclass(frozen=True)
class RayHead:
    """A Ray head started (or, dry run, planned): its address, ports, token file, command."""

    address: str
    ports: RayPorts
    token_file: str
    command: list[str]
    exports: list[str]
    started: bool

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ports": self.ports.to_dict(), "command": shlex.join(self.command)}


def parse_ports(text: str | None) -> RayPorts:
    """`gcs=6379,dashboard=8265,...` over the defaults; each name one of RayPorts' fields."""
    if not text:
        return RayPorts()
    values: dict[str, int] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if name not in OPTION or not value.strip().isdigit() or not 1 <= int(value) <= 65535:
            raise SweepError(f"--ports item {item!r} is not NAME=PORT with NAME one of "
                             f"{', '.join(OPTION)} and PORT in 1-65535")
        values[name] = int(value)
    ports = RayPorts(**values)
    if ports.min_worker > ports.max_worker:
        raise SweepError(f"--ports min_worker {ports.min_worker} is above max_worker "
                         f"{ports.max_worker}")
    return ports


def start_head(address: str, ports: RayPorts, token_file: str | Path, num_cpus: int | None = None,
               temp_dir: str | None = None, dry_run: bool = False) -> RayHead:
    """`ray start --head` bound to `address` with token auth (the token file made 0600)."""
    import subprocess

    cmd = head_command(address, ports, num_cpus, temp_dir)
    token = Path(token_file).expanduser().resolve()
    if not dry_run:
        token = write_token(token)
        env = {**os.environ, **head_env(token)}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SweepError(f"ray start failed: {exc}") from None
        if done.returncode != 0:
            tail = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
            raise SweepError(f"ray start failed (exit {done.returncode}): "
                             f"{(tail or ['no output'])[-1].strip()}")
    return RayHead(address, ports, str(token), cmd, driver_lines(address, ports, token),
                   not dry_run)
