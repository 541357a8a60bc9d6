"""`python -m budget` runs the `budget` command."""

from budget.cli import main

main()
