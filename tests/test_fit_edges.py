"""Issue 27, fits at their edges: a target far past the data is one line, a bootstrap over many
rows is capped with a note saying so, and a fit resting on one budget says so beside every
exponent. The data is synthetic from the Chinchilla law (Hoffmann et al. 2022 eq. 10 constants:
E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28), so the fits converge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from budget.cli import main


def chinchilla_runs(budgets: tuple[float, ...], per_budget: int = 7, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for C in budgets:
        n_opt = (C / 6 / 20) ** 0.5
        for N in n_opt * np.logspace(-0.6, 0.6, per_budget):
            D = C / (6 * N)
            loss = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28 + rng.normal(0, 0.002)
            rows.append({"params": N, "tokens": D, "loss": loss})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def three_budgets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fit") / "runs.csv"
    chinchilla_runs((1e18, 1e19, 1e20)).to_csv(path, index=False)
    return path


def test_a_target_far_past_the_data_is_one_line(three_budgets: Path) -> None:
    """`fit --target-flops 1e300` fitted, then died rendering an N_opt of inf (TypeError); with the
    Kaplan frontier in logs it printed 6e159 parameters at exit 0: the option is bounded."""
    result = CliRunner().invoke(main, ["fit", "--csv", str(three_budgets), "--approach", "all",
                                       "--bootstrap", "0", "--target-flops", "1e300"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert "--target-flops" in lines[0] and "1e300" in lines[0] and "<= 1e+30" in lines[0]


def test_bootstrap_is_capped_on_rows_times_resamples() -> None:
    from fits.report import MAX_ROW_RESAMPLES, MIN_RESAMPLES, cap_bootstrap

    assert cap_bootstrap(100, 200) == (200, "")
    kept, note = cap_bootstrap(1_000_000, 200)  # the probe's 1M-row CSV with the default 200
    assert kept == 0 and "1,000,000 rows x 200 resamples" in note and "no intervals" in note
    kept, note = cap_bootstrap(50_000, 200)
    assert kept == MAX_ROW_RESAMPLES // 50_000 >= MIN_RESAMPLES and f"ran {kept:,} resamples" in note


def test_a_capped_bootstrap_says_so_in_the_fit(three_budgets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap reaches the printed fit and its JSON (the cap lowered so the table is small)."""
    import fits.report

    monkeypatch.setattr(fits.report, "MAX_ROW_RESAMPLES", 21 * 40)  # 21 rows: 40 resamples fit
    result = CliRunner().invoke(main, ["fit", "--csv", str(three_budgets), "--approach", "2",
                                       "--bootstrap", "200", "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout)
    assert fit["input"]["bootstrap"] == 40
    assert any("21 rows x 200 resamples" in note for note in fit["input"]["notes"])


def test_a_fit_on_one_budget_says_so_beside_every_exponent(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    chinchilla_runs((1e19,), per_budget=9).to_csv(path, index=False)
    result = CliRunner().invoke(main, ["fit", "--csv", str(path), "--approach", "3",
                                       "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    rows = [line.split("=")[0].strip() for line in result.stdout.splitlines()
            if "(one budget: not identified)" in line]
    assert rows == ["alpha", "beta", "a", "b"], result.stdout
    assert "every run has one compute budget" in result.stdout


def test_a_fit_on_three_budgets_has_no_one_budget_mark(three_budgets: Path) -> None:
    result = CliRunner().invoke(main, ["fit", "--csv", str(three_budgets), "--approach", "3",
                                       "--bootstrap", "0"])
    assert result.exit_code == 0 and "one budget" not in result.stdout, result.output


def test_the_literature_comparison_marks_one_budget_exponents() -> None:
    """The comparison table beside the literature (an experiment's fit) prints the team's a and b
    too: on one budget they carry the same mark; the literature's rows do not."""
    from budget.cli.fit import ONE_BUDGET
    from budget.cli.fit_render import render_comparison
    from fits.report import fit_table

    class Result:  # what render_comparison reads of an experiment fit: its report and fit JSON
        def __init__(self, report: object) -> None:
            self.report = report

        def to_dict(self) -> dict:
            return self.report.to_dict()

    one = fit_table(chinchilla_runs((1e19,), per_budget=9), ("3",), bootstrap=0)
    text = render_comparison(Result(one))
    marked = [line for line in text.splitlines() if ONE_BUDGET.strip() in line]
    assert marked and all(line.strip().startswith("calibrated") for line in marked), text
    three = fit_table(chinchilla_runs((1e18, 1e19, 1e20)), ("3",), bootstrap=0)
    assert ONE_BUDGET.strip() not in render_comparison(Result(three))
