"""`budget server start|stop|status|backup|restore|user add`: the team's MLflow server on
PostgreSQL (needs the [team] extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from budget.cli.common import POSITIVE_INT, emit, json_option, require_extra

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
TEMP_ROOTS = ("/tmp", "/var/tmp", "/dev/shm")
START_OPTIONS = ("host", "port", "postgres_port", "allowed_hosts", "artifacts_destination",
                 "workers", "basic_auth")


def _default_dir() -> str:
    from experiments.team.server import default_state_dir

    return default_state_dir()


dir_option = click.option(
    "--dir", "state_dir", default=None, type=click.Path(file_okay=False),
    help="Folder holding the PostgreSQL cluster, the artifacts, the logs and server.json "
         "[default: $XDG_DATA_HOME/compute-budget/server, as root /var/lib/compute-budget/server].")


@click.group(name="server")
def command() -> None:
    """Run the team's tracking server: `mlflow server` on PostgreSQL with proxied artifacts.

    Point sweeps, fits and reports at it with --tracking-uri (or MLFLOW_TRACKING_URI) set to
    the URL `start` prints. It listens on 127.0.0.1 unless --host says otherwise.

    Example: budget server start --dir /srv/budget-server --port 5000
    """


@command.command(name="start")
@dir_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address MLflow listens on (0.0.0.0: every interface; see docs/guide/team.md).")
@click.option("--port", type=POSITIVE_INT, default=5000, show_default=True)
@click.option("--postgres-port", type=POSITIVE_INT,
              help="Loopback port of PostgreSQL on first start (default: a free one).")
@click.option("--allowed-hosts", metavar="HOST,HOST,...",
              help="MLflow's allowed Host headers; replaces its default (localhost and private "
                   "addresses). Give the name clients use when serving beyond them.")
@click.option("--artifacts-destination", metavar="URI",
              help="Where the server stores artifacts (default: DIR/artifacts; any MLflow "
                   "artifact URI, e.g. s3://bucket/path with boto3 installed).")
@click.option("--workers", type=POSITIVE_INT, default=1, show_default=True,
              help="MLflow server worker processes.")
@click.option("--basic-auth", is_flag=True,
              help="MLflow's basic-auth app: sign-in required, READ by default; user 'admin' "
                   "with the password in DIR/admin-password; researchers get accounts with "
                   "'budget server user add'.")
@click.option("--supervise", is_flag=True,
              help="Stay in the foreground as a watchdog: start what goes down, with backoff, "
                   "logging why to DIR/supervise.log (ends on 'budget server stop' or SIGTERM).")
@json_option
@click.pass_context
def start(ctx: click.Context, state_dir: str | None, supervise: bool, as_json: bool,
          **options: Any) -> None:
    """Start what is down of PostgreSQL (created on first start) and the MLflow server; wait
    until each answers. Options not given keep the values the server in DIR last ran with;
    options that differ from a running server's are refused.

    Example: budget server start --dir /srv/budget-server --port 5000
    """
    require_extra("team", "mlflow", "psycopg2")
    from experiments.team.server import config_for, start_server

    given = {name: options[name] for name in START_OPTIONS
             if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}
    state = state_dir or _default_dir()
    cfg = config_for(state, given)
    if cfg.basic_auth:
        require_extra("team", "flask_wtf")  # mlflow[auth]
    if cfg.host not in LOOPBACK_HOSTS and not cfg.basic_auth:
        click.echo(f"Warning: --host {cfg.host} serves the tracking server beyond this machine; "
                   "anyone who reaches it can read and write runs unless basic-auth or a proxy "
                   "guards it (docs/guide/team.md, security)", err=True)
    _warn_if_temporary(cfg.state_dir)
    if supervise:
        from experiments.team.supervise import supervise as watch

        watch(cfg, given, say=lambda line: click.echo(line, err=True))
        return
    emit(start_server(cfg, given), as_json, render)


def _warn_if_temporary(state_dir: str) -> None:
    path = os.path.realpath(state_dir)
    if any(path == root or path.startswith(root + "/") for root in TEMP_ROOTS):
        click.echo(f"Warning: --dir {state_dir} is a temporary folder that many systems wipe on "
                   "reboot; keep the team's store in a persistent one (the default) and back it "
                   "up (budget server backup)", err=True)


@command.command(name="stop")
@dir_option
@json_option
def stop(state_dir: str | None, as_json: bool) -> None:
    """Stop the MLflow server, then PostgreSQL, by the process ids they recorded.

    Example: budget server stop --dir /srv/budget-server
    """
    from experiments.team.server import stop_server

    state = state_dir or _default_dir()
    emit(_known(stop_server(state), state), as_json, render)


@command.command(name="status")
@dir_option
@json_option
def status(state_dir: str | None, as_json: bool) -> None:
    """Check each part now: PostgreSQL by a query, the MLflow API by a request, the artifact
    store by a listing; name the parts that are down (exit 1 when any is).

    Example: budget server status --dir /srv/budget-server --json
    """
    require_extra("team", "mlflow", "psycopg2")
    from experiments.team.server import server_status

    state = state_dir or _default_dir()
    info = _known(server_status(state), state)
    emit(info, as_json, render)
    if not info.healthy:
        raise SystemExit(1)


@command.command(name="backup")
@click.argument("archive", type=click.Path(dir_okay=False))
@dir_option
@json_option
def backup_cmd(archive: str, state_dir: str | None, as_json: bool) -> None:
    """Write the server's database (pg_dump), artifact folder and accounts into ARCHIVE (0600).

    Example: budget server backup /srv/backups/budget-2026-12-05.tar.gz --dir /srv/budget-server
    """
    require_extra("team", "mlflow", "psycopg2")
    from experiments.team.backup import backup

    emit(backup(state_dir or _default_dir(), archive), as_json, _render_backup("backed up"))


@command.command(name="restore")
@click.argument("archive", type=click.Path(dir_okay=False))
@dir_option
@json_option
def restore_cmd(archive: str, state_dir: str | None, as_json: bool) -> None:
    """Load ARCHIVE into DIR (a new folder, or one whose server is stopped); then start it.

    Example: budget server restore /srv/backups/budget-2026-12-05.tar.gz --dir /srv/budget-server
    """
    require_extra("team", "mlflow", "psycopg2")
    from experiments.team.backup import restore

    emit(restore(archive, state_dir or _default_dir()), as_json, _render_backup("restored"))


def _render_backup(verb: str) -> Any:
    def render_info(info: Any) -> str:
        return (f"{verb} {info.archive}: database dump {info.database_bytes} bytes, "
                f"{info.artifact_files} artifact files, accounts {'yes' if info.auth else 'no'} "
                f"(server folder {info.state_dir}, {info.seconds:.1f} s)")
    return render_info


@command.command(name="user")
@click.argument("action", type=click.Choice(["add"]))
@click.argument("name")
@dir_option
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="Read the password from this file (mode 0600); without it, it is prompted. "
                   "Never given on the command line.")
@json_option
def user_add(action: str, name: str, state_dir: str | None, password_file: str | None,
             as_json: bool) -> None:
    """Researchers' accounts on a --basic-auth server: `add NAME` creates account NAME
    through MLflow's auth API, signed in as the server's admin. Permissions are MLflow's: every
    user READs, an experiment's creator MANAGEs it.

    Example: budget server user add alice --dir /srv/budget-server --password-file alice.pw
    """
    require_extra("team", "mlflow", "psycopg2")
    from experiments.team.auth import add_user, read_password_file
    from experiments.team.server import server_status

    state = state_dir or _default_dir()
    info = _known(server_status(state), state)
    if not info.healthy:
        raise click.UsageError(f"the server in {state} is down ({', '.join(info.down)}); start it "
                               "with budget server start")
    password = (read_password_file(password_file) if password_file else
                click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True,
                             err=True))
    created = add_user(info.tracking_uri, Path(info.state_dir), name, password)
    emit(created, as_json, lambda u: (
        f"user {u['username']} created on {info.tracking_uri}; they sign in with "
        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD or ~/.mlflow/credentials (0600)"))


@command.command(name="ray-head")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="The address every Ray port binds (the cluster network's, never 0.0.0.0).")
@click.option("--ports", metavar="NAME=PORT,...",
              help="Ports over the defaults: gcs, dashboard, client_server, object_manager, "
                   "node_manager, metrics_export, dashboard_agent_listen, dashboard_agent_grpc, "
                   "runtime_env_agent, min_worker, max_worker.")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="Ray's auth token (made 0600 when missing) [default: "
                   "$XDG_CONFIG_HOME/compute-budget/ray-token].")
@click.option("--num-cpus", type=POSITIVE_INT, help="CPUs the head offers to tasks.")
@click.option("--temp-dir", type=click.Path(file_okay=False), help="Ray's session folder.")
@click.option("--dry-run", is_flag=True, help="Print the ray start command; start nothing.")
@json_option
def ray_head(address: str, ports: str | None, token_file: str | None, num_cpus: int | None,
             temp_dir: str | None, dry_run: bool, as_json: bool) -> None:
    """Start a Ray head with token auth and every port bound to --address (stop: ray stop).

    Example: budget server ray-head --address 10.0.0.5 --token-file /etc/budget/ray-token
    """
    require_extra("team", "ray")
    from experiments.team.ray_head import OPTION, parse_ports, start_head

    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    token = token_file or str(Path(config) / "compute-budget" / "ray-token")
    head = start_head(address, parse_ports(ports), token, num_cpus, temp_dir, dry_run)
    emit(head, as_json, lambda h: "\n".join([
        ("started: " if h.started else "would run: ") + h.to_dict()["command"],
        *(f"  {name:<24}{h.address}:{port}" for name, port in h.ports.fixed().items()
          if OPTION[name] in h.command),
        f"  {'workers':<24}{h.address}:{h.ports.min_worker}-{h.ports.max_worker}",
        f"token file {h.token_file} (0600); drivers and nodes joining set:",
        *(f"  {line}" for line in h.exports)]))


def _known(info: Any, state_dir: str) -> Any:
    if info is None:
        import shlex

        command = shlex.join(["budget", "server", "start", "--dir", state_dir])
        raise click.UsageError(f"no team server was started in --dir {state_dir!r}; run "
                               f"'{command}' first")
    return info


def render(info: Any) -> str:
    from experiments.team.health import COMPONENT_NAMES

    def part(name: str) -> str:
        value = info.components.get(name)
        return "-" if value is None else "ok" if value == "ok" else (
            value if value.startswith("not checked") else f"DOWN: {value}")

    names = ", ".join(COMPONENT_NAMES[c] for c in info.down)
    state = ("healthy" if info.healthy else f"DOWN ({names})" if names
             else "stopped" if not info.mlflow_pid else "not answering")
    return "\n".join([
        f"server         {info.tracking_uri}  {state}",
        f"MLflow API     {part('mlflow')} (pid {info.mlflow_pid or '-'})",
        f"PostgreSQL     {part('postgres')} (127.0.0.1:{info.postgres_port}, pid "
        f"{info.postgres_pid or '-'}; backend {info.backend_store_uri}, password in "
        f"{info.state_dir}/pgpass)",
        f"artifacts      {part('artifacts')} ({info.artifacts_destination}, proxied: clients "
        "upload over HTTP)",
        *([f"basic-auth     on: admin password in {info.state_dir}/admin-password (server "
           "only); add researchers with budget server user add NAME"] if info.basic_auth else []),
        *([f"started in     {info.startup_seconds:.1f} s"] if info.healthy and info.startup_seconds
          else []),
        *([f"use it         export MLFLOW_TRACKING_URI={info.tracking_uri}"] if info.healthy else []),
    ])
