"""Roofline known answers (sources in each docstring) and the PNG plot."""

import struct
import subprocess
import sys

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.hardware import roofline as R
from budget.hardware.catalog import load_catalog
from budget.models.named import get_model


def _resolve_model(name: str):
    return get_model(name).arch


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(use_env=False)


def test_a100_ridge_is_153(catalog):
    """A100-80GB: 312 TFLOP/s dense bf16 / 2,039 GB/s = 153.0 FLOP/byte (NVIDIA A100 datasheet r4;
    seed 000 §19.2); H100 SXM 989.5 / 3,350 = 295.4."""
    a100, h100 = catalog.get("a100"), catalog.get("h100")
    assert R.ridge_point(a100.peak_flops("bf16"), a100.memory_bandwidth_gbs * 1e9) == \
        pytest.approx(153.0, abs=0.05)
    assert R.ridge_point(h100.peak_flops("bf16"), h100.memory_bandwidth_gbs * 1e9) == \
        pytest.approx(295.4, abs=0.05)


def test_gemm_intensity_formula():
    """AI = 2mkn / (b(mk + kn + mn)); square n: 2n/(3b): 4096 fp16 = 1,365.3, fp32 = 682.7
    (seed 000 §17.1 2mkn convention; the seed's "M/2" for fp32 is M/6, errata §8.1)."""
    assert R.gemm_intensity(4096, 4096, 4096, 2) == pytest.approx(1365.33, abs=0.01)
    assert R.gemm_intensity(4096, 4096, 4096, 4) == pytest.approx(682.67, abs=0.01)
    assert R.gemm_intensity(10, 20, 30, 4) == pytest.approx(2 * 10 * 20 * 30 / (4 * (200 + 600 + 300)))


@pytest.mark.parametrize("batch", [1, 2, 4, 8])
def test_linear_small_batch_limit_is_b_over_2_in_fp32(batch):
    """A d x d fp32 linear layer over B tokens: AI = 2Bd^2 / (4(2Bd + d^2)) -> B/2 for B << d
    (seed 000 §19.5)."""
    assert R.linear_intensity(batch, 65536, 65536, 4) == pytest.approx(batch / 2, rel=1e-3)


def test_linear_bf16_d4096_and_its_ridge_crossing():
    """bf16 d = 4096: AI(B) = Bd/(2B + d): 1.0 at B = 1, 152.7 at B = 165; crosses the A100 ridge
    at B ~ 165 and the H100 ridge at B ~ 345 (serving_energy sheet §1, derived from seed §19.5)."""
    assert R.linear_intensity(1, 4096, 4096, 2) == pytest.approx(4096 / 4098)
    assert R.linear_intensity(165, 4096, 4096, 2) == pytest.approx(152.7, abs=0.05)
    assert R.crossover_tokens(4096, 4096, 153.0, 2, 2) == pytest.approx(165.4, abs=0.2)
    assert R.crossover_tokens(4096, 4096, 295.4, 2, 2) == pytest.approx(345, abs=1.5)
    assert R.crossover_tokens(64, 64, 153.0, 2, 2) is None  # too narrow ever to cross


def test_decode_roofline_llama2_7b(catalog):
    """Decode at batch 1 is memory-bound everywhere; GQA attention has AI ~ 2g/b: 1 for MHA
    (Llama-2-7B) and 4 for Llama-3-8B's 4 query heads per KV head in bf16 (sheet §1 table)."""
    r = R.roofline_for(_resolve_model("llama-2-7b"), catalog.get("a100"), phase="decode",
                       batch=1, seq_len=2048)
    assert {o.bound for o in r.ops} == {"memory"}
    att = next(o for o in r.ops if o.name == "attention")
    assert att.intensity == pytest.approx(1.0, rel=0.01)
    r3 = R.roofline_for(_resolve_model("llama-3-8b"), catalog.get("a100"), phase="decode",
                        batch=64, seq_len=2048)
    assert next(o for o in r3.ops if o.name == "attention").intensity == pytest.approx(4.0, rel=0.01)
    attn_out = next(o for o in r.ops if o.name == "attn_out")
    assert attn_out.crossover_batch == pytest.approx(165.4, abs=0.3)
    assert 0.95 < r.time_share(("matmul", "attention")) <= 1.0


def test_prefill_is_compute_bound_and_training_triples(catalog):
    arch = _resolve_model("llama-2-7b")
    pre = R.roofline_for(arch, catalog.get("a100"), phase="prefill", batch=1, seq_len=2048)
    assert next(o for o in pre.ops if o.name == "mlp_up").bound == "compute"
    assert next(o for o in pre.ops if o.name == "norms").bound == "memory"
    train = R.roofline_for(arch, catalog.get("a100"), phase="training", batch=1, seq_len=2048)
    qkv = [next(o for o in x.ops if o.name == "qkv") for x in (pre, train)]
    assert qkv[1].flops == pytest.approx(3 * qkv[0].flops)
    # prefill matmul FLOPs = 2 x non-embedding weights x tokens (+ the LM head for the last token)
    matmul = sum(o.flops for o in pre.ops if o.kind == "matmul")
    body = arch.params_non_embedding() - (2 * arch.n_layer + 1) * arch.d_model  # minus norms
    assert matmul == pytest.approx(2 * body * 2048 + 2 * arch.d_model * arch.vocab_size, rel=1e-9)


def test_cnn_roofline_and_bad_phase(catalog):
    from budget.models import cnn

    cost = cnn.evaluate(cnn.load_network("resnet-50"), bn="inference")
    r = R.analyse(R.cnn_ops(cost, 32, "bf16"), catalog.get("a100"), "bf16", model="resnet-50",
                  phase="inference", batch=32, seq_len=1)
    assert r.total_flops == pytest.approx(32 * cost.flops)
    assert any(o.kind == "norm" and o.bound == "memory" for o in r.ops)
    with pytest.raises(Exception, match="phase"):
        R.transformer_ops(_resolve_model("llama-2-7b"), "serve", 1, 1, "bf16")


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_roofline_cli_plot_is_a_png_of_the_right_size(tmp_path):
    out = tmp_path / "roof.png"
    res = CliRunner().invoke(main, ["roofline", "--model", "llama-3-8b", "--gpu", "h100",
                                    "--batch", "8", "--plot", str(out)])
    assert res.exit_code == 0, res.output
    assert "ridge 295.4 FLOP/byte" in res.stdout and "mlp_up" in res.stdout
    assert out.stat().st_size > 10_000
    assert _png_size(out) == (1200, 750)


def test_roofline_cli_network_and_json(tmp_path):
    res = CliRunner().invoke(main, ["roofline", "--network", "resnet-18", "--batch", "8", "--json"])
    assert res.exit_code == 0, res.output
    import json

    data = json.loads(res.stdout)
    assert data["ridge_flops_per_byte"] == pytest.approx(153.0, abs=0.05)
    assert any(op["name"] == "stem.conv" for op in data["ops"])


@pytest.mark.parametrize("args, fragment", [
    (["roofline", "--gpu", "a100"], "give --model NAME, --config FILE"),
    (["roofline", "--model", "gpt-9"], "unknown model 'gpt-9'"),
    (["roofline", "--model", "llama-2-7b", "--batch", "0"], "--batch"),
    (["serve", "--model", "llama-2-7b", "--gpu", "nope"], "unknown accelerator"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2
    assert fragment in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [
    ["serve", "--model", "llama-3-8b", "--gpu", "h100", "--json"],
    ["roofline", "--model", "llama-2-7b", "--gpu", "a100", "--json"],
])
def test_serve_and_roofline_are_fast_and_light(argv):
    """No torch, mlflow, scipy.optimize, matplotlib or pandas (the 0.5 s answer is measured in
    benchmarks/bench_plan.py, not here: a timed test fails on a loaded machine)."""
    code = ("import sys, time; t = time.perf_counter(); from budget.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "dt = time.perf_counter() - t\n"
            "heavy = [m for m in ('torch', 'mlflow', 'scipy.optimize', 'matplotlib', 'pandas') "
            "if m in sys.modules]\n"
            "print('HEAVY', heavy, 'TIME', dt, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stderr


def test_cnn_batch_norm_folding_share():
    res = CliRunner().invoke(main, ["roofline", "--network", "resnet-50", "--batch", "32"])
    assert res.exit_code == 0 and "batch-norm folding" in res.stdout and "of the bytes" in res.stdout
    res = CliRunner().invoke(main, ["roofline", "--network", "resnet-50", "--phase", "training"])
    assert "at inference only" in res.stdout
