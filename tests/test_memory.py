"""Training memory against the ZeRO paper and Korthikanti et al.'s activation formula."""

import pytest

from budget.errors import BudgetError
from budget.models.families import build, shape_for_params
from budget.training.memory import (
    activation_bytes,
    bytes_per_param,
    fewest_gpus,
    model_state_bytes,
    training_memory,
    zero_sharded,
)


def test_mixed_precision_adam_is_16_bytes_per_param():
    """Rajbhandari et al. 2020 (ZeRO) §3.1: 2 + 2 + 12 = 16 bytes per parameter."""
    assert bytes_per_param("bf16", "adam") == (2, 2, 12)
    assert sum(bytes_per_param("fp32", "adam")) == 16  # 4 + 4 + 8
    assert sum(bytes_per_param("fp32", "sgd")) == 8
    assert sum(bytes_per_param("fp32", "momentum")) == 12
    assert sum(bytes_per_param("bf16", "sgd")) == 8  # 2 + 2 + fp32 master


@pytest.mark.parametrize("stage,gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_figure_1(stage, gb):
    """ZeRO paper Figure 1: 7.5B parameters, 64 data-parallel GPUs, K = 12: 120 GB per GPU
    baseline, 31.4 GB (P_os), 16.6 GB (P_os+g), 1.9 GB (P_os+g+p)."""
    w, g, o = model_state_bytes(7.5e9, "bf16", "adam")
    assert sum(zero_sharded(w, g, o, stage, 64)) / 1e9 == pytest.approx(gb, abs=0.05)


def test_korthikanti_per_layer_activations():
    """Korthikanti et al. 2022 eq. 1: s b h (34 + 5 a s / h) bytes per layer (16-bit, d_ff = 4h);
    selective recomputation drops the 5 a s^2 b term. GPT-3 175B shape: s 2048, h 12288, a 96."""
    s, b, h, a = 2048, 1, 12288, 96
    one = build("gpt2", 1, h, n_head=a, n_ctx=s, vocab_size=1)
    two = build("gpt2", 2, h, n_head=a, n_ctx=s, vocab_size=1)
    per_layer = activation_bytes(two, b, s, "none") - activation_bytes(one, b, s, "none")
    assert per_layer == s * b * h * (34 + 5 * a * s / h)
    kept = activation_bytes(two, b, s, "selective") - activation_bytes(one, b, s, "selective")
    assert kept == 34 * s * b * h
    full = activation_bytes(two, b, s, "full") - activation_bytes(one, b, s, "full")
    assert full == 2 * s * b * h  # full recompute keeps each layer's 16-bit input


def test_recompute_reduces_activations_and_fp32_doubles_them():
    shape = shape_for_params(1.3e9, "gpt2")
    none, sel, full = (activation_bytes(shape, 4, 2048, r) for r in ("none", "selective", "full"))
    assert none > sel > full
    assert activation_bytes(shape, 4, 2048, "none", "fp32") > none


def test_min_gpus_for_a_70b_model_on_h100():
    """70B params: 16 B/param = 1.12 TB of model state; with ZeRO-3 each 80 GB H100 (72 GB
    usable) holds 1.12e12 / n plus its activations."""
    shape = shape_for_params(70e9, "gpt2")
    m = training_memory(shape, micro_batch=1, seq_len=2048, recompute="full", zero_stage=3,
                        num_gpus=8, gpu_memory_bytes=80e9, gpu="h100-sxm-80gb")
    states = m.model_states_bytes_unsharded
    assert m.min_gpus == -(-states // (72e9 - m.activations_bytes))
    assert m.fits is False  # 8 GPUs are not enough
    assert training_memory(shape, recompute="full", zero_stage=3, num_gpus=m.min_gpus,
                           gpu_memory_bytes=80e9).fits is True
    assert training_memory(shape, recompute="full", zero_stage=3, num_gpus=m.min_gpus - 1,
                           gpu_memory_bytes=80e9).fits is False


def test_does_not_fit_at_any_count():
    n, note = fewest_gpus(1e9, 1e9, 1e9, acts=100e9, stage=3, usable_bytes=72e9)
    assert n is None and "activations" in note
    n, note = fewest_gpus(100e9, 100e9, 1e9, acts=1e9, stage=0, usable_bytes=72e9)
    assert n is None and "higher ZeRO stage" in note


@pytest.mark.parametrize("kwargs,message", [
    (dict(zero_stage=4), "ZeRO stage 4"), (dict(micro_batch=0), "micro-batch 0"),
    (dict(optimizer="lion"), "optimizer 'lion'"), (dict(precision="int8"), "precision 'int8'"),
    (dict(recompute="some"), "recompute 'some'")])
def test_bad_memory_inputs(kwargs, message):
    with pytest.raises(BudgetError, match=message):
        training_memory(shape_for_params(1e8, "gpt2"), **kwargs)
