"""Typed domain errors. The library raises them; only the CLI turns them into exit code 2."""


class BudgetError(ValueError):
    """Bad input to the planner or its formulas (a budget, a GPU name, a catalog row...).

    The message is one line that names the bad value and what is allowed.
    `cli_exit_code` marks the error as the user's: the CLI prints it on one line and exits 2.
    """

    cli_exit_code = 2


class CatalogError(BudgetError):
    """A malformed accelerator catalog: the message names the file, the row and the field."""


class BudgetWarning(UserWarning):
    """Something the user should know that is not an error (an overridden catalog row, a budget far
    outside the laws' fitted range). The CLI prints each one as one 'Warning:' line on stderr."""
