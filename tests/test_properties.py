"""Property tests (hypothesis) over the planner's formulas (issue 17 item 10).

For random valid inputs: every allocation spends 6ND = C; N and D never fall as C grows; GPU-hours
are linear in C and inverse in MFU; cost is hours x price; memory never falls as the model's
layers or width, the micro-batch or the context grow; ZeRO stage k never needs more memory per
GPU (nor more GPUs) than stage k-1. The planner's chosen shape is a staircase in N (d_model is a
multiple of 64 and the count is matched to 2%), so memory along N is checked against the one-step
bound the chooser guarantees, and the 3.8x jump at 6.7M parameters is checked gone.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget.hardware.catalog import load_catalog
from budget.models.arch import Architecture
from budget.models.families import build
from budget.models.families import shape_for_params as _family_shape
from budget.scaling import laws
from budget.training import time as costing
from budget.training.memory import training_memory

FAST = settings(max_examples=60, deadline=None)
log_compute = st.floats(min_value=15.0, max_value=28.0)  # log10 C over the planner's sane range
mfus = st.floats(min_value=0.05, max_value=1.0)
GPU = load_catalog(use_env=False).get("h100")


@FAST
@given(log_compute)
def test_every_allocation_spends_its_budget(log_c):
    C = 10.0 ** log_c
    for a in laws.all_allocations(C):
        assert 6 * a.params * a.tokens == pytest.approx(C, rel=1e-9), a.law


@FAST
@given(log_compute, st.floats(min_value=1e-3, max_value=3.0))
def test_params_and_tokens_never_fall_as_compute_grows(log_c, step):
    small, large = laws.all_allocations(10.0 ** log_c), laws.all_allocations(10.0 ** (log_c + step))
    for a, b in zip(small, large):
        assert b.params >= a.params and b.tokens >= a.tokens, a.law


@FAST
@given(log_compute, mfus, st.floats(min_value=1.0, max_value=1e3))
def test_gpu_hours_linear_in_compute_inverse_in_mfu_and_cost_is_hours_times_price(log_c, mfu, k):
    C = 10.0 ** log_c
    base = costing.estimate_cost(C, GPU, mfu=mfu)
    assert costing.estimate_cost(k * C, GPU, mfu=mfu).gpu_hours == pytest.approx(k * base.gpu_hours, rel=1e-9)
    half = costing.estimate_cost(C, GPU, mfu=mfu / 2) if mfu / 2 >= 0.01 else None
    if half is not None:
        assert half.gpu_hours == pytest.approx(2 * base.gpu_hours, rel=1e-9)
    assert base.gpu_hours == pytest.approx(C / (GPU.peak_flops("bf16") * mfu) / 3600, rel=1e-12)
    assert base.cost_usd == pytest.approx(base.gpu_hours * base.price_usd_per_hour, rel=1e-12)
    priced = costing.estimate_cost(C, GPU, mfu=mfu, price_per_hour=3.7, num_gpus=8)
    assert priced.cost_usd == pytest.approx(priced.gpu_hours * 3.7, rel=1e-12)


def _shape(n_layer: int, width64: int) -> Architecture:
    d = 64 * width64
    return build("gpt2", n_layer, d, n_head=d // 64)


def shape_for_params(n: float) -> Architecture:
    return _family_shape(n, "gpt2")


def _mem(shape: Architecture, **kw) -> float:
    return training_memory(shape, gpu_memory_bytes=GPU.memory_bytes, **kw).total_bytes


shapes = st.tuples(st.integers(1, 96), st.integers(1, 160))
settings_kw = st.fixed_dictionaries({
    "micro_batch": st.integers(1, 32), "seq_len": st.integers(128, 8192),
    "recompute": st.sampled_from(["none", "selective", "full"]),
    "precision": st.sampled_from(["bf16", "fp16", "fp32"]), "zero_stage": st.integers(0, 3),
    "num_gpus": st.integers(1, 64)})


@FAST
@given(shapes, settings_kw, st.integers(1, 8), st.integers(1, 8))
def test_memory_never_falls_as_layers_or_width_grow(dims, kw, more_layers, more_width):
    n_layer, w = dims
    base = _mem(_shape(n_layer, w), **kw)
    assert _mem(_shape(n_layer + more_layers, w), **kw) >= base
    assert _mem(_shape(n_layer, w + more_width), **kw) >= base


@FAST
@given(shapes, settings_kw, st.integers(1, 16), st.integers(1, 4096))
def test_memory_never_falls_as_batch_or_context_grow(dims, kw, more_batch, more_ctx):
    shape = _shape(*dims)
    base = _mem(shape, **kw)
    assert _mem(shape, **{**kw, "micro_batch": kw["micro_batch"] + more_batch}) >= base
    assert _mem(shape, **{**kw, "seq_len": kw["seq_len"] + more_ctx}) >= base


@FAST
@given(shapes, settings_kw)
def test_zero_stage_k_never_needs_more_than_k_minus_1(dims, kw):
    shape = _shape(*dims)
    per_stage = [training_memory(shape, gpu_memory_bytes=GPU.memory_bytes, **{**kw, "zero_stage": k})
                 for k in range(4)]
    for lower, higher in itertools.pairwise(per_stage):
        assert higher.total_bytes <= lower.total_bytes
        if lower.min_gpus is not None:
            assert higher.min_gpus is not None and higher.min_gpus <= lower.min_gpus


SHAPE_STEP = 0.75  # measured: memory at N never below 0.796 x its maximum at any smaller N (1e6-1e12)


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=6.0, max_value=12.0), st.floats(min_value=0.0, max_value=2.0))
def test_planner_shape_memory_does_not_jump_down_with_more_params(log_n, step):
    """The chosen shape's memory never falls by more than one shape step as N grows (it fell 3.8x
    for 0.5% more parameters at 6.7M, when 66 x 64 gave way to 1 x 128)."""
    small, large = shape_for_params(10.0 ** log_n), shape_for_params(10.0 ** (log_n + step))
    m_small, m_large = _mem(small, micro_batch=1, seq_len=2048), _mem(large, micro_batch=1, seq_len=2048)
    assert m_large >= SHAPE_STEP * m_small
    if step >= math.log10(2):  # twice the parameters: never less memory
        assert m_large >= m_small


def test_the_6_7m_jump_is_gone():
    before, after = shape_for_params(6.70e6), shape_for_params(6.70e6 * 1.005)
    assert _mem(after, micro_batch=1, seq_len=2048) >= SHAPE_STEP * _mem(before, micro_batch=1, seq_len=2048)
    assert before.d_model / before.n_layer >= 16  # no 66-layer, 64-wide model
