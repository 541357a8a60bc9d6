"""`budget ui`: the MLflow UI on the sweeps' store (needs the [sweep] extra)."""

from __future__ import annotations

import click

from budget.cli.common import emit, json_option, require_extra


@click.command(name="ui")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (127.0.0.1: this machine only; any other host is "
              "warned about: MLflow has no login).")
@click.option("--tracking-uri", help="Store to show (default: $MLFLOW_TRACKING_URI, else "
              "sqlite:///mlflow.db in the working directory, as `budget sweep` uses).")
@click.option("--experiment", help="Open this experiment's runs table on its points view: one "
              "row per point with its loss and size (as `budget sweep --experiment`).")
@click.option("--check", is_flag=True,
              help="Start, wait until the UI answers, print its URL and stop (for scripts).")
@json_option
def command(port: int, host: str, tracking_uri: str | None, experiment: str | None, check: bool,
            as_json: bool) -> None:
    """Start the MLflow UI on the sweep store and print its URL; Ctrl-C stops it.

    Closing the terminal (SIGHUP), SIGTERM or even SIGKILL of this command stops MLflow and all
    of its worker processes too.

    Example: budget ui --experiment cpu-sweep --port 5000
    """
    require_extra("sweep", "mlflow")
    from experiments.review.ui import (
        interrupts_as_keyboard,
        restore,
        start_ui,
        stop_ui,
        wait_ui,
    )

    previous = interrupts_as_keyboard()  # a SIGHUP during the 5-25 s start-up stops it too
    try:
        server, proc = start_ui(tracking_uri, host, port, experiment,
                                say=lambda line: click.echo(line, err=True))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    finally:
        restore(previous)
    for warning in server.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    try:
        emit(server, as_json, lambda s: f"MLflow UI: {s.landing_url} (store {s.tracking_uri}); "
                                        f"Ctrl-C stops it")
    finally:
        if check:
            stop_ui(proc)
    if not check:
        wait_ui(proc)
