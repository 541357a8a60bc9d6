"""`budget fit --csv`: JSON contract, plots, progress on stderr, one-line usage errors (exit 2)."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from budget.cli import main

DATA = Path(__file__).parent / "data" / "chinchilla_svg_extracted_data.csv"


def run(*args):
    return CliRunner().invoke(main, ["fit", *args])


def test_json_on_the_chinchilla_csv_reproduces_epoch(tmp_path):
    result = run("--csv", str(DATA), "--drop-highest-loss", "5", "--approach", "3", "--approach", "2",
                 "--bootstrap", "10", "--seed", "3", "--json", "--plot", str(tmp_path / "figs"))
    assert result.exit_code == 0, result.stderr
    d = json.loads(result.stdout)  # stdout is exactly one JSON object
    assert set(d) == {"kind", "schema_version", "input", "approach2", "approach3"}
    a3 = d["approach3"]
    assert a3["A"] == pytest.approx(477.8, rel=0.01) and a3["B"] == pytest.approx(2144, rel=0.01)
    assert a3["E"] == pytest.approx(1.817, rel=0.01) and a3["alpha"] == pytest.approx(0.3473, rel=0.01)
    assert a3["beta"] == pytest.approx(0.3672, rel=0.01) and a3["bootstrap"]["requested"] == 10
    assert a3["ci"]["E"]["level"] == 0.95 and "a" in a3 and "b" in a3
    assert "Approach 3 bootstrap" in result.stderr  # the progress bar goes to stderr
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "fit_frontier.png", "fit_isoflop.png", "fit_residuals.png"]


def test_human_output_names_skipped_approaches_and_parameters():
    result = run("--csv", str(DATA), "--bootstrap", "0", "--approach", "all", "--target-flops", "1e22")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "skipped approach1" in out and "approach3: L = E + A/N^alpha + B/D^beta" in out
    assert "kaplan:" in out and "at C = 1e+22" in out and "245 runs" in out


@pytest.mark.parametrize("args, message", [
    ((), "give --csv FILE"),
    (("--csv", "missing.csv"), "does not exist"),
    (("--csv", str(DATA), "--approach", "4"), "'4' is not one of"),
    (("--csv", str(DATA), "--approach", "1"), "Approach 1 needs per-step training curves"),
    (("--csv", str(DATA), "--bootstrap", "-3"), "-3 is not in the range 0<=x<=10000"),
    (("--csv", str(DATA), "--target-flops", "-1e21"), "give a number >= 1 and <= 1e+30"),
    (("--csv", str(DATA), "--experiment", "sweep"), "--experiment"),  # CSV path only here (issue 5 adds it)
    (("--csv", str(DATA), "--budgets", "1e19,x"), "'x' is not a number"),
    (("--csv", str(DATA), "--budget-tol", "0"), "must be > 0"),
])
def test_usage_errors_are_one_line_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.stderr


def test_nominal_budgets_option_groups_runs_for_approach2():
    nine = "6e18,1e19,3e19,6e19,1e20,3e20,6e20,1e21,3e21"
    result = run("--csv", str(DATA), "--drop-highest-loss", "5", "--approach", "2", "--bootstrap", "0",
                 "--budgets", nine, "--json")
    assert result.exit_code == 0, result.stderr
    budgets = json.loads(result.stdout)["approach2"]["budgets"]
    assert [b["flops"] for b in budgets] == pytest.approx([float(x) for x in nine.split(",")])


def test_bad_csv_content_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "runs.csv"
    bad.write_text("params,loss\n1e8,3.0\n")
    result = run("--csv", str(bad))
    assert result.exit_code == 2 and "missing column(s) tokens (or flops)" in result.stderr
    bad.write_text("params,tokens,loss\n1e8,1e9,3.0\n2e8,-1e9,2.9\n")
    result = run("--csv", str(bad), "--approach", "3")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "'tokens' has 1" in result.stderr


def test_fit_json_calibrates_a_plan(tmp_path):
    """The saved JSON is what `budget plan --calibrate fit.json` reads (budget.scaling.calibrated)."""
    calibrate = pytest.importorskip("budget.scaling.calibrated")
    result = run("--csv", str(DATA), "--drop-highest-loss", "5", "--approach", "3", "--bootstrap", "12",
                 "--target-flops", "5.76e23", "--json")
    fit = json.loads(result.stdout)
    path = tmp_path / "fit.json"
    path.write_text(result.stdout)
    cal = calibrate.load_calibration_file(path)
    assert len(cal.draws) == 12 and cal.max_budget_flops == pytest.approx(fit["input"]["budgets_flops"][-1])
    assert cal.allocation(5.76e23).params == pytest.approx(fit["approach3"]["target"]["params"], rel=1e-9)


@pytest.mark.skipif(shutil.which("budget") is None, reason="console script not installed")
def test_installed_console_script_prints_clean_json(tmp_path):
    import subprocess

    proc = subprocess.run(["budget", "fit", "--csv", str(DATA), "--approach", "2", "--bootstrap", "5", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == {"kind", "schema_version", "input", "approach2"}
