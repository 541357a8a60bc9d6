"""`budget scale` (placeholder until its issue lands)."""

import click


@click.command(name="scale")
def command() -> None:
    """Not implemented yet.

    Example: budget scale --help
    """
    raise click.UsageError("budget scale is not implemented yet")
