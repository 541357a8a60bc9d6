"""Typed errors of the experiments package; the CLI turns them into one line and exit code 2."""


class SweepError(ValueError):
    """Bad sweep input (a budget, a preset, a data path, a tracking URI...), one line naming it."""

    cli_exit_code = 2


class TrainingFailed(RuntimeError):
    """A training run that could not finish (NaN loss, out of memory); the sweep records it."""
