"""Energy known answers: the Horowitz per-operation table and published training-run energies."""

import json

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.errors import BudgetError
from budget.hardware import energy as E


def test_horowitz_table_values():
    """Horowitz, ISSCC 2014, 45 nm 0.9 V: int add 8b/32b 0.03/0.1 pJ, int mult 0.2/3.1, fp add
    16b/32b 0.4/0.9, fp mult 1.1/3.7, SRAM 8 KB/32 KB/1 MB 10/20/100 pJ, DRAM 1.3-2.6 nJ
    (64-bit accesses); fp32 multiply-add = 4.6 pJ."""
    pj = {o.operation: o.picojoules for o in E.OPERATIONS}
    assert pj["int add 8-bit"] == 0.03 and pj["int add 32-bit"] == 0.1
    assert pj["int multiply 8-bit"] == 0.2 and pj["int multiply 32-bit"] == 3.1
    assert pj["fp add 16-bit"] == 0.4 and pj["fp add 32-bit"] == 0.9
    assert pj["fp multiply 16-bit"] == 1.1 and pj["fp multiply 32-bit"] == 3.7
    assert (pj["SRAM read 8 KB (64-bit)"], pj["SRAM read 32 KB (64-bit)"],
            pj["SRAM read 1 MB (64-bit)"]) == (10, 20, 100)
    assert E.operation("DRAM read (64-bit)").picojoules_high == 2600
    assert pj["fp add 32-bit"] + pj["fp multiply 32-bit"] == pytest.approx(4.6)
    ratios = E.energy_table().ratios
    assert ratios["DRAM read / SRAM read 8 KB (64-bit)"] == (130, 260)
    lo, hi = ratios["DRAM read / int add 32-bit"]
    assert (lo, hi) == pytest.approx((13_000, 26_000))


def test_gpt3_training_energy():
    """Patterson et al. 2021 Table 4: GPT-3 on 10,000 V100 for 14.8 days at 330 W/chip, PUE 1.10:
    1,287 MWh and 552.1 tCO2e at 0.429 kg/kWh. 10,000 x 355.2 h x 0.330 kW x 1.10 = 1,289 MWh."""
    e = E.training_energy(10_000 * 355.2, 300, power_fraction=330 / 300, pue=1.10,
                          grid_gco2_per_kwh=429)
    assert e.mwh == pytest.approx(1287, rel=0.005)
    assert e.tco2e == pytest.approx(552.1, rel=0.005)


def test_bloom_and_llama2_energy():
    """BLOOM (Luccioni et al. 2022): 1,082,990 A100 GPU-hours x 400 W (TDP) = 433,196 kWh; x 0.057
    kg/kWh (France) = 24.69 t. Llama 2 7B model card: 184,320 GPU-hours at 400 W, 31.22 tCO2e
    (implied 0.4235 kg/kWh; Meta fold PUE into the power, so PUE 1 here)."""
    bloom = E.training_energy(1_082_990, 400, pue=1.0, grid_gco2_per_kwh=57)
    assert bloom.kwh == pytest.approx(433_196, abs=1)
    assert bloom.tco2e == pytest.approx(24.69, abs=0.01)
    llama = E.training_energy(184_320, 400, pue=1.0, grid_gco2_per_kwh=423.5)
    assert llama.tco2e == pytest.approx(31.22, abs=0.02)


def test_measured_power_fraction_and_bad_values():
    """V100 drew 325 W on a 300 W TDP (Patterson et al. 2021 Table 3); others default to TDP."""
    assert E.power_fraction_for("v100-sxm2-32gb")[0] == pytest.approx(325 / 300)
    assert E.power_fraction_for("h100-sxm-80gb")[0] == 1.0
    with pytest.raises(BudgetError, match="PUE"):
        E.training_energy(10, 700, pue=0.5)
    with pytest.raises(BudgetError, match="power fraction"):
        E.training_energy(10, 700, power_fraction=5)


def test_energy_cli_and_plan_energy_line():
    res = CliRunner().invoke(main, ["energy", "--gpu-hours", "1.3e6", "--gpu", "h100",
                                    "--pue", "1.0", "--grid-gco2-per-kwh", "429", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["run"]["kwh"] == pytest.approx(1.3e6 * 0.7)
    assert data["run"]["tco2e"] == pytest.approx(390.4, abs=0.1)  # Llama 3 8B card: 390 t
    res = CliRunner().invoke(main, ["energy"])
    assert "DRAM read (64-bit)" in res.stdout and "Horowitz" in res.stdout
    res = CliRunner().invoke(main, ["plan", "--flops", "1e21", "--gpu", "h100",
                                    "--grid-gco2-per-kwh", "429", "--json"])
    plan = json.loads(res.stdout)
    assert plan["energy"]["kwh"] == pytest.approx(plan["gpu_hours"] * 0.7 * 1.10)
    res = CliRunner().invoke(main, ["plan", "--flops", "1e21", "--gpu", "h100"])
    assert "energy" in res.stdout and "kWh" in res.stdout
    res = CliRunner().invoke(main, ["plan", "--flops", "1e21", "--gpu", "tpu-v4"])
    assert "no TDP" in res.stdout


def test_report_risks_carry_the_energy_line():
    """The proposal states the run's energy with its formula's source (Patterson et al. 2021)."""
    from budget.planner import BudgetInput, PlanRequest
    from budget.report.build import build_report

    rep = build_report(PlanRequest(BudgetInput(flops=1e21), gpu="h100", grid_gco2_per_kwh=429),
                       [])
    line = next(r for r in rep.risks if r.startswith("Energy:"))
    kwh = rep.plan.cost.gpu_hours * 0.7 * 1.10
    assert f"{kwh:,.0f} kWh" in line and "tCO2e at 429 gCO2e/kWh" in line
    assert any("Patterson" in src for _, src in rep.sources)
