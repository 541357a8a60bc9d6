"""`budget sweep` (placeholder until its issue lands)."""

import click


@click.command(name="sweep")
def command() -> None:
    """Not implemented yet.

    Example: budget sweep --help
    """
    raise click.UsageError("budget sweep is not implemented yet")
