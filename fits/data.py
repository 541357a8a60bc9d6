"""Input tables for the fits: column names, validation, derived tokens or FLOPs, training curves.

A fit table has one row per training run with `params` (N), `tokens` (D), `loss` and optionally
`flops` (C). When only `flops` is given, D = C / (6 N) (Kaplan et al. 2020 §2.1; Hoffmann et al.
2022 §3), and the table says so. A table with a `run_id` column and several rows per run holds
per-step training curves (Chinchilla Approach 1); its final rows (largest `tokens` per run) are
the runs' final losses used by the other approaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fits.errors import FitError

MAX_LOSS = 1e3  # losses are cross-entropies in nats (1-10 in practice); far above is a wrong column or unit
FLOPS_PER_PARAM_TOKEN = 6.0  # C = 6 N D: 2 forward + 4 backward FLOPs per parameter per token (Kaplan 2020 §2.1)

# Accepted spellings (case-insensitive) of each column; the first is the canonical name.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "params": ("params", "n", "parameters", "n_params", "model size", "model_size"),
    "tokens": ("tokens", "d", "n_tokens", "training tokens", "training_tokens"),
    "flops": ("flops", "c", "compute", "training flop", "training flops", "training_flops"),
    "loss": ("loss", "final_loss", "final loss"),
    "run_id": ("run_id", "run", "run id"),
}


@dataclass(frozen=True, eq=False)
class Curves:
    """Per-step training curves in long form: one row per (run, step), sorted by run then tokens."""

    run_id: np.ndarray
    params: np.ndarray
    tokens: np.ndarray
    flops: np.ndarray
    loss: np.ndarray

    @property
    def runs(self) -> int:
        return int(len(np.unique(self.run_id)))


@dataclass(frozen=True, eq=False)
class FitTable:
    """Validated final-loss table (arrays of equal length) plus optional training curves."""

    params: np.ndarray
    tokens: np.ndarray
    flops: np.ndarray
    loss: np.ndarray
    tokens_derived: bool = False
    flops_derived: bool = False
    dropped_highest_loss: int = 0
    curves: Curves | None = None
    duplicates_dropped: int = 0  # rows identical to an earlier row in every column, left out

    def __len__(self) -> int:
        return int(len(self.loss))

    def to_dict(self) -> dict[str, Any]:
        notes = []
        if self.tokens_derived:
            notes.append("tokens derived as flops / (6 * params)")
        if self.flops_derived:
            notes.append("flops derived as 6 * params * tokens")
        if self.dropped_highest_loss:
            notes.append(f"dropped the {self.dropped_highest_loss} highest-loss points")
        if self.duplicates_dropped:
            notes.append(f"dropped {self.duplicates_dropped} duplicate row(s) (identical in every column to "
                         "an earlier row; counted twice they would shrink the bootstrap intervals)")
        return {
            "points": len(self),
            "distinct_params": int(len(np.unique(self.params))),
            "tokens_derived": self.tokens_derived,
            "flops_derived": self.flops_derived,
            "dropped_highest_loss": self.dropped_highest_loss,
            "curve_runs": self.curves.runs if self.curves is not None else 0,
            "notes": notes,
        }


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV file into a DataFrame; unreadable files raise FitError."""
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise FitError(f"cannot read CSV {str(path)!r}: {' '.join(str(exc).split())}") from exc


def prepare_table(df: pd.DataFrame, drop_highest_loss: int = 0) -> FitTable:
    """Validate a DataFrame of runs (or per-step curves) into a FitTable."""
    if not isinstance(df, pd.DataFrame):
        raise FitError(f"expected a pandas DataFrame, got {type(df).__name__}")
    cols = _canonical_columns(df)
    if len(df) == 0:
        raise FitError(f"the table has a header ({', '.join(map(str, df.columns))}) but no data rows; "
                       "add one row per run")
    frame = pd.DataFrame({name: _numeric(df[src], name) for name, src in cols.items() if name != "run_id"})
    _check_losses(frame["loss"].to_numpy())
    tokens_derived = "tokens" not in frame
    flops_derived = "flops" not in frame
    if tokens_derived:
        frame["tokens"] = frame["flops"] / (FLOPS_PER_PARAM_TOKEN * frame["params"])
    if flops_derived:
        frame["flops"] = FLOPS_PER_PARAM_TOKEN * frame["params"] * frame["tokens"]
    curves = None
    if "run_id" in cols:
        frame["run_id"] = df[cols["run_id"]].astype(str).to_numpy()
    before = len(frame)
    frame = frame.drop_duplicates(ignore_index=True)
    duplicates = before - len(frame)
    if "run_id" in cols:
        if frame["run_id"].duplicated().any():
            curves = _curves(frame)
            frame = frame.loc[frame.groupby("run_id", sort=False)["tokens"].idxmax()]
    frame = _drop_highest(frame, drop_highest_loss)
    return FitTable(
        params=frame["params"].to_numpy(float), tokens=frame["tokens"].to_numpy(float),
        flops=frame["flops"].to_numpy(float), loss=frame["loss"].to_numpy(float),
        tokens_derived=tokens_derived, flops_derived=flops_derived,
        dropped_highest_loss=int(drop_highest_loss), curves=curves, duplicates_dropped=duplicates)


def load_csv(path: str | Path, drop_highest_loss: int = 0) -> FitTable:
    """Read and validate a CSV of runs: `read_table` then `prepare_table`."""
    return prepare_table(read_table(path), drop_highest_loss=drop_highest_loss)


def check_positive(**arrays: Any) -> list[np.ndarray]:
    """Convert named 1-D arrays to float and check they are finite, > 0 and of equal length."""
    out = []
    for name, values in arrays.items():
        arr = np.asarray(values, dtype=float).ravel()
        bad = ~np.isfinite(arr) | (arr <= 0)
        if bad.any():
            raise FitError(f"{name} has {int(bad.sum())} missing, non-finite or non-positive values "
                           f"(first at index {int(np.argmax(bad))}); every value must be a finite number > 0")
        out.append(arr)
    lengths = {len(a) for a in out}
    if len(lengths) > 1:
        raise FitError(f"{', '.join(arrays)} must have equal lengths, got {[len(a) for a in out]}")
    return out


def require(count: int, needed: int, what: str, method: str) -> None:
    """Raise FitError unless `count >= needed` (e.g. points or distinct sizes for a method)."""
    if count < needed:
        raise FitError(f"{method} needs at least {needed} {what}, got {count}")


def _canonical_columns(df: pd.DataFrame) -> dict[str, str]:
    lookup = {str(c).strip().lower(): c for c in df.columns}
    found: dict[str, str] = {}
    for name, aliases in COLUMN_ALIASES.items():
        hit = next((lookup[a] for a in aliases if a in lookup), None)
        if hit is not None:
            found[name] = hit
    missing = [n for n in ("params", "loss") if n not in found]
    if "tokens" not in found and "flops" not in found:
        missing.append("tokens (or flops)")
    if missing:
        raise FitError(f"missing column(s) {', '.join(missing)}; need params, loss and tokens or flops "
                       f"(got {', '.join(map(str, df.columns)) or 'no columns'})")
    return found


def _numeric(column: pd.Series, name: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce").astype(float)
    bad = ~np.isfinite(values.to_numpy()) | (values.to_numpy() <= 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise FitError(f"column {name!r} has {int(bad.sum())} missing, non-numeric or non-positive values "
                       f"(first at data row {row + 1}: {as_typed(column.iloc[row])}); "
                       "every value must be a number > 0")
    return values.reset_index(drop=True)


def as_typed(value: Any) -> str:
    """A cell as the user wrote it: text quoted, numbers plainly (-2000000, not np.float64(-2000000.0))."""
    if isinstance(value, str):
        return repr(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "(empty)"
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)


def _check_losses(loss: np.ndarray) -> None:
    """Losses a law can be fitted to: below MAX_LOSS and not all equal."""
    high = loss > MAX_LOSS
    if high.any():
        row = int(np.argmax(high))
        raise FitError(f"column 'loss' has {int(high.sum())} value(s) above {MAX_LOSS:g} (first at data row "
                       f"{row + 1}: {as_typed(loss[row])}); give the cross-entropy loss in nats, not perplexity")
    if len(loss) > 1 and np.all(loss == loss[0]):
        raise FitError(f"column 'loss' is {as_typed(loss[0])} in every row; a scaling law needs losses that "
                       "change with model size or data")


def _curves(frame: pd.DataFrame) -> Curves:
    ordered = frame.sort_values(["run_id", "tokens"], kind="stable")
    return Curves(run_id=ordered["run_id"].to_numpy(), params=ordered["params"].to_numpy(float),
                  tokens=ordered["tokens"].to_numpy(float), flops=ordered["flops"].to_numpy(float),
                  loss=ordered["loss"].to_numpy(float))


def _drop_highest(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Epoch's exclusion rule: keep loss < sorted(loss)[-k] (Besiroglu et al. 2024, notebook cell 15)."""
    if k < 0:
        raise FitError(f"drop_highest_loss must be >= 0, got {k}")
    if k == 0:
        return frame
    if k >= len(frame):
        raise FitError(f"cannot drop the {k} highest-loss points of a table with {len(frame)} rows")
    threshold = np.sort(frame["loss"].to_numpy())[-k]
    return frame[frame["loss"] < threshold]
