"""`budget plan` (placeholder until its issue lands)."""

import click


@click.command(name="plan")
def command() -> None:
    """Not implemented yet.

    Example: budget plan --help
    """
    raise click.UsageError("budget plan is not implemented yet")
