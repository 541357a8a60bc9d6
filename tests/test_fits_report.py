"""fit_table (the single entry point) and the figures: what `budget fit` and issue 5 build on."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits import FitError, chinchilla_loss, fit_table, load_csv

DATA = Path(__file__).parent / "data" / "chinchilla_svg_extracted_data.csv"


@pytest.fixture(scope="module")
def report():
    return fit_table(load_csv(DATA, drop_highest_loss=5), approaches=("2", "3"), bootstrap=20, seed=5)


def test_report_json_has_one_key_per_method_and_the_approach3_contract(report):
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert set(d) == {"kind", "schema_version", "input", "approach2", "approach3"}
    assert (d["kind"], d["schema_version"]) == ("compute-budget.fit", 1)
    a3 = d["approach3"]
    for name in ("E", "A", "B", "alpha", "beta", "a", "b"):
        assert isinstance(a3[name], float) and set(a3["ci"][name]) == {"low", "high", "level"}
    assert a3["ci"]["alpha"]["low"] < a3["alpha"] < a3["ci"]["alpha"]["high"]
    assert d["input"]["points"] == 240 and d["input"]["tokens_derived"] is True
    assert d["input"]["target_flops"] == pytest.approx(load_csv(DATA).flops.max())
    assert len(d["input"]["budgets_flops"]) == len(d["approach2"]["budgets"])  # the groups Approach 2 used
    draws = a3["bootstrap_draws"]  # (E, A, B, alpha, beta) per successful refit
    assert len(draws) == a3["bootstrap"]["succeeded"] == 20
    assert np.median([row[0] for row in draws]) == pytest.approx(a3["E"], rel=0.05)
    assert np.median([row[3] for row in draws]) == pytest.approx(a3["alpha"], rel=0.1)


def test_same_seed_same_intervals_other_seed_other_intervals():
    table = load_csv(DATA, drop_highest_loss=5)
    one, two = (fit_table(table, "3", bootstrap=8, seed=s).to_dict()["approach3"]["ci"] for s in (1, 1))
    other = fit_table(table, "3", bootstrap=8, seed=2).to_dict()["approach3"]["ci"]
    assert one == two and one != other


def test_all_skips_approach1_without_curves_but_explicit_request_raises():
    table = load_csv(DATA, drop_highest_loss=5)
    rep = fit_table(table, "all", bootstrap=0)
    assert set(rep.results) == {"approach2", "approach3", "kaplan"} and "approach1" in rep.skipped
    with pytest.raises(FitError, match="Approach 1 needs per-step training curves"):
        fit_table(table, ["1"])
    with pytest.raises(FitError, match="unknown approach 4"):
        fit_table(table, ["4"])


def test_long_per_step_table_runs_approach1_and_approach3_on_final_rows():
    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann eq. 10 (printed)
    rows = []
    for i, n in enumerate(np.geomspace(2e7, 2e9, 9)):
        for d in np.geomspace(1e9, 2e10 * (1 + i), 25):  # runs end at different token counts
            rows.append({"run_id": f"r{i}", "params": n, "tokens": d, "loss": chinchilla_loss(n, d, **truth)})
    rep = fit_table(pd.DataFrame(rows), approaches=("1", "3"), target_flops=1e21)
    assert rep["approach1"].runs == 9 and rep["approach3"].n_points == 9
    assert rep.to_dict()["input"]["curve_runs"] == 9
    from fits.plots import report_figures

    figures = report_figures(rep)
    assert set(figures) == {"fit_frontier", "fit_residuals", "fit_envelope"}
    envelope_axes = figures["fit_envelope"].axes[0]
    assert len(envelope_axes.lines) == 9 + 1  # every training curve and the envelope


def test_separate_curves_table_feeds_approach1():
    rows, finals = [], []
    for i, n in enumerate(np.geomspace(2e7, 2e9, 7)):
        tokens = np.geomspace(1e9, 2e10 * (1 + i), 20)
        loss = chinchilla_loss(n, tokens, 1.69, 406.4, 410.7, 0.34, 0.28)
        rows += [{"run_id": i, "params": n, "tokens": d, "loss": v} for d, v in zip(tokens, loss)]
        finals.append({"params": n, "tokens": tokens[-1], "loss": loss[-1] * 1.01})  # e.g. an eval loss
    rep = fit_table(pd.DataFrame(finals), approaches=("1", "3"), curves=pd.DataFrame(rows))
    assert rep["approach1"].runs == 7 and rep["approach3"].n_points == 7
    assert rep.table.loss == pytest.approx([f["loss"] for f in finals])  # final rows come from `data`
    with pytest.raises(FitError, match="curves must be a long table"):
        fit_table(pd.DataFrame(finals), approaches="1", curves=pd.DataFrame(finals))


def test_figures_are_returned_and_saved_as_png(report, tmp_path):
    from fits.plots import frontier_figure, report_figures, save_figures

    refs = {"Chinchilla (Hoffmann eq. 4)": (np.geomspace(1e18, 1e22, 5), 1.3 * (np.geomspace(1e18, 1e22, 5) / 6) ** 0.4565)}
    fig = frontier_figure(report, references=refs)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "Chinchilla (Hoffmann eq. 4)" in labels and any(lab.startswith("Approach 3") for lab in labels)
    assert set(report_figures(report)) == {"fit_frontier", "fit_residuals", "fit_isoflop"}
    paths = save_figures(report, tmp_path / "figs", references=refs)
    assert len(paths) == 3
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_fits_imports_no_budget_mlflow_torch_or_matplotlib():
    import subprocess

    code = ("import sys, fits; fits.fit_table; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('budget', 'mlflow', 'torch', 'matplotlib')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_fits_run_with_one_blas_thread_even_before_scipy_is_imported():
    """scipy's L-BFGS-B calls BLAS every iteration; a busy OpenBLAS pool made it ~50x slower."""
    pytest.importorskip("threadpoolctl")
    import subprocess

    code = ("from fits.common import single_blas_thread\n"
            "with single_blas_thread():\n"
            "    import scipy.optimize\n"  # as the fits do lazily: its BLAS must be limited too
            "    from threadpoolctl import threadpool_info\n"
            "    pools = [i for i in threadpool_info() if i['user_api'] == 'blas']\n"
            "    print(len(pools), max(i['num_threads'] for i in pools))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) >= 1 and out[1] == "1"
