"""`budget report` (placeholder until its issue lands)."""

import click


@click.command(name="report")
def command() -> None:
    """Not implemented yet.

    Example: budget report --help
    """
    raise click.UsageError("budget report is not implemented yet")
