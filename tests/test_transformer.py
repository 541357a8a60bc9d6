"""Transformer parameter and FLOP counts against published numbers."""

import pytest

from budget.errors import BudgetError
from budget.models.transformer import (
    ModelShape,
    forward_flops_per_token,
    params_non_embedding,
    params_total,
    shape_for_params,
    training_flops_per_token,
)

GPT2_SMALL = ModelShape(n_layer=12, d_model=768, n_head=12, d_ff=3072, n_ctx=1024, vocab_size=50257)


def test_gpt2_small_parameter_count():
    """GPT-2 small has 124,439,808 parameters (HF `gpt2`; nanoGPT model.py reports 123.65M
    because it subtracts the 786,432 position embeddings: karpathy/nanoGPT scaling_laws.ipynb)."""
    assert params_total(GPT2_SMALL) == 124_439_808
    assert params_total(GPT2_SMALL) - 1024 * 768 == 123_653_376


def test_non_embedding_count_is_kaplans_12_l_d_squared():
    """Kaplan et al. 2020 §2.1: N ~= 12 n_layer d_model^2 non-embedding (biases and norms aside)."""
    n = params_non_embedding(GPT2_SMALL)
    assert n == 85_056_000
    assert n / (12 * 12 * 768**2) == pytest.approx(1.0, rel=2e-3)


def test_forward_flops_match_nanogpt_transformer_sizing():
    """nanoGPT transformer_sizing.ipynb: GPT-2 124M forward FLOPs per 1024-token sequence =
    291,648,307,200 (matmuls incl. attention and logits); x3 for training = 874,944,921,600."""
    per_seq = forward_flops_per_token(GPT2_SMALL) * 1024
    assert per_seq == 291_648_307_200
    assert training_flops_per_token(GPT2_SMALL) * 1024 == 874_944_921_600


@pytest.mark.parametrize("n_layer,d,m_published", [
    (8, 512, 352e6), (12, 768, 963e6), (24, 1024, 3.02e9), (24, 2048, 9.66e9),
    (32, 4096, 45.1e9), (40, 5120, 85.6e9), (80, 8192, 419e9)])
def test_deepseek_model_scale_table3(n_layer, d, m_published):
    """DeepSeek LLM (arXiv:2401.02954) eq. 2 and Table 3: non-embedding FLOPs/token
    M = 72 n_layer d^2 + 12 n_layer d l_seq at l_seq = 4096 equals our training count without
    the logits term (d_ff = 4d)."""
    shape = ModelShape(n_layer, d, d // 64, 4 * d, n_ctx=4096, vocab_size=102400)
    m = training_flops_per_token(shape, logits=False)
    assert m == 72 * n_layer * d * d + 12 * n_layer * d * 4096
    assert m == pytest.approx(m_published, rel=0.01)


def test_recompute_is_four_forwards():
    """Full activation recomputation runs the forward twice: 4 x forward (Korthikanti et al. 2022)."""
    assert training_flops_per_token(GPT2_SMALL, recompute=True) == 4 * forward_flops_per_token(GPT2_SMALL)


@pytest.mark.parametrize("target", [1.2e8, 1e9, 7e9, 7e10, 1e12])
def test_shape_for_params_is_within_two_percent_and_sane(target):
    shape = shape_for_params(target)
    assert abs(params_total(shape) / target - 1) <= 0.02
    assert shape.d_model % 64 == 0 and shape.d_ff == 4 * shape.d_model
    assert shape.head_dim == 64
    assert 32 <= shape.aspect_ratio <= 160


def test_tiny_shapes_with_a_byte_vocabulary():
    shape = shape_for_params(1e6, vocab_size=256, n_ctx=256, multiple_of=16, head_dim=16)
    assert abs(params_total(shape) / 1e6 - 1) <= 0.02
    assert shape.d_model % 16 == 0


def test_unreachable_size_returns_the_closest_shape():
    """1e6 parameters cannot be reached with a 50,257-token vocabulary (embeddings alone are 3.3M)."""
    shape = shape_for_params(1e6)
    assert (shape.n_layer, shape.d_model) == (1, 64)


def test_shape_for_non_embedding_count():
    shape = shape_for_params(7.77e9, count="non_embedding")
    assert abs(params_non_embedding(shape) / 7.77e9 - 1) <= 0.02


@pytest.mark.parametrize("kwargs", [dict(n_layer=0), dict(d_model=-64), dict(n_head=5)])
def test_bad_shapes_raise_budget_error(kwargs):
    base = dict(n_layer=2, d_model=128, n_head=2, d_ff=512)
    with pytest.raises(BudgetError):
        ModelShape(**{**base, **kwargs})


def test_shape_for_params_rejects_nonsense():
    with pytest.raises(BudgetError, match="finite"):
        shape_for_params(float("nan"))
