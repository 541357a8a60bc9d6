"""compute-budget: plan training compute from scaling laws, then check it with real sweeps.

The Python API mirrors the commands and returns the objects their `--json` prints:

    import budget
    plan = budget.plan(flops=1e21, gpu="h100")      # budget.planner.Plan
    mem = budget.memory(params=7e9, gpu="h100", zero_stage=3)
    count = budget.flops(n_layer=12, d_model=768, tokens=3e11)

They are loaded on first use (`budget.api`), so `import budget` imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "flops", "memory", "plan"]

if TYPE_CHECKING:
    from budget.api import flops, memory, plan


def __getattr__(name: str) -> Any:
    if name in ("plan", "memory", "flops"):
        from budget import api

        return getattr(api, name)
    raise AttributeError(f"module 'budget' has no attribute {name!r}")
