"""`budget flops` through CliRunner: JSON keys, numbers from budget.models.arch, exit codes."""

import json

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.models.families import build


def run(*args):
    return CliRunner().invoke(main, ["flops", *args])


def test_gpt3_175b_on_300b_tokens():
    """Brown et al. 2020 Table D.1: GPT-3 175B (96 layers, d 12288, 96 heads, n_ctx 2048) on 300B
    tokens is 3.14e23 FLOPs by 6ND. Our 6·N_total·D lands within 1%; the exact per-token count
    (attention context and logits included) is a few percent above."""
    res = run("--family", "gpt2", "--n-layer", "96", "--d-model", "12288", "--n-head", "96",
              "--tokens", "3e11", "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["training_flops_6nd"] == pytest.approx(3.14e23, rel=0.01)
    assert d["training_flops"] > d["training_flops_6nd"]
    shape = build("gpt2", 96, 12288, n_head=96)
    assert d["params_total"] == shape.params_total()
    assert d["training_flops_per_token"] == shape.training_flops_per_token()
    assert d["training_flops_per_token_recompute"] == pytest.approx(4 / 3 * d["training_flops_per_token"])
    assert d["attention_context_flops_per_token"] == 4 * 96 * 2048 * 12288


def test_transformer_json_keys_and_defaults():
    res = run("--family", "gpt2", "--n-layer", "12", "--d-model", "768", "--json")
    d = json.loads(res.output)
    assert {k: d["shape"][k] for k in ("n_layer", "d_model", "n_head", "d_ff", "n_ctx",
                                       "vocab_size")} == {"n_layer": 12, "d_model": 768,
                                                          "n_head": 12, "d_ff": 3072,
                                                          "n_ctx": 2048, "vocab_size": 50257}
    assert d["shape"]["mlp"] == "plain" and d["family"] == "gpt2"
    assert set(d) >= {"params_total", "params_non_embedding", "forward_flops_per_token",
                      "forward_flops_per_token_no_attention", "training_flops_per_token",
                      "training_flops_per_token_no_attention", "training_flops_per_token_recompute",
                      "tokens"}
    assert d["tokens"] is None and "training_flops" not in d


def test_params_picks_a_shape():
    res = run("--params", "1.3e9", "--json")
    d = json.loads(res.output)
    assert d["params_total"] == pytest.approx(1.3e9, rel=0.03)
    assert d["shape"]["d_model"] % 64 == 0


def test_transformer_table():
    res = run("--family", "gpt2", "--n-layer", "12", "--d-model", "768", "--tokens", "1e10")
    assert res.exit_code == 0
    assert "non-embedding 85,056,000" in res.output
    assert "6ND" in res.output and "recompute (4x)" in res.output


def test_layer_table_json():
    res = run("--layers", "efficientnet-b0", "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["totals"]["params"] == 5_288_548
    assert d["totals"]["forward_macs"] == sum(row["macs"] for row in d["layers"])
    assert d["totals"]["training_flops"] == 3 * d["totals"]["forward_flops"]
    assert {"stage", "name", "output_shape", "params", "macs", "flops", "activation_bytes"} <= set(d["layers"][0])
    detail = json.loads(run("--layers", "efficientnet-b0", "--detail", "--json").output)
    assert len(detail["layers"]) > len(d["layers"])
    assert detail["totals"] == d["totals"]


def test_layer_table_options(tmp_path):
    folded = json.loads(run("--layers", "resnet-50", "--batch-norm", "folded", "--json").output)
    train = json.loads(run("--layers", "resnet-50", "--json").output)
    assert folded["totals"]["forward_macs"] == train["totals"]["forward_macs"]
    assert folded["totals"]["forward_flops"] < train["totals"]["forward_flops"]
    small = json.loads(run("--layers", "resnet-50", "--image-size", "112", "--json").output)
    assert small["input_shape"] == [3, 112, 112]
    text = run("--layers", "resnet-18").output
    assert "conv2_x.0" in text and "total" in text and "MACs" in text


@pytest.mark.parametrize("args, message", [
    ((), "--n-layer with --d-model"),
    (("--n-layer", "0", "--d-model", "64"), "'0' must be a whole number >= 1"),
    (("--n-layer", "2", "--d-model", "100"), "d_model 100 is not a multiple of the llama family's head_dim 128; give n_head (--n-head)"),
    (("--n-layer", "2", "--d-model", "128", "--n-head", "3"), "n_head 3 does not divide d_model 128; give head_dim too"),
    (("--params", "-5"), "'-5' must be > 0"),
    (("--params", "1e9", "--n-layer", "3"), "either a parameter count or --n-layer/--d-model"),
    (("--tokens", "nan", "--n-layer", "2", "--d-model", "64"), "not finite"),
    (("--layers", "nope.toml"), "neither a file nor a built-in network"),
    (("--layers", "resnet-50", "--n-layer", "3"), "cannot be combined"),
    (("--layers", "resnet-50", "--batch-norm", "eval"), "'eval' is not one of"),
    (("--n-layer", "2", "--d-model", "64", "--detail"), "apply only with --layers"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    res = run(*args)
    assert res.exit_code == 2
    err = res.stderr if hasattr(res, "stderr") else res.output
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_help_has_example():
    res = run("--help")
    assert res.exit_code == 0 and "Example: budget flops" in res.output
