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
    from pathlib import Path

    from budget.errors import BudgetError
    from budget.validation.render import plot, render
    from budget.validation.score import score

    if plot_path and not Path(plot_path).resolve().parent.is_dir():
        raise BudgetError(f"--plot {plot_path!r}: its folder does not exist; give a PNG path in an "
                          "existing folder")
    board = score()
    if plot_path:
        try:
            plot(board, plot_path)
        except OSError as exc:
            raise BudgetError(f"--plot {plot_path!r} cannot be written: {exc.strerror}") from None
    emit(board, as_json, render)
    if not board.passes:
        raise SystemExit(1)
