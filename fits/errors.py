"""Typed fit errors. The library raises them; only the CLI turns them into exit code 2."""


class FitError(ValueError):
    """Bad or insufficient input to a fit: the message says what is wrong and what is needed.

    `cli_exit_code` marks the error as the user's: the CLI prints it on one line and exits 2.
    """

    cli_exit_code = 2
