"""`budget ui`: the MLflow UI on the sweeps' store (needs the [sweep] extra)."""

from __future__ import annotations

import click

from budget.cli.common import POSITIVE_INT, emit, json_option, require_extra


@click.command(name="ui")
@click.option("--port", type=POSITIVE_INT, default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (127.0.0.1: this machine only).")
@click.option("--tracking-uri", help="Store to show (default: $MLFLOW_TRACKING_URI, else "
              "sqlite:///mlflow.db in the working directory, as `budget sweep` uses).")
@click.option("--check", is_flag=True,
              help="Start, wait until the UI answers, print its URL and stop (for scripts).")
@json_option
def command(port: int, host: str, tracking_uri: str | None, check: bool, as_json: bool) -> None:
    """Start the MLflow UI on the sweep store and print its URL; Ctrl-C stops it.

    Example: budget ui --port 5000
    """
    require_extra("sweep", "mlflow")
    from experiments.ui import start_ui, stop_ui, wait_ui

    server, proc = start_ui(tracking_uri, host, port)
    try:
        emit(server, as_json, lambda s: f"MLflow UI on {s.url} (store {s.tracking_uri}); "
                                        f"Ctrl-C stops it")
    finally:
        if check:
            stop_ui(proc)
    if not check:
        wait_ui(proc)
