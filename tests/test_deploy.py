"""The shipped service files (deploy/) parse and say what the code does: systemd units read by
configparser (the unit-file syntax is INI-like; duplicate keys would be refused) with every
`budget` command line checked against the CLI's own options, the Ray head unit equal to what
`budget server ray-head` runs, the nftables set naming exactly the ports Ray binds wider, and the
compose file loaded with PyYAML (a strict check of the same facts when it is missing)."""

import configparser
import re
import shlex
from pathlib import Path

import click
import pytest

from budget.cli import main
from experiments.team.ray_head import BINDS_EVERY_INTERFACE, BINDS_HOST_ADDRESS, RayPorts, head_command

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.*"))


def _unit(path):
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def _budget_args(line):
    """The argv after `budget` in an ExecStart/ExecStop line (through `sh -c` when wrapped)."""
    argv = shlex.split(line.replace("%%", "%"))
    if argv[:2] == ["/bin/sh", "-c"]:
        argv = shlex.split(argv[2].replace("$(", "X").replace(")", ""))
        argv = argv[1:] if argv[0] == "exec" else argv
    assert argv[0].startswith("/") and argv[0].endswith("/budget"), argv[0]
    return argv[1:]


def _check_against_cli(args):
    """Every option given exists on that `budget` subcommand and takes a value when given one."""
    group = main.commands[args[0]]
    command = group.commands[args[1]] if isinstance(group, click.Group) else group
    options = {opt: p for p in command.params if isinstance(p, click.Option) for opt in p.opts}
    rest, positional = args[2:], 0
    while rest:
        word = rest.pop(0)
        if word.startswith("--"):
            assert word in options, f"{args[:2]}: no option {word}"
            if not options[word].is_flag:
                rest.pop(0)
        else:
            positional += 1
    assert positional == len([p for p in command.params if isinstance(p, click.Argument)])


def test_there_is_a_unit_set():
    assert {p.name for p in UNITS} == {"budget-server.service", "budget-server-backup.service",
                                       "budget-server-backup.timer", "budget-ray-head.service"}


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_unit_parses_and_runs_real_commands(path):
    unit = _unit(path)
    assert unit.get("Unit", "Description")
    if path.suffix == ".timer":
        assert unit.get("Timer", "OnCalendar") and (DEPLOY / "systemd" / unit.get("Timer", "Unit")).is_file()
        return
    service = unit["Service"]
    assert service.get("UMask") == "0077" and service.get("User") == "budget"
    for key in ("ExecStart", "ExecStop"):
        if key in service and "/budget " in service[key]:
            _check_against_cli(_budget_args(service[key]))


def test_server_unit_runs_the_watchdog_and_stops_the_same_folder():
    service = _unit(DEPLOY / "systemd" / "budget-server.service")["Service"]
    start, stop = _budget_args(service["ExecStart"]), _budget_args(service["ExecStop"])
    assert start[:2] == ["server", "start"] and "--supervise" in start
    assert start[start.index("--dir") + 1] == stop[stop.index("--dir") + 1]


def test_ray_unit_is_what_ray_head_runs_and_the_firewall_names_the_wide_ports():
    service = _unit(DEPLOY / "systemd" / "budget-ray-head.service")["Service"]
    argv = shlex.split(service["ExecStart"])
    address = argv[argv.index("--node-ip-address") + 1]
    def core(words):  # the client server and dashboard switches depend on installed extras
        drop = {"--ray-client-server-port", str(RayPorts().client_server), "--include-dashboard",
                "false"}
        return [w for w in words if w not in drop]

    assert argv[0].endswith("/ray") and argv[-1] == "--block"
    assert core(argv[1:-1]) == core(head_command(address, RayPorts())[1:])
    assert "--ray-client-server-port" in argv  # the unit's hosts install ray[client]
    assert "RAY_AUTH_MODE=token" in service["Environment"]
    nft = (DEPLOY / "ray-head.nft").read_text()
    elements = {int(x) for x in re.search(r"elements = \{([^}]*)\}", nft).group(1).split(",")}
    wide = {RayPorts().fixed()[n] for n in BINDS_EVERY_INTERFACE + BINDS_HOST_ADDRESS}
    assert elements == wide


def test_compose_publishes_only_on_loopback_and_keeps_data_in_volumes():
    text = (DEPLOY / "compose" / "compose.yaml").read_text()
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(text)
    services = doc["services"]
    assert set(services) == {"postgres", "mlflow"}
    assert "ports" not in services["postgres"]  # only MLflow reaches it, on the compose network
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        for volume in svc.get("volumes", []):
            assert volume.split(":")[0] in doc["volumes"], (name, volume)  # named, persistent
        for secret in svc.get("secrets", []):
            assert (secret if isinstance(secret, str) else secret["source"]) in doc["secrets"]
    command = " ".join(services["mlflow"]["command"])
    assert "--app-name basic-auth" in command and "--serve-artifacts" in command
    assert 'PASSWORD="$$(cat /run/secrets/mlflow_admin_password)"' in command  # not a literal
    assert (DEPLOY / "compose" / services["mlflow"]["build"]["dockerfile"]).is_file()
