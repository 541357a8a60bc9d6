"""Config readers for the 2024-2025 decoders against published counts and cache sizes.

Configs: tests/data/configs/*.json (SOURCE.md names each hub repository). Totals are the
safetensors parameter totals shown on each hub page; "active" counts as the releasers state them
leave out the token-embedding lookup (gpt-oss model card Table 1: 20.91B total, 3.61B active;
DeepSeek-V2 arXiv:2405.04434 §3.1 / the V2-Lite card: 15.7B total, 2.4B active).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.models.hf_config import from_config, load_config
from budget.models.named import get_model

CONFIGS = Path(__file__).parent / "data" / "configs"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def _arch(name: str):
    return load_config(CONFIGS / f"{name}.json")


def _active_without_embedding(a) -> int:
    return a.params_active() - a.vocab_size * a.d_model


@pytest.mark.parametrize("name,total,active", [
    ("deepseek-v2-lite", 15_706_484_224, 2_661_150_208),  # hub: 15.7B; card 2.4B w/o embedding
    ("qwen3-30b-a3b", 30_532_122_624, 3_353_032_704),  # hub safetensors 30,532,122,624; 3.3B
    ("qwen3-8b", 8_190_735_360, 8_190_735_360),  # hub safetensors 8,190,735,360
    ("gemma-2-9b", 9_241_705_984, 9_241_705_984),  # hub safetensors 9,241,705,984
    ("gemma-3-1b", 999_885_952, 999_885_952),  # hub safetensors 999,885,952
    ("gpt-oss-20b", 20_914_757_184, 4_187_440_704),  # model card 20.91B total
    ("phi-3-mini-4k", 3_821_079_552, 3_821_079_552),  # hub safetensors 3,821,079,552
    ("mistral-7b-v0.1", 7_241_732_096, 7_241_732_096),  # hub safetensors 7,241,732,096
])
def test_config_counts_are_the_published_ones(name, total, active):
    """Exact totals from the hub's safetensors counts (SOURCE.md); active = top-k experts."""
    a = _arch(name)
    assert (a.params_total(), a.params_active()) == (total, active)


def test_active_counts_as_the_cards_state_them():
    """gpt-oss card Table 1: 3.61B active; DeepSeek-V2-Lite card: 2.4B activated; Qwen3 3.3B."""
    assert round(_active_without_embedding(_arch("gpt-oss-20b")) / 1e7) == 361
    assert 2.4e9 <= _active_without_embedding(_arch("deepseek-v2-lite")) < 2.5e9  # 2.45B


def test_deepseek_v3_is_671b_total_37b_active():
    """DeepSeek-V3 (arXiv:2412.19437 abstract): 671B total, 37B activated per token (rounded;
    the multi-token-prediction module is outside the 671B and not counted here)."""
    a = _arch("deepseek-v3")
    assert a.params_total() == pytest.approx(671e9, rel=0.005)
    assert round(_active_without_embedding(a) / 1e9) == 37
    assert a.params_active() == pytest.approx(37e9, rel=0.02)


def test_mla_caches_the_latent_and_the_rope_key():
    """DeepSeek-V2 §2.1.3 Table 1: MLA caches (d_c + d_h^R) l = (512 + 64) x 61 values per token
    (70,272 B in bf16); the same model read as multi-head would cache 2 x 128 heads x 192..."""
    a = _arch("deepseek-v3")
    assert a.kv_cache_bytes_per_token(2.0) == (512 + 64) * 61 * 2
    assert a.kv_cache_bytes_per_token(2.0, 100_000) == (512 + 64) * 61 * 2  # no window
    as_mha = 2 * 128 * 128 * 61 * 2  # K and V of 128 heads x 128 (the v head dim), bf16
    assert as_mha / a.kv_cache_bytes_per_token(2.0) > 50


def test_sliding_window_caps_the_cache_at_long_context():
    """gpt-oss-20b: 12 full layers (2 x 8 KV heads x 64 x 2 B = 2,048 B/token each) and 12
    sliding ones keeping 128 tokens (config.json sliding_window, layer_types)."""
    a = _arch("gpt-oss-20b")
    assert a.pattern == "LG"
    full = 12 * 2048
    assert a.kv_cache_bytes_per_token(2.0, 100) == 24 * 2048  # shorter than the window: all kept
    assert a.kv_cache_bytes_per_token(2.0, 8192) == full + 12 * 2048 * 128 / 8192
    # Mistral 7B v0.1: every layer windowed at 4,096 (Jiang et al. 2023 §2, rolling buffer)
    m = _arch("mistral-7b-v0.1")
    assert m.kv_cache_bytes_per_token(2.0, 4096) == 32 * 2 * 1024 * 2
    assert m.kv_cache_bytes_per_token(2.0, 32768) == 32 * 2 * 1024 * 2 / 8


def test_window_caps_attention_flops():
    """Windowed layers attend min(T, window) positions (module convention of components)."""
    g = _arch("gemma-2-9b")
    short, long = (g.forward_flops_terms(T)["attention_scores"] for T in (4096, 8192))
    # 21 local layers stay at 4,096 positions, 21 global ones double
    assert long / short == pytest.approx((21 * 4096 + 21 * 8192) / (42 * 4096))


def test_named_models_equal_their_configs():
    """The named entries are the configs' architectures (one source each, SOURCE.md)."""
    for named, file in [("deepseek-v3", "deepseek-v3"), ("deepseek-v2-lite", "deepseek-v2-lite"),
                        ("gpt-oss-20b", "gpt-oss-20b"), ("gemma-2-9b", "gemma-2-9b"),
                        ("gemma-3-1b", "gemma-3-1b"), ("qwen3-8b", "qwen3-8b"),
                        ("qwen3-30b-a3b", "qwen3-30b-a3b"), ("phi-3-mini", "phi-3-mini-4k"),
                        ("mistral-7b", "mistral-7b-v0.1")]:
        assert get_model(named).arch.with_(name="") == _arch(file).with_(name="")


def test_unknown_model_type_names_the_supported_ones():
    result = run("flops", "--config", str(_write_tmp({"model_type": "bert"})))
    assert result.exit_code == 2
    assert "deepseek_v3" in result.output and "gpt_oss" in result.output
    assert "Traceback" not in result.output


def test_absurd_sizes_are_refused_in_one_line(tmp_path):
    """10^12 layers: refused while reading, before any count or search."""
    cfg = json.loads((CONFIGS / "qwen3-8b.json").read_text())
    cfg["num_hidden_layers"] = 10**12
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    for command in ("flops", "serve", "memory"):
        extra = ["--gpu", "h100"] if command == "serve" else []
        result = run(command, "--config", str(path), *extra)
        assert result.exit_code == 2, result.output
        assert "num_hidden_layers=1000000000000" in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_unmodelled_keys_are_refused():
    cfg = json.loads((CONFIGS / "qwen3-30b-a3b.json").read_text())
    with pytest.raises(Exception, match="mlp_only_layers"):
        from_config({**cfg, "mlp_only_layers": [0]})


def _write_tmp(cfg: dict) -> Path:
    import tempfile

    folder = Path(tempfile.mkdtemp())
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder / "config.json"


def test_flops_for_deepseek_v3_config_prints_its_counts():
    result = run("flops", "--config", str(CONFIGS / "deepseek-v3.json"), "--json")
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    assert d["params_total"] == 671_026_419_200
    assert d["shape"]["attention"] == "latent"


@pytest.mark.parametrize("shape", [
    ["--n-layer", "2", "--d-model", "1000"],  # 1000 is not a multiple of the 128-dim heads
    ["--n-layer", "2"],
    ["--n-layer", "2", "--d-model", "1024", "--n-head", "3"],
])
def test_every_command_refuses_the_same_shapes(shape):
    """One rule (budget.models.choice.resolve_model) for flops, memory, serve and roofline."""
    for command in (["flops"], ["memory"], ["serve"], ["roofline"]):
        result = run(*command, *shape)
        assert result.exit_code == 2, (command, result.output)
        assert len(result.output.strip().splitlines()) == 1


def test_every_command_accepts_the_same_shape():
    shape = ["--n-layer", "2", "--d-model", "1024", "--n-head", "8", "--n-kv-head", "2"]
    totals = set()
    for command in ("flops", "serve", "roofline"):
        result = run(command, *shape, "--json")
        assert result.exit_code == 0, (command, result.output)
        d = json.loads(result.output)
        totals.add(d.get("params_total"))
    assert get_model("llama-7b").arch.params_total() == 6_738_415_616  # now everywhere
    assert len(totals - {None}) == 1


def test_serve_prices_the_mla_cache():
    """DeepSeek-V3 served: 70,272 B/token (latent + rope key, bf16), held whole on every GPU."""
    result = run("serve", "--model", "deepseek-v3", "--gpu", "h200", "--num-gpus", "8",
                 "--precision", "fp8", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["kv_bytes_per_token"] == 70_272
    gpt_oss = json.loads(run("serve", "--model", "gpt-oss-20b", "--gpu", "h100",
                             "--input-tokens", "8000", "--output-tokens", "192", "--json").output)
    assert gpt_oss["kv_bytes_per_token"] == 12 * 2048 + 12 * 2048 * 128 / 8192


@pytest.mark.parametrize("name", ["mixtral-8x7b", "gemma-2-9b", "deepseek-v3", "gpt2"])
@pytest.mark.parametrize("recompute", ["none", "selective"])
def test_one_activation_formula(name, recompute):
    """`budget memory` (training/memory.py) and the layouts (training/parallel.py) store the same
    activations on one GPU (Korthikanti et al. 2022 §4.1 per part), router logits included."""
    from budget.training.memory import activation_bytes
    from budget.training.parallel import Layout, first_stage_activation_bytes

    arch = get_model(name).arch
    one_gpu = Layout(recompute=recompute, flash=False)
    assert activation_bytes(arch, 1, 2048, recompute) == pytest.approx(
        first_stage_activation_bytes(arch, one_gpu, 2048), rel=1e-12)


def test_window_and_layer_pattern_by_flags():
    """A Gemma-2-like local/global stack given by flags: 2 local layers attend 512 positions, 2
    global ones all 4,096 (4 x positions x q width FLOPs each, unhalved)."""
    result = run("flops", "--n-layer", "4", "--d-model", "1024", "--window", "512",
                 "--layer-pattern", "LG", "--seq-len", "4096", "--json")
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    assert d["attention_context_flops_per_token"] == (2 * 512 + 2 * 4096) * 4 * 1024
    bad = run("serve", "--n-layer", "4", "--d-model", "1024", "--layer-pattern", "LX")
    assert bad.exit_code == 2 and "'X'" in bad.output
