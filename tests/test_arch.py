"""Architecture counts and FLOP terms, named models and config.json against published numbers.

Sources: the safetensors parameter totals shown on each model's Hugging Face page (the
organisation that released it) and the shapes of its config.json; Brown et al. 2020 Table 2.1
for GPT-3; Biderman et al. 2023 (Pythia) Table 1 / model card for Pythia-70M (70,426,624).
"""

import json

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.errors import BudgetError
from budget.models.families import build, shape_for_params
from budget.models.hf_config import from_config, load_config
from budget.models.named import MODELS, get_model


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_llama_2_7b():
    """meta-llama/Llama-2-7b-hf: 32 x 4096, 32 heads, d_ff 11008, vocab 32000 -> 6,738,415,616."""
    a = get_model("llama-2-7b").arch
    assert a.params_total() == 6_738_415_616
    assert a.params_non_embedding() == 6_738_415_616 - 2 * 32000 * 4096


def test_mixtral_total_and_active():
    """mistralai/Mixtral-8x7B-v0.1: 46,702,792,704 total; 12,879,925,248 active (top-2 of 8)."""
    a = get_model("mixtral-8x7b").arch
    assert a.params_total() == 46_702_792_704
    assert a.params_active() == 12_879_925_248


def test_gpt2_small_is_the_gpt2_family_preset():
    """openai-community/gpt2: 124,439,808 (tied head, learned positions of 1024); nanoGPT
    model.py reports 123.65M because it subtracts the 786,432 position embeddings."""
    a = build("gpt2", 12, 768, n_head=12, n_ctx=1024, vocab_size=50257)
    assert a.params_total() == 124_439_808 == get_model("gpt2").arch.params_total()
    assert a.params_total() - 1024 * 768 == 123_653_376
    assert a.with_(name="gpt2") == get_model("gpt2").arch


def test_non_embedding_count_is_kaplans_12_l_d_squared():
    """Kaplan et al. 2020 §2.1: N ~= 12 n_layer d_model^2 non-embedding (biases and norms aside)."""
    n = build("gpt2", 12, 768, n_head=12, n_ctx=1024).params_non_embedding()
    assert n == 85_056_000
    assert n / (12 * 12 * 768**2) == pytest.approx(1.0, rel=2e-3)


def test_forward_flops_match_nanogpt_transformer_sizing():
    """nanoGPT transformer_sizing.ipynb: GPT-2 124M forward FLOPs per 1024-token sequence =
    291,648,307,200 (matmuls incl. attention and logits); x3 for training = 874,944,921,600."""
    a = build("gpt2", 12, 768, n_head=12, n_ctx=1024)
    assert a.forward_flops_per_token() * 1024 == 291_648_307_200
    assert a.training_flops_per_token() * 1024 == 874_944_921_600


@pytest.mark.parametrize("n_layer,d,m_published", [
    (8, 512, 352e6), (12, 768, 963e6), (24, 1024, 3.02e9), (24, 2048, 9.66e9),
    (32, 4096, 45.1e9), (40, 5120, 85.6e9), (80, 8192, 419e9)])
def test_deepseek_model_scale_table3(n_layer, d, m_published):
    """DeepSeek LLM (arXiv:2401.02954) eq. 2 and Table 3: non-embedding FLOPs/token
    M = 72 n_layer d^2 + 12 n_layer d l_seq at l_seq = 4096 equals our training count without
    the logits term (GPT-2 blocks, d_ff = 4d)."""
    a = build("gpt2", n_layer, d, n_ctx=4096, vocab_size=102400)
    m = a.training_flops_per_token() - 3 * a.forward_flops_terms()["logits"]
    assert m == 72 * n_layer * d * d + 12 * n_layer * d * 4096
    assert m == pytest.approx(m_published, rel=0.01)


@pytest.mark.parametrize("model", [m for m in MODELS if m.published_exact], ids=lambda m: m.name)
def test_every_exact_published_count(model):
    assert model.arch.params_total() == model.published_params


@pytest.mark.parametrize("model", [m for m in MODELS if m.name.startswith("gpt3")],
                         ids=lambda m: m.name)
def test_gpt3_family_is_within_two_percent_of_table_2_1(model):
    """Brown et al. 2020 Table 2.1 prints rounded n_params (125M ... 175.0B); ours differ by at most
    1.8% (Medium 355.9M vs "350M", 2.7B 2.65B); 175B is 174.6B, as Table D.1 has it."""
    assert model.arch.params_total() == pytest.approx(model.published_params, rel=0.02)


def test_flop_terms_are_named_and_the_convention_halves_attention():
    """Llama-2-7B at T = 4096: QK^T and AV cost 2 T h hd each per layer (unhalved, PaLM App. B);
    causal (Megatron, FlashAttention) counts T/2."""
    a = get_model("llama-2-7b").arch
    full, causal = a.forward_flops_terms(4096), a.forward_flops_terms(4096, "causal")
    assert set(full) == {"qkv", "attention_scores", "attention_values", "attention_output", "mlp",
                         "experts", "router", "logits"}
    assert full["attention_scores"] == 2 * 32 * 4096 * 4096
    assert causal["attention_scores"] == full["attention_scores"] / 2
    assert full["mlp"] == 2 * 32 * 3 * 4096 * 11008 and full["logits"] == 2 * 4096 * 32000
    assert a.training_flops_per_token(4096, recompute=True) == pytest.approx(
        4 / 3 * a.training_flops_per_token(4096))
    with pytest.raises(BudgetError, match="convention"):
        a.forward_flops_terms(4096, "halved")


def _write(tmp_path, cfg, name="m"):
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "config.json"
    path.write_text(json.dumps(cfg))
    return path


LLAMA3_8B = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
             "vocab_size": 128256, "max_position_embeddings": 8192, "tie_word_embeddings": False}


def test_config_json_gives_the_named_models_count(tmp_path):
    """Llama-3-8B's config.json keys (8,030,261,248); Mixtral's and Qwen2.5-0.5B's and GPT-2's."""
    assert load_config(_write(tmp_path, LLAMA3_8B)).params_total() == 8_030_261_248
    mixtral = {**LLAMA3_8B, "model_type": "mixtral", "vocab_size": 32000,
               "num_local_experts": 8, "num_experts_per_tok": 2}
    arch = from_config(mixtral)
    assert (arch.params_total(), arch.params_active()) == (46_702_792_704, 12_879_925_248)
    qwen = {"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24,
            "num_attention_heads": 14, "num_key_value_heads": 2, "intermediate_size": 4864,
            "vocab_size": 151936, "max_position_embeddings": 32768, "tie_word_embeddings": True}
    assert from_config(qwen).params_total() == get_model("qwen2.5-0.5b").arch.params_total()
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024,
            "vocab_size": 50257, "n_inner": None}
    assert from_config(gpt2).params_total() == 124_439_808
    flops = run("flops", "--config", str(_write(tmp_path, LLAMA3_8B, "x")), "--json")
    named = run("flops", "--model", "llama-3-8b", "--json")
    assert json.loads(flops.stdout)["params_total"] == json.loads(named.stdout)["params_total"]


def test_gpt_neox_pythia_70m():
    """EleutherAI/pythia-70m config.json: 70,426,624 params, 18,915,328 non-embedding (Pythia
    model card; LayerNorm, rotary, biases, untied embed_out)."""
    cfg = {"model_type": "gpt_neox", "hidden_size": 512, "num_hidden_layers": 6,
           "num_attention_heads": 8, "intermediate_size": 2048, "vocab_size": 50304,
           "max_position_embeddings": 2048, "rotary_pct": 0.25, "use_parallel_residual": True}
    arch = from_config(cfg)
    assert arch.params_total() == 70_426_624
    assert arch.params_non_embedding() == 18_915_328


@pytest.mark.parametrize("change,fragment", [
    ({"hidden_size": None}, "missing key 'hidden_size'"),
    ({"model_type": "t5"}, "model_type 't5' is not read"),
    ({"num_key_value_heads": 5}, "num_attention_heads=32 is not a multiple of num_key_value_heads=5"),
    ({"model_type": "mixtral", "num_local_experts": 2, "num_experts_per_tok": 3},
     "num_experts_per_tok=3 must be between 1 and num_local_experts=2"),
])
def test_config_errors_exit_2_naming_the_key(tmp_path, change, fragment):
    cfg = {k: v for k, v in {**LLAMA3_8B, **change}.items() if v is not None}
    result = run("flops", "--config", str(_write(tmp_path, cfg)))
    assert result.exit_code == 2 and result.stdout == ""
    assert fragment in result.stderr and result.stderr.count("\n") == 1


def test_missing_config_file_is_one_line(tmp_path):
    result = run("memory", "--config", str(tmp_path / "nope.json"))
    assert result.exit_code == 2 and "no such file" in result.stderr


@pytest.mark.parametrize("n", [1e9, 7e9, 7e10, 4e11])
def test_proposed_llama_shapes_split_over_tensor_parallelism(n):
    a = shape_for_params(n)
    assert abs(a.params_total() / n - 1) <= 0.02
    assert a.n_head % 8 == 0 and a.n_kv_head == 8 and a.mlp == "gated" and a.norm == "rmsnorm"


def test_one_shape_rule_names_what_was_given():
    """flops and memory build shapes by the same rule; errors name the values the user gave."""
    assert build("llama", 32, 4096, d_ff=11008, vocab_size=32000, n_ctx=4096).params_total() \
        == 6_738_415_616
    for command in ("flops", "memory"):
        result = run(command, "--n-layer", "2", "--d-model", "200")
        assert result.exit_code == 2 and "d_model 200" in result.stderr
        assert "n_head=3" not in result.stderr
        ok = run(command, "--n-layer", "2", "--d-model", "200", "--n-head", "4", "--json")
        assert ok.exit_code == 0, ok.output
    with pytest.raises(BudgetError, match="n_head 3 does not divide d_model 128"):
        build("llama", 2, 128, n_head=3)


def test_models_command_table_and_json():
    result = run("models", "--json")
    rows = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    assert len(rows) >= 25 and rows["llama-3-8b"]["params_total"] == 8_030_261_248
    assert "huggingface.co/meta-llama/Meta-Llama-3-8B" in rows["llama-3-8b"]["source"]
    table = run("models", "mixtral-8x7b").stdout
    assert "46,702,792,704" in table and "12.9B" in table
    assert run("models", "llama-9").exit_code == 2


def test_flops_states_the_convention():
    out = run("flops", "--model", "llama-3-8b", "--attention", "causal").stdout
    assert "causal: attention scores and values counted over T/2 positions" in out


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_pruned_shape_search_finds_the_full_scans_shape(family, monkeypatch):
    """The family search stops widening once it is past the aspect ratio (ASPECT_PRUNE_MARGIN);
    with pruning off (an infinite margin) it scans every width: the shapes are the same."""
    from budget.models import families

    sizes = [10 ** (5 + k * 0.5) for k in range(15)]  # 1e5 .. 1e12
    pruned = [families.shape_for_params(n, family) for n in sizes]
    monkeypatch.setattr(families, "ASPECT_PRUNE_MARGIN", float("inf"))
    assert [families.shape_for_params(n, family) for n in sizes] == pruned
