"""One line for an experiment name that a store does not have: the names it does have."""

from __future__ import annotations

import difflib
from typing import Any

from experiments.errors import SweepError

LISTED = 8  # names shown at most (closest first)


def unknown_experiment(client: Any, name: str, uri: str) -> SweepError:
    """SweepError naming the store and the experiments in it (close matches first)."""
    try:
        names = [e.name for e in client.search_experiments(max_results=1000)]
    except Exception:  # noqa: BLE001 - listing is a courtesy; the error itself must still come out
        names = []
    names = [n for n in names if n != "Default"] or names
    if not names:
        return SweepError(f"experiment {name!r} not found in {uri}: the store has no experiments yet; "
                          "run 'budget sweep --experiment NAME' first")
    close = difflib.get_close_matches(name, names, n=LISTED, cutoff=0.0)
    shown = ", ".join(repr(n) for n in close[:LISTED])
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return SweepError(f"experiment {name!r} not found in {uri}; it has {shown}{more}")
