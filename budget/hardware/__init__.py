"""What it runs on: the accelerator catalog (`catalog`, data in `accelerators.toml`).

Every number carries its source. Imports `budget.errors` only.
"""
