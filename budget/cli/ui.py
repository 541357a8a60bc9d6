"""`budget ui` (placeholder until its issue lands)."""

import click


@click.command(name="ui")
def command() -> None:
    """Not implemented yet.

    Example: budget ui --help
    """
    raise click.UsageError("budget ui is not implemented yet")
