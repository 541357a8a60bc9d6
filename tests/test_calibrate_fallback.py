"""`plan --calibrate` uses what the fit has and says which (issue 17 item 8): a fit that kept
Approach 2 (or 1) but no converged Approach 3 calibrates with its N_opt = k C^a power law."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.errors import BudgetError
from budget.scaling.calibrated import calibration_from_fit


def _fit_json(tmp_path, approaches):
    """A real fit of runs on Chinchilla's law (Hoffmann et al. 2022 eq. 10) at an IsoFLOP grid."""
    from fits import fit_table

    rows = []
    for C in (1e17, 1e18, 1e19):
        for n in np.logspace(np.log10(C ** 0.5 / 30), np.log10(C ** 0.5 / 2), 7):
            d = C / (6 * n)
            rows.append((n, d, 1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28))
    report = fit_table(pd.DataFrame(rows, columns=["params", "tokens", "loss"]), approaches)
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(report.to_dict()))
    return path, report


def test_approach2_only_fit_calibrates_and_says_so(tmp_path):
    path, report = _fit_json(tmp_path, ["2"])
    result = CliRunner().invoke(main, ["plan", "--flops", "1e20", "--gpu", "h100", "--calibrate",
                                       str(path), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    mine = next(a for a in plan["allocations"] if a["law"] == "calibrated")
    fit2 = report["approach2"]
    assert mine["params"] == pytest.approx(fit2.k_params * 1e20 ** fit2.a)
    assert 6 * mine["params"] * mine["tokens"] == pytest.approx(1e20)
    assert plan["calibration"]["approach"] == "approach2"
    assert any("calibrated with Approach 2" in n for n in plan["notes"])


def test_fit_with_nothing_to_calibrate_is_one_error():
    fit = {"kind": "compute-budget.fit", "schema_version": 1,
           "input": {"budgets_flops": [1e18, 1e19], "skipped": {"approach3": "too few sizes"}},
           "kaplan": {"success": True}}
    with pytest.raises(BudgetError, match="no Approach 3 .*too few sizes.*no converged Approach 2 or 1"):
        calibration_from_fit(fit, "fit file x.json")


def test_report_with_an_approach2_only_fit(tmp_path):
    path, _ = _fit_json(tmp_path, ["2"])
    out = tmp_path / "proposal"
    result = CliRunner().invoke(main, ["report", "--flops", "1e20", "--gpu", "h100", "--calibrate",
                                       str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "calibrated with Approach 2" in (out / "proposal.md").read_text()
