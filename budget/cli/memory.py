"""`budget memory` (placeholder until its issue lands)."""

import click


@click.command(name="memory")
def command() -> None:
    """Not implemented yet.

    Example: budget memory --help
    """
    raise click.UsageError("budget memory is not implemented yet")
