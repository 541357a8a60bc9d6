"""`budget fit` (placeholder until its issue lands)."""

import click


@click.command(name="fit")
def command() -> None:
    """Not implemented yet.

    Example: budget fit --help
    """
    raise click.UsageError("budget fit is not implemented yet")
