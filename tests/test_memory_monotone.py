"""Issue 27: `budget.memory(params=N)` should never fall as N grows, over 1e6-1e11 parameters.

It does, and the cause is the shape, not the memory formulas: with only N given, the activations
are sized on the family shape chosen for N (`budget.models.families.shape_for_params`), and that
choice is not monotone in N. Between 1.26e8 and 1.9e8 it flips back and forth between a
deep-narrow shape (27-45 layers, d_model 512) and a shallow-wide one (5-10 layers, d_model 1024),
whichever lands inside the 2% count tolerance; near 8.3e6 between 63 layers of d_model 64 and
1 layer of 128. Activations grow like n_layer x d_model = N_non-embedding / (12 d_model), so
each step to a wider shape cuts them by the width ratio (up to 2.15x) while model states grow
only with N. With tensor-parallel-friendly widths 1024 apart, any per-N shape choice drops at
each widening; a monotone memory needs a shape path monotone in n_layer x d_model (or
activations sized off the rounded shape), which is the shape search's to change. These tests
state the property and fail until then (strict xfail: they turn red when it holds).
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import budget


def total(params: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return budget.memory(params=params).memory.total_bytes


SHAPE_REASON = ("the family shape chosen per N flips between deep-narrow and shallow-wide "
                "(see the module docstring); owned by the shape search")


@pytest.mark.xfail(strict=True, reason=SHAPE_REASON)
@settings(max_examples=150, deadline=None, derandomize=True)
@given(log_n=st.floats(6.0, 11.0), grow=st.floats(1.0, 1.05))
def test_memory_never_falls_as_parameters_grow(log_n: float, grow: float) -> None:
    n = 10.0**log_n
    assert total(n * grow) >= total(n)


@pytest.mark.xfail(strict=True, reason=SHAPE_REASON)
def test_the_probes_worst_step() -> None:
    """The probe's worst case: 8.27e6 -> 8.36e6 parameters (+1.2%) and memory fell 2.15x."""
    assert total(8.362e6) >= total(8.266e6)


def test_model_states_alone_are_monotone() -> None:
    """What is not the cause: weights, gradients and optimizer state use N exactly."""
    def states(params: float) -> float:
        m = budget.memory(params=params).memory
        return m.params_bytes + m.grads_bytes + m.optimizer_bytes
    ns = [10.0 ** (6 + 5 * i / 60) for i in range(61)]
    values = [states(n) for n in ns]
    assert all(b >= a for a, b in zip(values, values[1:]))
