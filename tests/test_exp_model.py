"""The one torch decoder (experiments.model) equals the planner's Architecture: parameters
exactly for every family and part, FLOPs within 2%, causal, and the sweeps design and train it."""

import json
import math
from pathlib import Path

import pytest
import torch

from budget.models.families import build, shape_for_params
from budget.models.hf_config import load_config
from budget.models.named import get_model
from experiments.model import build_model, count_parameters, measured_training_flops_per_token
from experiments.sweeps.design import PRESETS, design_sweep

CONFIGS = Path(__file__).parent / "data" / "configs"


def gpt2(n_layer, d, n_head, d_ff, n_ctx, vocab):
    return build("gpt2", n_layer, d, n_head=n_head, d_ff=d_ff, n_ctx=n_ctx, vocab_size=vocab)


def _tiny(name: str, **shrink):
    """A published config (tests/data/configs, SOURCE.md) shrunk to a few layers and widths:
    the same parts (latent attention, windows, sinks, q/k norm, MoE with biases, 4 norms)."""
    cfg = json.loads((CONFIGS / f"{name}.json").read_text())
    cfg.update(shrink)
    if "layer_types" in cfg:
        cfg["layer_types"] = cfg["layer_types"][:cfg["num_hidden_layers"]]
    from budget.models.hf_config import from_config

    return from_config(cfg, name=name)


ARCHS = [
    gpt2(1, 8, 1, 32, 32, 256),
    gpt2(2, 48, 3, 200, 16, 1000),  # d_ff not 4 d: the count must still match
    build("llama", 2, 64, n_head=8, n_kv_head=2, vocab_size=256, n_ctx=64),  # GQA 4:1
    build("llama", 2, 64, n_head=4, n_kv_head=1, vocab_size=256, n_ctx=32),  # MQA
    build("llama", 1, 48, n_head=4, head_dim=16, vocab_size=300, n_ctx=16, bias="qkv",
          tied_embeddings=True),  # free head_dim (q width 64 != d_model 48), Qwen2 biases
    build("gpt2", 2, 64, n_head=4, vocab_size=256, n_ctx=32, mlp="gated", activation="gelu"),
    _tiny("deepseek-v2-lite", hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
          kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
          intermediate_size=96, moe_intermediate_size=32, n_routed_experts=4,
          num_experts_per_tok=2, vocab_size=128, max_position_embeddings=32),
    _tiny("deepseek-v3", hidden_size=64, num_hidden_layers=3, first_k_dense_replace=1,
          num_attention_heads=2, q_lora_rank=24, kv_lora_rank=16, qk_nope_head_dim=8,
          qk_rope_head_dim=4, v_head_dim=8, intermediate_size=96, moe_intermediate_size=32,
          n_routed_experts=4, num_experts_per_tok=2, vocab_size=128,
          max_position_embeddings=32),
    _tiny("gpt-oss-20b", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
          num_key_value_heads=2, head_dim=16, intermediate_size=48, num_local_experts=4,
          num_experts_per_tok=2, sliding_window=8, vocab_size=128,
          max_position_embeddings=32),
    _tiny("gemma-3-1b", hidden_size=64, num_hidden_layers=6, num_attention_heads=2,
          num_key_value_heads=1, head_dim=32, intermediate_size=96, sliding_window=8,
          vocab_size=128, max_position_embeddings=32),
    _tiny("qwen3-30b-a3b", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
          num_key_value_heads=2, head_dim=16, moe_intermediate_size=32, num_experts=4,
          num_experts_per_tok=2, vocab_size=128, max_position_embeddings=32),
    build("llama", 3, 64, n_head=4, vocab_size=128, n_ctx=32, layer_pattern="SSG",
          ssm_d_inner=128, ssm_d_state=16, ssm_heads=4),  # hybrid Mamba-2 / attention
]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: (a.name or a.describe())[:40])
def test_parameter_counts_equal_the_architecture(arch):
    model = build_model(arch)
    assert count_parameters(model) == arch.params_total()
    assert count_parameters(model, non_embedding=True) == arch.params_non_embedding()


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: (a.name or a.describe())[:40])
def test_forward_is_causal_and_trains(arch):
    """Changing a later token must not change earlier logits; the loss is finite and backward
    runs through every part."""
    torch.manual_seed(0)
    model = build_model(arch).eval()
    T = min(arch.n_ctx, 16)
    idx = torch.randint(0, arch.vocab_size, (1, T))
    changed = idx.clone()
    changed[0, 10] = (idx[0, 10] + 1) % arch.vocab_size
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[0, :10], b[0, :10], atol=1e-5)
    assert not torch.allclose(a[0, 10:], b[0, 10:])
    _, loss = model.train()(idx, idx)
    assert loss is not None and math.isfinite(loss.item())
    loss.backward()
    # every parameter but routed experts no token chose (16 tokens, top-2 of 4) has a gradient
    assert all(p.grad is not None for name, p in model.named_parameters()
               if ".experts." not in name)


def test_published_models_on_meta():
    """GPT-2 small 124,439,808, Llama-2-7B 6,738,415,616 (hub config.json counts), and
    gpt-oss-20b 20,914,757,184 (model card) built in torch on the meta device."""
    for name, count in (("gpt2", 124_439_808), ("llama-2-7b", 6_738_415_616)):
        with torch.device("meta"):
            model = build_model(get_model(name).arch)
        assert count_parameters(model) == count
    with torch.device("meta"):
        model = build_model(load_config(CONFIGS / "gpt-oss-20b.json"))
    assert count_parameters(model) == 20_914_757_184


def test_every_preset_shape_matches_planner():
    for preset in ("smoke", "cpu"):
        for family in ("gpt2", "llama"):
            for point in design_sweep(PRESETS[preset], family=family):
                with torch.device("meta"):
                    model = build_model(point.config.architecture)
                assert count_parameters(model) == point.config.params
                assert point.config.params == point.config.architecture.params_total()


@pytest.mark.parametrize("arch", ARCHS[:6] + [gpt2(12, 768, 12, 3072, 1024, 50257),
                                              shape_for_params(1e9, "gpt2")],
                         ids=lambda a: a.describe()[:40])
def test_measured_training_flops_match_planner_within_2_percent(arch):
    """FlopCounterMode on the meta device counts SDPA as bmm over the full T x T (as planned)."""
    assert measured_training_flops_per_token(arch) == pytest.approx(
        arch.training_flops_per_token(), rel=0.02)


def _without_attention(arch, seq_len=None):
    terms = arch.forward_flops_terms(seq_len)
    return 3 * (sum(terms.values()) - terms["attention_scores"] - terms["attention_values"])


def test_flops_at_shorter_sequence_match_seq_len_argument():
    arch = gpt2(2, 64, 4, 256, 128, 256)
    assert measured_training_flops_per_token(arch, seq_len=32, batch=2) == pytest.approx(
        arch.training_flops_per_token(32), rel=0.02)
    # and the attention term is real: dropping it would be off by more than 2%
    assert measured_training_flops_per_token(arch) != pytest.approx(_without_attention(arch),
                                                                    rel=0.02)


def test_why_the_count_runs_on_meta():
    """On real CPU tensors torch dispatches SDPA to a fused kernel FlopCounterMode does not count
    (torch 2.13: only addmm/mm are seen), so the attention term would be missing; on `meta` SDPA
    decomposes into counted bmm calls."""
    from torch.utils.flop_counter import FlopCounterMode

    arch = gpt2(2, 64, 4, 256, 128, 256)
    model, idx = build_model(arch), torch.zeros((1, 128), dtype=torch.long)
    counter = FlopCounterMode(display=False)
    with counter:
        model(idx, idx)[1].backward()
    on_cpu = counter.get_total_flops() / 128
    if on_cpu == pytest.approx(arch.training_flops_per_token(), rel=0.02):
        pytest.skip("this torch counts the fused CPU attention kernel; meta is no longer needed")
    assert on_cpu == pytest.approx(_without_attention(arch), rel=0.02)


def test_a_gpt2_checkpoint_of_the_replaced_module_loads():
    """A killed GPT-2 point's checkpoint (nanoGPT names: ln_1, attn.c_attn, mlp.c_fc, ln_f)
    maps onto this builder's parameters one to one (experiments.model.legacy_names)."""
    from experiments.model import legacy_names

    model = build_model(gpt2(2, 32, 2, 128, 16, 256))
    old_names = {k.replace(".norm_1.", ".ln_1.").replace(".mixer.qkv.", ".attn.c_attn.")
                 .replace(".mixer.o.", ".attn.c_proj.").replace(".norm_2.", ".ln_2.")
                 .replace(".mlp.up.", ".mlp.c_fc.").replace(".mlp.down.", ".mlp.c_proj.")
                 .replace("norm.weight", "ln_f.weight").replace("norm.bias", "ln_f.bias")
                 if not k.startswith("blocks") else
                 k.replace(".norm_1.", ".ln_1.").replace(".mixer.qkv.", ".attn.c_attn.")
                 .replace(".mixer.o.", ".attn.c_proj.").replace(".norm_2.", ".ln_2.")
                 .replace(".mlp.up.", ".mlp.c_fc.").replace(".mlp.down.", ".mlp.c_proj."): v
                 for k, v in model.state_dict().items()}
    assert "ln_f.weight" in old_names and "blocks.0.attn.c_attn.weight" in old_names
    assert legacy_names(old_names).keys() == model.state_dict().keys()


def test_sweep_design_in_the_llama_family():
    grid = design_sweep(PRESETS["smoke"], family="llama")
    assert grid
    for point in grid:
        c = point.config
        assert c.family == "llama" and c.architecture.mlp == "gated"


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


def test_llama_points_are_estimated_and_cached_as_llama():
    """The sweep's time estimate uses the point's own FLOPs (a 6-layer d=272 SwiGLU point was
    estimated with GPT-2's formula, 19% low), and the step-plan cache keys a llama point apart
    from a GPT-2 point of the same widths (their timings differ)."""
    from dataclasses import replace

    from experiments.sweeps.design import ESTIMATED_MFU, STEP_OVERHEAD_S, point_for
    from experiments.training.autotune import _key

    arch = build("llama", 6, 272, n_head=4, d_ff=736, vocab_size=256, n_ctx=64)
    point = point_for(arch, 1e13, PRESETS["cpu"], peak_flops_per_s=1e12)
    c = point.config
    expected = (arch.training_flops_per_token() * c.tokens / (1e12 * ESTIMATED_MFU)
                + c.steps * STEP_OVERHEAD_S)
    assert point.estimated_seconds == pytest.approx(expected, rel=1e-12)
    as_gpt2 = replace(c, family="gpt2", n_kv_head=0, head_dim=0)
    cpu = torch.device("cpu")
    assert _key(c, cpu, None, False) != _key(as_gpt2, cpu, None, False)
    assert _key(as_gpt2, cpu, None, False).endswith("|False")  # GPT-2 keys as they were
