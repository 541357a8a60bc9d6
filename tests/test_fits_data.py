"""Input tables: column names, derived tokens, validation errors that say what is needed."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits import FitError, load_csv, prepare_table

DATA = Path(__file__).parent / "data" / "chinchilla_svg_extracted_data.csv"


def test_chinchilla_csv_columns_are_recognised_and_tokens_derived():
    table = load_csv(DATA)
    assert len(table) == 245 and table.tokens_derived and not table.flops_derived
    np.testing.assert_allclose(6 * table.params * table.tokens, table.flops)
    assert "tokens derived as flops / (6 * params)" in table.to_dict()["notes"]


def test_epochs_exclusion_rule_drops_the_five_highest_losses():
    full, kept = load_csv(DATA), load_csv(DATA, drop_highest_loss=5)
    assert len(kept) == 240 and kept.to_dict()["dropped_highest_loss"] == 5
    assert kept.loss.max() < np.sort(full.loss)[-5]


def test_tokens_given_means_flops_are_derived():
    table = prepare_table(pd.DataFrame({"Params": [1e8, 2e8], "TOKENS": [1e9, 3e9], "loss": [3.0, 2.9]}))
    assert table.flops_derived and not table.tokens_derived
    np.testing.assert_allclose(table.flops, [6e17, 3.6e18])


def test_per_step_curves_give_final_rows_and_curves():
    df = pd.DataFrame({"run_id": ["a", "a", "a", "b", "b"], "params": [1e8] * 3 + [2e8] * 2,
                       "tokens": [1e8, 3e8, 2e8, 1e8, 5e8], "loss": [4.0, 3.0, 3.5, 3.8, 2.9]})
    table = prepare_table(df)
    assert len(table) == 2 and table.curves is not None and table.curves.runs == 2
    assert sorted(table.loss) == [2.9, 3.0]  # the last step (most tokens) of each run
    np.testing.assert_array_equal(table.curves.tokens[:3], [1e8, 2e8, 3e8])  # sorted within a run


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"params": [1.0], "loss": [2.0]}), "missing column.*tokens \\(or flops\\)"),
    (pd.DataFrame({"tokens": [1.0], "loss": [2.0]}), "missing column.*params"),
    (pd.DataFrame({"params": [1e8, -1], "tokens": [1e9, 1e9], "loss": [3, 3]}), "'params' has 1 .*data row 2: -1\\)"),
    (pd.DataFrame({"params": [1e8, 2e8], "tokens": [1e9, 1e9], "loss": [3, "x"]}), "'loss' has 1 .*'x'"),
    (pd.DataFrame({"params": [1e8, 2e8], "flops": [np.nan, 1e19], "loss": [3, 3]}), "'flops' has 1"),
])
def test_bad_tables_raise_fit_error_naming_the_problem(frame, message):
    with pytest.raises(FitError, match=message):
        prepare_table(frame)


def test_unreadable_csv_and_bad_drop_count(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"")
    with pytest.raises(FitError, match="cannot read CSV"):
        load_csv(bad)
    with pytest.raises(FitError, match="cannot drop the 300"):
        load_csv(DATA, drop_highest_loss=300)


def test_fit_error_is_a_cli_usage_error():
    assert FitError.cli_exit_code == 2 and issubclass(FitError, ValueError)
