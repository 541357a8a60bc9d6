"""The versioned fit file: `budget fit --json` writes kind and schema_version, `budget.scaling.
calibrated` reads exactly that schema back and refuses any other in one line (exit 2)."""

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

import fits.report
from budget.cli import main
from budget.errors import BudgetError
from budget.scaling import calibrated
from budget.scaling.calibrated import load_calibration_file

DATA = Path(__file__).parent / "data"
SAVED = DATA / "fit_v1_chinchilla.json"
CSV = DATA / "chinchilla_svg_extracted_data.csv"
ARGS = ["--csv", str(CSV), "--drop-highest-loss", "5", "--approach", "2", "--approach", "3",
        "--bootstrap", "10", "--seed", "0", "--target-flops", "5.76e23", "--json"]


def test_writer_and_reader_state_the_same_kind_and_version():
    """fits never imports budget, so both sides name the schema; they must agree."""
    assert fits.report.FIT_KIND == calibrated.FIT_KIND == "compute-budget.fit"
    assert fits.report.FIT_SCHEMA_VERSION == calibrated.FIT_SCHEMA_VERSION == 1


def test_saved_fit_file_round_trip():
    """The saved file (Epoch's Chinchilla data, Approach 3) calibrates a plan: its frontier at
    Gopher's 5.76e23 FLOPs is the file's own target (about 73B params, 1.31T tokens, close to
    Besiroglu et al. 2024's 72B / 1.33T), with the 10 bootstrap draws it holds."""
    saved = json.loads(SAVED.read_text())
    assert (saved["kind"], saved["schema_version"]) == ("compute-budget.fit", 1)
    cal = load_calibration_file(SAVED)
    a = cal.allocation(5.76e23)
    target = saved["approach3"]["target"]
    assert a.params == pytest.approx(target["params"], rel=1e-9)
    assert a.tokens == pytest.approx(target["tokens"], rel=1e-9)
    assert a.params == pytest.approx(72e9, rel=0.05) and len(cal.draws) == 10
    assert cal.max_budget_flops == pytest.approx(saved["input"]["budgets_flops"][-1])


def _same(a, b, path="fit"):
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(set(a) ^ set(b))}"
        for key in a:
            _same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and math.isfinite(a):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-9), path  # residual means ~1e-12
    else:
        assert a == b, path


def test_a_fresh_fit_writes_the_saved_schema(tmp_path):
    """Re-running the command that wrote the saved file gives the same keys and numbers: a
    change to what `budget fit --json` writes must come with a new schema_version."""
    result = CliRunner().invoke(main, ["fit", *ARGS])
    assert result.exit_code == 0, result.stderr
    _same(json.loads(result.stdout), json.loads(SAVED.read_text()))


@pytest.mark.parametrize("change,fragment", [
    ({"schema_version": 2}, "kind 'compute-budget.fit', schema_version 2; this version reads"),
    ({"kind": "something-else"}, "kind 'something-else'"),
    ({"kind": None, "schema_version": None}, "no kind/schema_version"),
])
def test_another_schema_is_refused_in_one_line(tmp_path, change, fragment):
    fit = json.loads(SAVED.read_text())
    fit.update(change)
    fit = {k: v for k, v in fit.items() if v is not None}
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fit))
    with pytest.raises(BudgetError, match="re-run 'budget fit"):
        load_calibration_file(path)
    result = CliRunner().invoke(main, ["plan", "--flops", "1e21", "--calibrate", str(path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and fragment in result.stderr
