"""A Ray head brought up as documented (`budget server ray-head`) on 127.0.0.1 with token auth:
every port it opens is one it was given, each binds the given address except the ones Ray 2.60
binds wider (named in experiments.team.ray_head and dropped by deploy/ray-head.nft), the token
file is 0600, a driver with the token joins and runs a task, one with another token is refused.
The head's processes are found by their session folder and stopped by PID (never `ray stop`,
which would stop every Ray on the machine)."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
from click.testing import CliRunner  # noqa: E402

from budget.cli import main  # noqa: E402
from experiments.team.ray_head import (  # noqa: E402
    BINDS_EVERY_INTERFACE,
    BINDS_HOST_ADDRESS,
    RayPorts,
)

pytestmark = pytest.mark.slow
CONNECT = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
           "print(ray.get(ray.remote(lambda: 41 + 1).remote()))")


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _pids(marker):
    """Processes whose command line names `marker` (the session folder), and their children."""
    def ppid(pid):
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None

    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(int(pid))
        except OSError:
            pass
    grew = True
    while grew:
        grew = False
        for pid in filter(str.isdigit, os.listdir("/proc")):
            if ppid(pid) in found and int(pid) not in found:
                found.add(int(pid))
                grew = True
    return found


def _listening(pids):
    """(address, port) of every TCP socket those processes listen on (/proc/net/tcp, tcp6)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            pass
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A" or f[9] not in inodes:  # 0A: LISTEN
                continue
            addr, port = f[1].split(":")
            if table.endswith("6"):
                ip = "::" if set(addr) == {"0"} else socket.inet_ntop(
                    socket.AF_INET6, b"".join(bytes.fromhex(addr[i:i + 8])[::-1]
                                              for i in range(0, 32, 8)))
            else:
                ip = socket.inet_ntoa(bytes.fromhex(addr)[::-1])
            out.add((ip, int(port, 16)))
    return out


@pytest.fixture(scope="module")
def head():
    session = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths are bounded
    token = Path(session) / "secret" / "ray-token"
    free = _free_ports(9)
    names = ["gcs", "dashboard", "client_server", "object_manager", "node_manager",
             "metrics_export", "dashboard_agent_listen", "dashboard_agent_grpc", "runtime_env_agent"]
    low = max(free) + 1 if max(free) < 60000 else 20000
    spec = ",".join(f"{n}={p}" for n, p in zip(names, free)) + f",min_worker={low},max_worker={low + 20}"
    ports = RayPorts(**dict(zip(names, free)), min_worker=low, max_worker=low + 20)
    result = CliRunner().invoke(main, ["server", "ray-head", "--address", "127.0.0.1", "--ports",
                                       spec, "--token-file", str(token), "--num-cpus", "1",
                                       "--temp-dir", session, "--json"])
    try:
        assert result.exit_code == 0, result.output
        yield json.loads(result.stdout), ports, token, session
    finally:
        pids = _pids(session)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while _pids(session) and time.monotonic() < deadline:
                time.sleep(0.3)
            pids = _pids(session)
        subprocess.run(["rm", "-rf", session], check=False)


def test_every_port_is_one_given_and_binds_the_address_given(head):
    info, ports, _, session = head
    assert info["started"] and info["ports"] == ports.to_dict()
    assert "RAY_AUTH_MODE=token" in " ".join(info["exports"])
    listening = _listening(_pids(session))
    assert listening, "the head listens nowhere"
    by_port = {port: name for name, port in ports.fixed().items()}
    wide = {ports.fixed()[n] for n in BINDS_EVERY_INTERFACE + BINDS_HOST_ADDRESS}
    for ip, port in listening:
        named = by_port.get(port) or (ports.min_worker <= port <= ports.max_worker and "worker")
        assert named, f"Ray opened port {port} on {ip}, not one it was given"
        if port not in wide:
            assert ip == "127.0.0.1", f"{named} port {port} binds {ip}"
    assert ports.gcs in {port for _, port in listening}
    wider = sorted(n for n in BINDS_EVERY_INTERFACE if ("::", ports.fixed()[n]) in listening)
    assert wider == sorted(BINDS_EVERY_INTERFACE)  # still true of this Ray: keep the firewall


def test_token_file_is_0600_and_only_a_driver_with_the_token_joins(head, tmp_path):
    info, ports, token, _ = head
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    address = f"127.0.0.1:{ports.gcs}"
    good = subprocess.run([sys.executable, "-c", CONNECT, address], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "RAY_AUTH_MODE": "token",
                                                       "RAY_AUTH_TOKEN_PATH": str(token)})
    assert good.returncode == 0 and good.stdout.strip().endswith("42"), good.stderr[-800:]
    other = tmp_path / "other-token"
    other.write_text("0" * 64)
    other.chmod(0o600)
    bad = subprocess.run([sys.executable, "-c", CONNECT, address], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "RAY_AUTH_MODE": "token",
                                           "RAY_AUTH_TOKEN_PATH": str(other),
                                           "RAY_gcs_rpc_server_connect_timeout_s": "5"})
    assert bad.returncode != 0


def test_a_head_on_every_interface_is_refused_in_one_line():
    result = CliRunner().invoke(main, ["server", "ray-head", "--address", "0.0.0.0", "--dry-run"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "0.0.0.0" in result.stderr
