"""The `budget` command line: one module per command, each parses, calls the library, renders.

Command modules import only click at import time; heavy libraries (torch, mlflow, scipy.optimize,
matplotlib) are imported inside the commands that need them, so `budget plan` starts fast.
"""

from __future__ import annotations

import click

from budget import __version__
from budget.cli import fit, flops, gpus, memory, plan, report, scale, server, sweep, ui
from budget.cli.common import BudgetGroup


@click.group(cls=BudgetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="budget")
def main() -> None:
    """Plan a training run from a compute budget, check it with real sweeps, fit your own law.

    Example: budget plan --flops 1e21 --gpu h100
    """


for _module in (plan, gpus, flops, memory, scale, sweep, fit, report, ui, server):
    main.add_command(_module.command)
