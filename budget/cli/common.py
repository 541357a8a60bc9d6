"""Shared CLI plumbing: one-line errors with exit 2, the `--json` option, number parsing.

Every command parses its options, makes one library call and renders the result. Library
errors that carry `cli_exit_code` (BudgetError, fits.FitError, experiments.SweepError) become
one line on stderr and that exit code; so do click's own usage errors.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from typing import Any, Callable

import click


def one_line(message: str) -> str:
    """Collapse a message to one line (the CLI contract: one line on stderr), its control
    characters escaped (`budget.render.printable`): a bad value is shown, never executed."""
    from budget.text import printable

    return printable(" ".join(str(message).split()))


class BudgetGroup(click.Group):
    """A click group whose errors are one line on stderr, never a traceback or usage dump."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                warnings.simplefilter("always", _budget_warning())
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:  # pragma: no cover - click returns it instead
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except Exception as exc:  # library errors marked as the user's
            code = getattr(exc, "cli_exit_code", None)
            if code is None:
                raise
            click.echo(f"Error: {one_line(str(exc))}", err=True)
            sys.exit(code)
        sys.exit(rv if isinstance(rv, int) else 0)


def _budget_warning() -> type[Warning]:
    from budget.errors import BudgetWarning

    return BudgetWarning


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """BudgetWarning: one 'Warning:' line on stderr; other warnings as Python prints them."""
    if issubclass(category, _budget_warning()):
        click.echo(f"Warning: {one_line(str(message))}", err=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """The shared `--json` flag: print exactly one JSON object instead of the table."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object (the result's to_dict()) instead of a table.")(func)


def emit(result: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    """Print `result.to_dict()` as JSON, or the human rendering."""
    if as_json:
        payload = result.to_dict() if hasattr(result, "to_dict") else result
        click.echo(json.dumps(_finite(payload), indent=2, allow_nan=False, default=_json_default))
    else:
        from budget.text import printable

        click.echo(printable(render(result), keep_newlines=True))


def _finite(value: Any) -> Any:
    """Strict JSON: inf and NaN (an overflowed estimate) become null instead of a crash."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class Number(click.ParamType):
    """A finite number written as 1e21, 3.5e9 or 1_000; errors name the option and what is allowed.

    `positive`: > 0. `low`/`high`: bounds, inclusive unless `low_open`/`high_open`. NaN and
    infinities are always refused (a NaN passes every comparison, so click's FloatRange takes it).
    The one type for every real-valued option: PUE, grid intensity, MFU, efficiencies, budgets."""

    name = "number"

    def __init__(self, positive: bool = True, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False):
        self.positive = positive
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def allowed(self) -> str:
        """What the option takes, in words (for its errors)."""
        if self.low is not None and self.high is not None:
            return (f"a number {'>' if self.low_open else '>='} {self.low:g} and "
                    f"{'<' if self.high_open else '<='} {self.high:g}")
        if self.low is not None:
            return f"a number {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return ("a number > 0 and " if self.positive else "a number ") + \
                f"{'<' if self.high_open else '<='} {self.high:g}"
        return "a finite number > 0" if self.positive else "a finite number"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(str(value).replace("_", "").strip())
            except (ValueError, OverflowError):
                self.fail(f"{value!r} is not a number; give {self.allowed()}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not finite; give {self.allowed()}", param, ctx)
        below = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        above = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if below or above:
            self.fail(f"{value!r} is out of range; give {self.allowed()}", param, ctx)
        if self.positive and number <= 0:
            bounded = self.low is not None or self.high is not None
            self.fail(f"{value!r} must be > 0" + (f"; give {self.allowed()}" if bounded else ""),
                      param, ctx)
        return number


POSITIVE = Number()
FINITE = Number(positive=False)
FRACTION = Number(high=1.0)  # (0, 1]: an MFU, an efficiency, a share of memory or power
# power usage effectiveness, facility power / IT power (The Green Grid): the energy model's [1, 3]
PUE = Number(low=1.0, high=3.0)
POWER_FRACTION = Number(high=2.0)  # average board draw / TDP, (0, 2]
GRID_GCO2_PER_KWH = Number(positive=False, low=0.0, high=2000.0)  # gCO2e/kWh; coal ~1,000


def number_pair(text: str, option: str, kind: Number = FRACTION) -> tuple[float, float]:
    """'LOW,HIGH' as two numbers of `kind` with LOW < HIGH; UsageError naming `option` otherwise."""
    parts = str(text).split(",")
    if len(parts) != 2:
        raise click.UsageError(f"{option} {text!r} must be two numbers LOW,HIGH (e.g. 0.30,0.50)")
    low, high = (_pair_part(kind, p, option, text) for p in parts)
    if not low < high:
        raise click.UsageError(f"{option} {text!r}: LOW {low:g} must be below HIGH {high:g}; "
                               "give LOW,HIGH such as 0.30,0.50")
    return low, high


def _pair_part(kind: Number, part: str, option: str, text: str) -> float:
    try:
        return kind.convert(part, None, None)
    except click.BadParameter as exc:
        raise click.UsageError(f"{option} {text!r}: {exc.message}") from None


class PositiveInt(click.ParamType):
    """An integer >= 1 (GPU counts, points, layers)."""

    name = "integer"

    def __init__(self, maximum: int | None = None):
        self.maximum = maximum

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        try:
            number = float(str(value).replace("_", ""))
        except ValueError:
            self.fail(f"{value!r} is not an integer; give a whole number >= 1", param, ctx)
        if not math.isfinite(number) or number != int(number) or number < 1:
            self.fail(f"{value!r} must be a whole number >= 1", param, ctx)
        if self.maximum is not None and number > self.maximum:
            self.fail(f"{value!r} is more than {self.maximum:,}; give a whole number from 1 to "
                      f"{self.maximum:,}", param, ctx)
        return int(number)


POSITIVE_INT = PositiveInt()


class Name(click.ParamType):
    """A name to look up (an accelerator id or alias): non-empty, no control characters. An empty
    --gpu read as 'no GPU' and was dropped silently; the lookup itself says what exists."""

    name = "name"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        from budget.text import has_control, printable

        text = str(value).strip()
        if not text:
            self.fail("an empty name; give an accelerator id or alias ('budget gpus' lists them)",
                      param, ctx)
        if has_control(text):
            self.fail(f"{printable(repr(text))} holds a control character; give an accelerator id "
                      "or alias ('budget gpus' lists them)", param, ctx)
        return text


ACCELERATOR = Name()


def check_writable_dir(path: str, option: str) -> None:
    """UsageError unless `path` is (or can be made) a folder this process can write into."""
    import os
    import tempfile

    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise click.UsageError(f"{option} {path!r} is not a folder that can be written ({reason}); "
                               "give a writable folder") from None


def check_writable_file(path: str, option: str) -> None:
    """UsageError unless a file can be written at `path`: its folder is (or can be made) writable
    and `path` is not a folder. Run before the work, so a bad path costs nothing."""
    import os

    if os.path.isdir(path):
        raise click.UsageError(f"{option} {path!r} is a folder; give a file name such as r.png")
    check_writable_dir(os.path.dirname(os.path.abspath(path)), option)


def write_failed(path: str, option: str, exc: OSError) -> click.UsageError:
    """The one-line error for a file that could not be written after all (disk full, removed)."""
    return click.UsageError(f"{option} {path!r} could not be written "
                            f"({exc.strerror or type(exc).__name__}); give a writable file")


def require_extra(extra: str, *modules: str) -> None:
    """Exit 2 with the pip line to run when an optional dependency is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise click.UsageError(
            f"this command needs {', '.join(missing)}; install the extra: "
            f"pip install 'compute-budget[{extra}]'")
