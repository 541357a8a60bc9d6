"""`budget validate`: the planner's step-time and memory models against published measured runs."""

from __future__ import annotations

import click

from budget.cli.common import emit, json_option


@click.command(name="validate")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write predicted against measured step time (log-log PNG) to this file.")
@json_option
def command(as_json: bool, plot_path: str | None) -> None:
    """Score the step-time model on published runs: per row predicted vs measured and the error,
    mean and max per suite, in-sample and leave-one-out (each row predicted with the efficiency
    constants fitted without it), and the ratio to Calculon on Korthikanti et al. 2022 Table 5.
    Memory rows (ZeRO model states, Korthikanti activations) in the same report. Exits 1 when a
    suite is past its bound.

    Example: budget validate --plot validate.png
    """
    from budget.validation.render import plot, render
    from budget.validation.score import score

    board = score()
    if plot_path:
        plot(board, plot_path)
    emit(board, as_json, render)
    if not board.passes:
        raise SystemExit(1)
