"""`budget gpus` (placeholder until its issue lands)."""

import click


@click.command(name="gpus")
def command() -> None:
    """Not implemented yet.

    Example: budget gpus --help
    """
    raise click.UsageError("budget gpus is not implemented yet")
