"""`budget plan --inference-tokens/--target-loss/--unique-tokens`, a --params/--tokens plan's
"loss you buy", and `budget frontier`, through click's CliRunner."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.planner import BudgetInput, PlanRequest, make_plan


def run(*args):
    return CliRunner().invoke(main, list(args))


def plan_json(*args):
    result = run("plan", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_no_inference_and_no_cap_is_todays_plan_exactly():
    """T = 0 and no cap: every field of the plan is today's compute-optimal plan, and the
    inference-aware rows are each law's compute-optimal allocation, bit for bit."""
    today = plan_json("--flops", "1e21")
    asked = plan_json("--flops", "1e21", "--inference-tokens", "0")
    beyond = asked.pop("beyond")
    assert "beyond" not in today and asked == today
    by_law = {a["law"]: a for a in today["allocations"]}
    assert [p["law"] for p in beyond["inference"]] == ["epoch", "chinchilla"]
    for p in beyond["inference"]:
        a = by_law[p["law"]]
        assert (p["chosen"]["params"], p["chosen"]["tokens"]) == (a["params"], a["tokens"])
        assert p["reference"] == p["chosen"] and p["saving_flops"] == 0.0
        assert p["target_loss"] == a["loss"]
    base = make_plan(PlanRequest(budget=BudgetInput(flops=1e21)))
    zero = make_plan(PlanRequest(budget=BudgetInput(flops=1e21), inference_tokens=0.0))
    assert base.beyond is None and zero.beyond is not None
    assert zero.allocations == base.allocations and zero.cost == base.cost


def test_inference_tokens_pick_a_smaller_model_and_price_both_parts(fixed_prices):
    plan = plan_json("--flops", "1e21", "--inference-tokens", "2e12")
    beyond = plan["beyond"]
    epoch = beyond["inference"][0]
    assert epoch["chosen"]["params"] < epoch["reference"]["params"]
    assert epoch["chosen"]["loss"] == pytest.approx(epoch["reference"]["loss"], rel=1e-12)
    assert 0 < epoch["saving_fraction"] < 1
    ref = epoch["reference"]
    # 1e21 FLOPs at 989.5 TFLOP/s x the plan's MFU (its layout's prediction x goodput), x $3.49/h
    assert plan["time_source"] == "layout"
    assert ref["train_usd"] == pytest.approx(1e21 / (989.5e12 * plan["mfu"]) / 3600 * 3.49, rel=1e-3)
    assert ref["inference_usd"] / ref["train_usd"] == pytest.approx(
        ref["inference_flops"] / ref["train_flops"], rel=1e-12)
    assert any("priced like training" in a for a in beyond["assumptions"])
    text = run("plan", "--flops", "1e21", "--inference-tokens", "2e12").stdout
    assert "Inference-aware sizing (Sardana & Frankle 2023)" in text
    assert "the inference-aware model saves" in text


def test_target_loss_alone_sets_the_budget():
    """--target-loss L without a budget: C = 6 N D of epoch's compute-optimal model at L; at the
    1e21 plan's epoch loss that is 1e21 again."""
    loss = plan_json("--flops", "1e21")["allocations"][0]["loss"]
    plan = plan_json("--target-loss", repr(loss))
    assert plan["budget"]["given_as"] == "target-loss"
    assert plan["compute_flops"] == pytest.approx(1e21, rel=1e-9)
    epoch = plan["beyond"]["inference"][0]
    assert epoch["loss_from"] == "--target-loss" and epoch["target_loss"] == loss
    chin = plan_json("--target-loss", "2.0", "--law", "chinchilla")
    assert chin["budget"]["formula"].endswith("under chinchilla")


@pytest.mark.parametrize("args, message", [
    (["--target-loss", "1.5"], "out of reach: this law's irreducible loss E is 1.8169"),
    (["--target-loss", "2.0", "--law", "kaplan"], "has none: use --law epoch or --law chinchilla"),
    (["--flops", "1e21", "--inference-tokens", "-1"], "must be a finite number >= 0"),
    (["--flops", "1e21", "--unique-tokens", "0"], "'0' must be > 0"),
])
def test_bad_beyond_input_is_one_line_exit_2(args, message):
    result = run("plan", *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_target_loss_one_law_cannot_reach_is_a_note_not_an_error():
    """1.75 is above Chinchilla's E (1.69) but below Epoch's (1.817): the epoch row says why."""
    beyond = plan_json("--flops", "1e21", "--target-loss", "1.75")["beyond"]
    assert [p["law"] for p in beyond["inference"]] == ["chinchilla"]
    assert any(n.startswith("epoch: loss 1.75 is out of reach") for n in beyond["notes"])


def test_unique_tokens_report_epochs_loss_lost_and_warn():
    data = plan_json("--flops", "1e22", "--unique-tokens", "25e9")["beyond"]["data_constrained"]
    epoch = data["repetitions"][0]
    assert epoch["law"] == "epoch" and epoch["epochs"] == pytest.approx(epoch["tokens"] / 25e9)
    assert data["loss_lost_to_repetition"] > 0
    # the README grid's answer for 1e22 and 25B unique tokens: 237.34B tokens, 7.022B params
    assert data["capped_optimum"]["tokens"] == pytest.approx(237.34e9, rel=2e-3)
    assert not data["warnings"]
    text = run("plan", "--flops", "1e23", "--unique-tokens", "5e9").stdout
    assert "WARNING: epoch: " in text and "where returns vanish" in text


def test_params_tokens_plan_shows_the_loss_you_buy():
    """Gopher (Hoffmann et al. 2022 Table 1: 280B params, 300B tokens) as the budget."""
    plan = plan_json("--params", "280e9", "--tokens", "300e9")
    bought = {b["law"]: b for b in plan["beyond"]["loss_you_buy"]}
    assert bought["epoch"]["extra_compute_fraction"] > 1.0
    assert bought["epoch"]["compute_flops"] == pytest.approx(6 * 280e9 * 300e9)
    assert "The loss you buy with N = 280B, D = 300B" in run(
        "plan", "--params", "280e9", "--tokens", "300e9").stdout


def test_frontier_table_json_and_png(tmp_path):
    png = tmp_path / "frontier.png"
    result = run("frontier", "--flops", "1e21", "--inference-tokens", "2e12", "--png", str(png),
                 "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [r["tokens_per_param"] for r in out["rows"]] == [5, 10, 20, 50, 100, 200, 500]
    assert out["png_path"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = out["rows"]
    assert rows[0]["inference_flops_per_token"] > rows[-1]["inference_flops_per_token"]
    assert rows[0]["lifetime_inference_usd"] == pytest.approx(
        rows[0]["inference_flops_per_token"] * 2e12 * out["usd_per_flop"])
    text = run("frontier", "--flops", "1e21").stdout
    assert "The loss you buy at C = 1.00e+21 FLOPs" in text and "epoch D/N 21.5" in text
    bad = run("frontier", "--flops", "1e21", "--ratios", "5,x")
    assert bad.exit_code == 2 and "'--ratios'" in bad.stderr


def test_plan_with_the_beyond_options_stays_light():
    """No torch, mlflow, scipy.optimize or matplotlib with the new options either."""
    code = ("import sys; from budget.cli import main\n"
            "try:\n    main(['plan', '--flops', '1e21', '--inference-tokens', '1e12', "
            "'--unique-tokens', '1e10', '--target-loss', '2.2', '--json'])\n"
            "except SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'mlflow', 'scipy.optimize', 'matplotlib', 'pandas') "
            "if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_a_calibrated_fit_joins_the_parametric_laws():
    """The team's own Approach 3 fit (here the printed Chinchilla constants as a stand-in fit)
    gets its own inference-aware row, equal to chinchilla's."""
    from budget.scaling import laws
    from budget.scaling.calibrated import Calibration

    fit = Calibration(source="test fit", law=laws.CHINCHILLA, draws=(), level=0.9,
                      budgets_flops=(1e20, 1e21), n_runs=9)
    plan = make_plan(PlanRequest(budget=BudgetInput(flops=1e21), inference_tokens=1e12),
                     calibration=fit)
    rows = {p.law: p for p in plan.beyond.inference}
    assert set(rows) == {"epoch", "chinchilla", "calibrated"}
    assert rows["calibrated"].chosen == rows["chinchilla"].chosen
