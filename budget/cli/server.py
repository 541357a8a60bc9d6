"""`budget server start|stop|status`: the team's MLflow server on PostgreSQL (needs the [team] extra)."""

from __future__ import annotations

from typing import Any

import click

from budget.cli.common import POSITIVE_INT, emit, json_option, require_extra

DEFAULT_DIR = "budget-server"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

dir_option = click.option(
    "--dir", "state_dir", default=DEFAULT_DIR, show_default=True, type=click.Path(file_okay=False),
    help="Folder holding the PostgreSQL cluster, the artifacts, the logs and server.json.")


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
              help="Address MLflow listens on (0.0.0.0: every interface; see README security).")
@click.option("--port", type=POSITIVE_INT, default=5000, show_default=True)
@click.option("--postgres-port", type=POSITIVE_INT,
              help="Loopback port of PostgreSQL on first start (default: a free one).")
@click.option("--allowed-hosts", metavar="HOST,HOST,...",
              help="MLflow's allowed Host headers; replaces its default (localhost and private "
                   "addresses). Give the name clients use when serving beyond them.")
@click.option("--artifacts-destination", metavar="URI",
              help="Where the server stores artifacts (default: DIR/artifacts; any MLflow artifact URI, e.g. s3://bucket/path with boto3 installed).")
@click.option("--workers", type=POSITIVE_INT, default=1, show_default=True,
              help="MLflow server worker processes.")
@click.option("--basic-auth", is_flag=True,
              help="MLflow's basic-auth app: sign-in required, READ by default; user 'admin' "
                   "with the password in DIR/admin-password.")
@json_option
def start(state_dir: str, host: str, port: int, postgres_port: int | None,
          allowed_hosts: str | None, artifacts_destination: str | None, workers: int,
          basic_auth: bool, as_json: bool) -> None:
    """Start PostgreSQL (created on first start) and the MLflow server; wait until healthy.

    Example: budget server start --dir /srv/budget-server --port 5000
    """
    require_extra("team", "mlflow", "psycopg2")
    from experiments.team.server import ServerConfig, start_server

    if basic_auth:
        require_extra("team", "flask_wtf")  # mlflow[auth]
    if host not in LOOPBACK_HOSTS and not basic_auth:
        click.echo(f"Warning: --host {host} serves the tracking server beyond this machine; "
                   "anyone who reaches it can read and write runs unless basic-auth or a proxy "
                   "guards it (README: team server, security)", err=True)
    info = start_server(ServerConfig(state_dir=state_dir, host=host, port=port,
                                     postgres_port=postgres_port, allowed_hosts=allowed_hosts,
                                     artifacts_destination=artifacts_destination,
                                     workers=workers, basic_auth=basic_auth))
    emit(info, as_json, render)


@command.command(name="stop")
@dir_option
@json_option
def stop(state_dir: str, as_json: bool) -> None:
    """Stop the MLflow server, then PostgreSQL, by the process ids they recorded.

    Example: budget server stop --dir /srv/budget-server
    """
    from experiments.team.server import stop_server

    emit(_known(stop_server(state_dir), state_dir), as_json, render)


@command.command(name="status")
@dir_option
@json_option
def status(state_dir: str, as_json: bool) -> None:
    """Say whether the server in DIR runs and answers /health, and where.

    Example: budget server status --dir /srv/budget-server --json
    """
    from experiments.team.server import server_status

    emit(_known(server_status(state_dir), state_dir), as_json, render)


def _known(info: Any, state_dir: str) -> Any:
    if info is None:
        raise click.UsageError(f"no team server was started in --dir {state_dir!r}; run "
                               f"'budget server start --dir {state_dir}' first")
    return info


def render(info: Any) -> str:
    state = "healthy" if info.healthy else "stopped" if not info.mlflow_pid else "not answering"
    return "\n".join([
        f"MLflow server  {info.tracking_uri}  {state} (pid {info.mlflow_pid or '-'})",
        f"PostgreSQL     127.0.0.1:{info.postgres_port}  (pid {info.postgres_pid or '-'}; "
        f"backend {info.backend_store_uri}, password in {info.state_dir}/pgpass)",
        f"artifacts      {info.artifacts_destination} (proxied: clients upload over HTTP)",
        *([f"basic-auth     on: user admin, password in {info.state_dir}/admin-password; clients "
           "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"] if info.basic_auth else []),
        *([f"started in     {info.startup_seconds:.1f} s"] if info.healthy and info.startup_seconds
          else []),
        *([f"use it         export MLFLOW_TRACKING_URI={info.tracking_uri}"] if info.healthy else []),
    ])
