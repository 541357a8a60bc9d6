"""What a training run needs: memory per GPU (`memory`) and time and money (`time`).

May import `budget.models` and `budget.hardware`; never `budget.scaling`, `budget.report` or the CLI.
"""
