"""`budget validate`: the step-time model against published measured runs, with bounds that fail CI.

Bounds (issue 22): Korthikanti et al. 2022 Table 5 leave-one-out mean |error| <= 5.5% and max
<= 12% (Calculon's in-sample figures on the same eight runs: 3.65% / 8.87%), all rows <= 10%.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.hardware.catalog import load_catalog
from budget.training.parallel import layout_memory
from budget.validation.score import Constants, score
from budget.validation.table import eq3_flops, load_rows


@pytest.fixture(scope="module")
def board():
    return score()


def suite(board, name):
    return next(s for s in board.suites if s.suite == name)


def test_korthikanti_table_5_within_its_bound_leave_one_out(board):
    """Korthikanti et al. 2022 (arXiv:2205.05198) Table 5, eight iteration times (full recompute and
    SP + selective; 22B, 175B, 530B, 1T on A100 80GB): leave-one-out mean <= 5.5%, max <= 12%."""
    t5 = suite(board, "korthikanti-t5")
    assert t5.rows == 8
    assert t5.loo_mean_pct <= 5.5 and t5.loo_max_pct <= 12.0
    assert t5.passes


def test_all_rows_within_ten_percent(board):
    """Every row (48, MosaicML's 24 FSDP runs among them): in-sample mean <= 10% (the issue's
    bound); the leave-one-out mean is reported beside it and kept within 11%."""
    every = suite(board, "all")
    assert every.rows == len(board.rows) >= 48
    assert every.mean_pct <= 10.0 and every.passes and board.passes
    assert every.loo_mean_pct <= 11.0


def test_leave_one_out_is_never_better_than_in_sample_overall(board):
    """The in-sample fit minimises squared error on every row, so holding rows out cannot beat it
    on average (a test that fails if the LOO path silently reused the in-sample constants)."""
    every = suite(board, "all")
    assert every.loo_mean_pct > every.mean_pct
    assert any(abs(r.loo_step_s - r.predicted_step_s) > 1e-6 * r.measured_step_s for r in board.rows)


def test_efficiency_toml_holds_the_in_sample_fit(board):
    """budget/hardware/efficiency.toml is the in-sample fit to its 3 printed digits, not a hand tune."""
    assert board.catalog_drift == ()


def test_a_drifted_constant_is_reported():
    from budget.validation.score import catalog_drift

    fake = Constants({"*": 0.5, "a100-sxm-80gb/fp16": 0.755}, 896.0)
    assert any("kernel_factor *" in d for d in catalog_drift(fake))


def test_narayanan_1t_iteration_from_eq3():
    """Narayanan et al. 2021 Table 1, 1T row: 163 TFLOP/s on 3,072 A100 with Eq. 3's count is an
    iteration of about 102.6 s (parallelism.md §5.1, derived)."""
    row = next(r for r in load_rows()[0] if r.suite == "narayanan-t1" and r.id == "1008B")
    assert row.measured_step_s == pytest.approx(102.6, abs=0.1)
    assert eq3_flops(row.arch, row.layout, 2048) / (3072 * 163e12) == pytest.approx(row.measured_step_s)


def test_every_published_layout_is_whole_and_fits_its_device():
    """Each run's layout uses the printed GPU count and fits the device's memory in our model, but
    for three MPT-1B runs (micro-batch 20, no recomputation) that ran on 80 GB while our activation
    count (an upper bound: dropout masks, no fused kernels) puts them at 78-79 GB of 77 usable."""
    catalog = load_catalog(use_env=False)
    gpus = {"22B full": 8, "175B seqsel": 64, "530B full": 280, "1T seqsel": 512, "1008B": 3072,
            "405B 16K GPUs": 16384, "540B 6144 TPUv4": 6144, "GPT-3 175B 512 GPUs": 512}
    for row in load_rows()[0]:
        if row.id in gpus:
            assert row.layout.num_gpus == gpus[row.id], row.id
        memory = layout_memory(row.arch, row.layout, row.seq_len, catalog.get(row.device).memory_bytes)
        assert memory.fits or row.id in {"MPT-1B 64xH100", "MPT-1B 32xH100", "MPT-1B 16xH100"}, row.id


def test_memory_rows_match_published_figures(board):
    """ZeRO Fig. 1 (7.5B, N_d 64: 120 / 31.4 / 16.6 / 1.9 GB) within 1.5%; Korthikanti Table 2
    formulas exactly."""
    assert len(board.memory) >= 8
    for m in board.memory:
        assert abs(m.error_pct) <= (1.5 if m.suite == "zero-fig1" else 1e-6), m.id


def test_cli_table_json_and_plot(tmp_path):
    result = CliRunner().invoke(main, ["validate", "--plot", str(tmp_path / "v.png")])
    assert result.exit_code == 0, result.output
    assert "korthikanti-t5" in result.output and "LOO" in result.output
    assert (tmp_path / "v.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(CliRunner().invoke(main, ["validate", "--json"]).output)
    assert {"rows", "memory", "suites", "constants", "calculon_ratio"} <= set(data)
    assert data["calculon_t5_pct"] == {"mean": 3.65, "max": 8.87}
