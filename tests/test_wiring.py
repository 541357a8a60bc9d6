"""budget.wiring: the one place budget calls fits and experiments (budget fit, --calibrate)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import fits
import fits.approach2
from budget import wiring
from budget.cli import main
from budget.errors import BudgetError

CSV = Path(__file__).parent / "data" / "chinchilla_svg_extracted_data.csv"


def test_fit_option_constants_agree_with_fits():
    """The command's choices and defaults are budget.wiring constants (fits is not imported at
    start-up); they state the same values as fits."""
    assert wiring.APPROACH_CHOICES == (*fits.APPROACHES, "all")
    assert wiring.DEFAULT_BUDGET_TOL == fits.approach2.BUDGET_TOL_DECADES


def test_csv_holdout_largest_through_the_library():
    """`fit --csv --holdout-largest` is one library call: the fit plus the hold-out of the
    largest budget of the digitised Chinchilla Figure 4 runs (about 1.3e22 FLOPs), whose best
    loss the other budgets predict within 5%."""
    outcome = wiring.run_fit(wiring.FitRequest(csv_path=str(CSV), approaches=("3",), bootstrap=0,
                                               drop_highest_loss=5, holdout_largest=True))
    assert isinstance(outcome.result, wiring.CsvFit)
    d = outcome.to_dict()
    assert d["kind"] == "compute-budget.fit" and "approach3" in d
    holdout = d["holdout"]
    assert holdout["budget_flops"] == pytest.approx(max(outcome.result.report.budgets_flops))
    assert set(holdout["predictions"]) == {"approach2", "approach3"}
    for p in holdout["predictions"].values():
        assert abs(p["best_loss_rel_error"]) < 0.05


def test_csv_holdout_largest_on_the_command_line():
    result = CliRunner().invoke(main, ["fit", "--csv", str(CSV), "--approach", "3", "--bootstrap",
                                       "0", "--holdout-largest", "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["holdout"]["predictions"]) == {"approach2", "approach3"}
    text = CliRunner().invoke(main, ["fit", "--csv", str(CSV), "--approach", "3", "--bootstrap",
                                     "0", "--holdout-largest"]).stdout
    assert "hold-out: fitted without the largest budget" in text


def test_request_errors_are_budget_errors():
    with pytest.raises(BudgetError, match="not both"):
        wiring.run_fit(wiring.FitRequest(csv_path=str(CSV), experiment="x"))
    with pytest.raises(BudgetError, match="give --csv FILE"):
        wiring.run_fit(wiring.FitRequest())


def test_calibration_from_a_file_has_no_run_and_no_figures():
    loaded = wiring.load_calibration(str(Path(__file__).parent / "data" / "fit_v1_chinchilla.json"))
    assert loaded.run_id is None and wiring.calibration_figures(loaded) == {}
    assert loaded.calibration.allocation(1e21).law == "calibrated"
