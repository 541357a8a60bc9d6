"""Fits at scale and honest data (issue 17 item 8): O(n log n) budget grouping, bounded memory,
duplicate rows said and dropped, bounded bootstrap, header-only tables and degenerate losses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits import FitError, cluster_budgets, fit_table, prepare_table
from fits.common import MAX_BOOTSTRAP, iter_resample_weights, resample_weights

ROOT = Path(__file__).resolve().parent.parent


def test_interval_linkage_matches_scipy_complete_linkage():
    """On untied data the heap merge gives exactly scipy's complete-linkage clusters (fcluster at
    criterion='distance'); ties may break differently, so the values are continuous here."""
    from scipy.cluster.hierarchy import fcluster, linkage

    rng = np.random.default_rng(7)
    for _ in range(100):
        flops = 10 ** rng.uniform(17, 21, rng.integers(2, 80))
        tol = rng.uniform(0.02, 0.6)
        ours = cluster_budgets(flops, tol)
        theirs = fcluster(linkage(np.log10(flops)[:, None], method="complete"), tol, criterion="distance")
        def as_sets(lab): return {frozenset(np.flatnonzero(lab == k)) for k in np.unique(lab)}
        assert as_sets(ours) == as_sets(theirs)
        spans = [np.ptp(np.log10(flops[ours == k])) for k in np.unique(ours)]
        assert max(spans) <= tol
        assert list(np.argsort([np.log10(flops[ours == k]).mean() for k in np.unique(ours)])) == list(range(len(spans)))


def test_cluster_budgets_of_50k_distinct_values():
    flops = 10 ** np.random.default_rng(0).uniform(17, 20, 50_000)
    labels = cluster_budgets(flops, 0.15)
    assert labels.shape == (50_000,) and 20 <= labels.max() + 1 <= 40


def test_blocked_resample_draws_equal_the_whole_matrix():
    whole = resample_weights(50, 30, seed=3)
    assert np.array_equal(np.array(list(iter_resample_weights(50, 30, seed=3))), whole)


def test_bootstrap_is_bounded():
    frame = _synthetic(40)
    with pytest.raises(FitError, match="from 0 to 10,000"):
        fit_table(frame, ["3"], bootstrap=MAX_BOOTSTRAP + 1)
    with pytest.raises(FitError, match="from 0 to 10,000"):
        fit_table(frame, ["3"], bootstrap=int(1e25))


def test_duplicate_rows_are_dropped_and_said():
    """Duplicates (a CSV concatenated twice) shrank the bootstrap intervals ~17x; now dropped."""
    frame = _synthetic(60)
    doubled = pd.concat([frame, frame], ignore_index=True)
    table = prepare_table(doubled)
    assert len(table) == 60 and table.duplicates_dropped == 60
    assert any("60 duplicate row(s)" in note for note in table.to_dict()["notes"])
    one = fit_table(frame, ["3"], bootstrap=30, seed=1)["approach3"].ci["alpha"]
    two = fit_table(doubled, ["3"], bootstrap=30, seed=1)["approach3"].ci["alpha"]
    assert (two.low, two.high) == (one.low, one.high)


@pytest.mark.parametrize("frame,message", [
    (pd.DataFrame({"params": [], "tokens": [], "loss": []}), "header .* but no data rows"),
    (pd.DataFrame({"params": [1e6, 2e6, 4e6], "tokens": [1e8, 2e8, 4e8], "loss": [3.0, 3.0, 3.0]}),
     "'loss' is 3 in every row"),
    (pd.DataFrame({"params": [1e6, 2e6], "tokens": [1e8, 2e8], "loss": [3.0, 1e300]}),
     "above 1000 .*data row 2"),
])
def test_degenerate_tables_are_one_fit_error(frame, message):
    with pytest.raises(FitError, match=message):
        prepare_table(frame)


def test_100k_row_fit_runs_in_bounded_memory(tmp_path):
    """100k runs with Approaches 2, 3 and Kaplan in a child process capped at 3 GiB of address
    space (before issue 17 they asked for 37 GiB; benchmarks/bench_fit_scale.py measures ~340 MiB RSS)."""
    csv = tmp_path / "runs.csv"
    _synthetic(100_000, budgets=5).to_csv(csv, index=False)
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
            "from fits import load_csv, fit_table; "
            "r = fit_table(load_csv(sys.argv[1]), ['2', '3', 'kaplan'], bootstrap=2); "
            "print(r['approach3'].alpha, r['approach2'].a)")
    proc = subprocess.run([sys.executable, "-c", code, str(csv)], capture_output=True, text=True, check=False,
                          cwd=ROOT, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                      "OPENBLAS_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-500:]
    alpha, a = (float(v) for v in proc.stdout.split())
    assert alpha == pytest.approx(0.34, abs=0.05)  # the generating law (Hoffmann et al. 2022 eq. 10)
    assert a == pytest.approx(0.28 / 0.62, abs=0.06)  # a = beta / (alpha + beta)


def _synthetic(n: int, budgets: int = 4, seed: int = 0) -> pd.DataFrame:
    """Runs on Chinchilla's law (Hoffmann et al. 2022 eq. 10: E 1.69, A 406.4, B 410.7, alpha 0.34,
    beta 0.28) at log-spaced budgets, sizes log-uniform, 1% log-normal noise."""
    rng = np.random.default_rng(seed)
    flops = np.logspace(17, 19, budgets)[rng.integers(0, budgets, n)]
    params = np.exp(rng.uniform(np.log(1e6), np.log(1e9), n))
    tokens = flops / (6 * params)
    loss = (1.69 + 406.4 / params**0.34 + 410.7 / tokens**0.28) * np.exp(rng.normal(0, 0.01, n))
    return pd.DataFrame({"params": params, "tokens": tokens, "loss": loss})
