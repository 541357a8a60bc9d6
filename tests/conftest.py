"""Shared fixtures: one real smoke sweep per test session, and a frozen catalog for prices.

- `smoke_sweep` (session): one real torch smoke sweep into a real sqlite MLflow store, shared by
  every test file that needs finished sweep runs (the sweep structure tests, the fit-plan loop)
  instead of one sweep per file. Tests may add experiments to its store but never change its runs.
- `priced_catalog` / `fixed_prices`: asserts that depend on an accelerator price (which moves
  monthly) read `tests/data/fixture_catalog.toml`, a frozen copy of the built-in catalog, instead
  of whatever `budget/hardware/accelerators.toml` says today.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
FIXTURE_CATALOG = DATA / "fixture_catalog.toml"
SMOKE_EXPERIMENT = "smoke"


@dataclass(frozen=True)
class SmokeSweep:
    """The session's smoke sweep: its store, experiment, spec and result."""

    uri: str
    experiment: str
    spec: Any  # experiments.sweeps.sweep.SweepSpec
    result: Any  # experiments.sweeps.sweep.SweepResult


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory: pytest.TempPathFactory) -> SmokeSweep:
    """One real smoke sweep (preset smoke, one thread) per session, in its own sqlite store."""
    from experiments.sweeps.sweep import SweepSpec, run_sweep

    root = tmp_path_factory.mktemp("smoke-sweep")
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(root / "cache"))  # the CPU matmul-peak cache
    try:
        uri = f"sqlite:///{root}/mlflow.db"
        spec = SweepSpec(preset="smoke", experiment=SMOKE_EXPERIMENT, tracking_uri=uri, threads=1)
        result = run_sweep(spec, progress=False)
    finally:
        mp.undo()
    return SmokeSweep(uri, SMOKE_EXPERIMENT, spec, result)


@pytest.fixture(scope="session")
def priced_catalog() -> Any:
    """The built-in catalog overridden by the frozen fixture copy (prices that do not move)."""
    from budget.hardware.catalog import load_catalog

    return load_catalog([FIXTURE_CATALOG], use_env=False)


@pytest.fixture(scope="module")
def fixed_prices() -> Any:
    """BUDGET_CATALOG points at the frozen fixture catalog for a whole module (CLI runs too)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BUDGET_CATALOG", str(FIXTURE_CATALOG))
    yield FIXTURE_CATALOG
    mp.undo()
