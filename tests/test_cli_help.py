"""Every command has help with an example (the docstring doubles as --help)."""

import click
import pytest
from click.testing import CliRunner

from budget.cli import main


def test_top_level_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("plan", "gpus", "flops", "memory", "scale", "sweep", "fit", "report", "ui"):
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "budget " + name in result.stdout
    command = main.commands[name]
    if isinstance(command, click.Group):  # a group (budget server): each subcommand, like a command
        for sub in command.commands:
            result = CliRunner().invoke(main, [name, sub, "--help"])
            assert result.exit_code == 0 and "Example:" in result.stdout, (name, sub)
            assert f"budget {name} {sub}" in result.stdout and "--json" in result.stdout, (name, sub)
        return
    assert "--json" in result.stdout  # every command prints one JSON object (tests/test_house.py)
