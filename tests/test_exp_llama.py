"""The torch Llama-style block equals the planner's Architecture: parameters exactly, FLOPs within
2% (FlopCounterMode on the meta device), and `budget sweep --family llama` designs it."""

import math

import pytest
import torch

from budget.models.families import build
from budget.models.named import get_model
from experiments.llama import Llama
from experiments.model import (
    build_model,
    count_parameters,
    measured_training_flops_per_token,
)
from experiments.sweeps.design import PRESETS, design_sweep

ARCHS = [
    build("llama", 2, 64, n_head=8, n_kv_head=2, vocab_size=256, n_ctx=64),  # GQA 4:1
    build("llama", 2, 64, n_head=4, n_kv_head=1, vocab_size=256, n_ctx=32),  # MQA
    build("llama", 1, 48, n_head=4, head_dim=16, vocab_size=300, n_ctx=16, bias="qkv",
          tied_embeddings=True),  # free head_dim (q width 64 != d_model 48), Qwen2 biases
    build("gpt2", 2, 64, n_head=4, vocab_size=256, n_ctx=32, mlp="gated", activation="gelu"),  # GeGLU
]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.describe()[:60])
def test_parameter_counts_equal_the_architecture(arch):
    model = build_model(arch)
    assert count_parameters(model) == arch.params_total()
    assert count_parameters(model, non_embedding=True) == arch.params_non_embedding()


def test_llama_2_7b_and_llama_3_8b_on_meta():
    """meta-llama/Llama-2-7b-hf 6,738,415,616 and Meta-Llama-3-8B 8,030,261,248 (config.json)."""
    for name, count in (("llama-2-7b", 6_738_415_616), ("llama-3-8b", 8_030_261_248)):
        with torch.device("meta"):
            model = Llama(get_model(name).arch)
        assert count_parameters(model) == count


@pytest.mark.parametrize("arch", ARCHS[:3], ids=lambda a: a.describe()[:60])
def test_measured_flops_match_the_architecture(arch):
    """Matmul FLOPs FlopCounterMode counts for forward + backward equal 3 x the named terms
    (unhalved attention: SDPA on meta is two bmm over the full T x T)."""
    assert measured_training_flops_per_token(arch) == pytest.approx(
        arch.training_flops_per_token(), rel=0.02)


def test_forward_is_causal_and_trains():
    torch.manual_seed(0)
    model = Llama(ARCHS[0]).eval()
    idx = torch.randint(0, 256, (1, 16))
    changed = idx.clone()
    changed[0, 10] = (idx[0, 10] + 1) % 256
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[0, :10], b[0, :10], atol=1e-5)
    assert not torch.allclose(a[0, 10:], b[0, 10:])
    _, loss = model.train()(idx, idx)
    assert loss is not None and loss.item() == pytest.approx(torch.log(torch.tensor(256.0)).item(),
                                                             rel=0.1)


def test_sweep_design_in_the_llama_family():
    grid = design_sweep(PRESETS["smoke"], family="llama")
    assert grid
    for point in grid:
        c = point.config
        assert c.family == "llama" and c.architecture.mlp == "gated"
        with torch.device("meta"):
            model = build_model(c.model_spec)
        assert count_parameters(model) == c.params == c.architecture.params_total()


def test_a_llama_sweep_point_trains_on_real_text():
    """One point of `budget sweep --preset smoke --family llama`, trained by the sweep's own loop
    on the Shakespeare corpus: the loss goes down and the FLOPs it reports are the
    Architecture's training FLOPs per token x tokens seen."""
    from dataclasses import replace

    from experiments.training.data import load_corpus
    from experiments.training.hardware import Peak, set_threads
    from experiments.training.train import train_run

    set_threads(1)
    corpus = load_corpus()
    point = design_sweep(PRESETS["smoke"], family="llama", vocab_size=corpus.vocab_size)[1]
    config = replace(point.config, tokens=64 * 32 * 30, eval_tokens=2048)
    result = train_run(config, corpus, device=torch.device("cpu"), dtype=torch.float32,
                       peak=Peak(1e10, "fp32", "test"), progress=False)
    assert result.val_loss < math.log(corpus.vocab_size)
    assert result.flops == pytest.approx(
        config.architecture.training_flops_per_token() * result.tokens, rel=1e-9)
