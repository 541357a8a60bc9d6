"""`budget flops` (placeholder until its issue lands)."""

import click


@click.command(name="flops")
def command() -> None:
    """Not implemented yet.

    Example: budget flops --help
    """
    raise click.UsageError("budget flops is not implemented yet")
