"""`python -m budget.cli` runs the `budget` command."""

from budget.cli import main

main()
