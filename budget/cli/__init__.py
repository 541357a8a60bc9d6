"""The `budget` command line: one module per command, each parses, calls the library, renders.

Command modules import only click and light library constants (choices, defaults) at import time;
heavy libraries (torch, mlflow, scipy.optimize, matplotlib) are imported inside the commands that
need them, so `budget plan` starts fast. `fit`, `plan --calibrate` and `report` reach `fits` and
`experiments` through `budget.wiring`; `sweep` and `ui` import `experiments` inside the command.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

import click

from budget import __version__
from budget.cli.common import BudgetGroup

# command name -> its module in budget/cli/ (each defines `command`); imported on first use, so
# `budget flops` loads only what flops needs
COMMAND_MODULES = {name: name for name in (
    "plan", "gpus", "flops", "memory", "scale", "sweep", "fit", "report", "ui", "frontier",
    "serve", "roofline", "energy", "models", "server", "validate")}


class LazyCommands(MutableMapping[str, click.Command]):
    """click's `Group.commands`, importing a command's module only when it is looked up."""

    def __init__(self, modules: dict[str, str]) -> None:
        self._modules = dict(modules)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in self._modules:
                raise KeyError(name)
            module = importlib.import_module(f"budget.cli.{self._modules[name]}")
            self._loaded[name] = module.command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command
        self._modules.setdefault(name, name)

    def __delitem__(self, name: str) -> None:
        self._loaded.pop(name, None)
        del self._modules[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


@click.group(cls=BudgetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="budget")
def main() -> None:
    """Plan a training run from a compute budget, check it with real sweeps, fit your own law.

    Example: budget plan --flops 1e21 --gpu h100
    """


main.commands = LazyCommands(COMMAND_MODULES)
