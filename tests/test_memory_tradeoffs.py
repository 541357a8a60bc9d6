"""`budget memory --precision int4/int8/fp8 --inference` and `--compare` (sources inline)."""

import json

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.models.families import build
from budget.training import tradeoffs as T


def test_inference_sizes_cli():
    """An 8B model is ~16 GB in fp16 and ~4 GB in int4 (seed 004); int4 at g128 with a 4-bit zero
    is 4.156 bits/weight (AutoAWQ/AutoGPTQ layout)."""
    res = CliRunner().invoke(main, ["memory", "--params", "8e9", "--precision", "int4", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    n = data["params"]
    assert data["weight_bytes"] == pytest.approx(n * 4.15625 / 8)
    sizes = {s["precision"]: s["weight_bytes"] for s in data["sizes"]}
    assert sizes["fp16"] / 1e9 == pytest.approx(16, rel=0.01)
    assert sizes["int4"] / 1e9 == pytest.approx(4.17, rel=0.01)
    res = CliRunner().invoke(main, ["memory", "--params", "8e9", "--precision", "fp8",
                                    "--inference", "--gpu", "l4"])
    assert "fp8 *" in res.stdout and "weights need 1 GPU(s)" in res.stdout
    res = CliRunner().invoke(main, ["memory", "--params", "8e9", "--precision", "int8",
                                    "--group-size", "0", "--json"])
    assert json.loads(res.stdout)["bits_per_weight"] == 8


def test_compare_rows():
    """Full recomputation and sqrt(L) checkpoints cost one extra forward: 4F/3F = +33% (Chen et
    al. 2016; Korthikanti et al. 2022); accumulation keeps the micro-batch's activations and the
    effective batch's FLOPs; fp32 and mixed-precision Adam are both 16 bytes/param (ZeRO §3.1),
    and mixed precision halves the activations."""
    shape = build("gpt2", 32, 4096, n_head=32, d_ff=16384)
    t = T.memory_tradeoffs(shape, micro_batch=2, seq_len=2048, accumulation=4)
    rows = {r.setting.split(" (")[0]: r for r in t.rows}
    none, full = rows["no recomputation"], rows["full recomputation"]
    assert full.flops_per_step / none.flops_per_step == pytest.approx(4 / 3)
    assert none.flops_per_step == pytest.approx(3 * (2 * shape.params_total() * 4096
                                                     + 4 * 32 * 2 * 2048**2 * 4096))
    sq = next(r for r in t.rows if r.setting.startswith("sqrt"))
    assert full.activations_bytes < sq.activations_bytes < none.activations_bytes
    assert "6 segments" in sq.setting  # round(sqrt(32)) = 6
    acc, big = rows["gradient accumulation 4 x 2"], rows["batch 8 at once"]
    assert acc.flops_per_step == big.flops_per_step == 4 * none.flops_per_step
    assert acc.activations_bytes == none.activations_bytes < big.activations_bytes
    fp32, mixed = rows["fp32"], rows["mixed precision bf16"]
    assert fp32.total_bytes - fp32.activations_bytes == mixed.total_bytes - mixed.activations_bytes
    res = CliRunner().invoke(main, ["memory", "--params", "1e9", "--compare"])
    assert res.exit_code == 0 and "sqrt(L) checkpoints" in res.stdout
