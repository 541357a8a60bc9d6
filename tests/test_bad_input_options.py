"""Issue 27's probe cases, grouped by area: each once gave a wrong answer with exit 0 or a
traceback; each now exits 2 with one 'Error:' line naming the bad value and what is allowed.

Areas: real-valued option types (one shared type, budget.cli.common.Number), layout options,
edges of the number range, catalogs and config files (ids, nesting, size).
"""

from __future__ import annotations

import shlex

import pytest
from click.testing import CliRunner

from budget.cli import main


def run_bad(args: list[str]) -> str:
    """Run `budget ARGS` in-process; assert exit 2, one 'Error:' line, no traceback; the line."""
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"traceback: {result.exception!r}")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr[-500:], result.stdout[-300:])
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    return lines[0]


SERVE = "serve --model llama-2-7b"

# the real-valued options: every one reads through budget.cli.common.Number (NaN and inf refused,
# ranges stated); each row once exited 0
OPTION_CASES = [
    (f"{SERVE} --pue nan", "'--pue': 'nan' is not finite"),
    (f"{SERVE} --pue -1", "'--pue': '-1' is out of range; give a number >= 1 and <= 3"),
    (f"{SERVE} --pue inf", "'--pue': 'inf' is not finite"),
    (f"{SERVE} --grid-gco2-per-kwh nan", "'--grid-gco2-per-kwh': 'nan' is not finite"),
    (f"{SERVE} --power-fraction nan", "'--power-fraction': 'nan'"),
    (f"{SERVE} --memory-fraction 1.5", "'--memory-fraction': '1.5' is out of range"),
    (f"{SERVE} --flops-efficiency nan", "'--flops-efficiency'"),
    ("plan --flops 1e21 --grid-gco2-per-kwh nan", "'--grid-gco2-per-kwh': 'nan' is not finite"),
    ("plan --flops 1e21 --pue nan", "'--pue': 'nan'"),
    ("energy --gpu-hours 100 --pue nan", "'--pue': 'nan'"),
    ("energy --gpu-hours 100 --grid-gco2-per-kwh nan", "'--grid-gco2-per-kwh'"),
    ("frontier --flops 1e21 --mfu nan", "'--mfu': 'nan'"),
    ("plan --flops 1e21 --num-gpus 8 --days 2 --goodput nan", "'--goodput': 'nan'"),
    # --mfu-band: LOW < HIGH, both MFUs
    ("plan --flops 1e21 --mfu-band 0.5,0.3", "LOW 0.5 must be below HIGH 0.3"),
    ("plan --flops 1e21 --mfu-band 0.4,0.4", "LOW 0.4 must be below HIGH 0.4"),
    ("plan --flops 1e21 --mfu-band nan,0.5", "'nan' is not finite"),
    ("plan --flops 1e21 --mfu-band 0.3,1.5", "'1.5' is out of range"),
    ("report --flops 1e21 --out /tmp/never-written --mfu-band 0.5,0.3", "LOW 0.5 must be below"),
]

# --layout: read even where nothing uses it; one GPU count; each key once
LAYOUT_CASES = [
    ("memory --params 1e9 --layout garbage", "--layout lays the model out on --gpu"),
    ("memory --params 1e9 --gpu h100 --layout garbage", "layout item 'garbage' must be KEY=VALUE"),
    ("plan --flops 1e21 --gpu h100 --num-gpus 8 --layout dp=16",
     "--num-gpus 8 contradicts --layout dp=16 (tp x pp x cp x dp = 16 GPUs)"),
    ("plan --flops 1e21 --gpu h100 --nodes 2 --layout tp=2,dp=16", "--nodes 2 x 8 GPUs per node contradicts"),
    ("plan --flops 1e21 --gpu h100 --layout tp=2,tp=4", "gives tp twice"),
    ("memory --params 1e9 --gpu h100 --layout dp=2,DP=4", "gives dp twice"),
]


# edges of the number range: each was a traceback, a warning then an error, or a nonsense plan
EDGE_CASES = [
    ("plan --flops 1e-320", "less than one floating-point operation"),  # ZeroDivisionError
    ("plan --flops 1e-320 --gpu h100 --json", "less than one floating-point operation"),
    ("plan --pf-days 1e-320", "less than one floating-point operation"),  # exit 0, 1e203x C
    ("plan --gpu-hours 1e-300 --gpu h100", "less than one floating-point operation"),  # warning + error
    ("plan --budget-usd 1e-300 --gpu h100", "less than one floating-point operation"),
    ("plan --params 1e-300 --tokens 1", "less than one floating-point operation"),  # ZeroDivisionError
    ("frontier --flops 1e-320", "less than one floating-point operation"),
    ("plan --target-loss 1e308", "loss 1e+308 needs 0 FLOPs of training"),
    ("plan --target-loss 5000", "less than one"),
    ("roofline --model llama-2-7b --plot /proc/nope/r.png", "--plot '/proc/nope' is not a folder"),
    ("roofline --model llama-2-7b --plot /", "'--plot'"),
]


@pytest.mark.parametrize("line,expected", OPTION_CASES + LAYOUT_CASES + EDGE_CASES,
                         ids=[line for line, _ in OPTION_CASES + LAYOUT_CASES + EDGE_CASES])
def test_bad_option_is_one_line_exit_2(line: str, expected: str) -> None:
    assert expected in run_bad(shlex.split(line))


def test_a_layout_with_dp_sets_the_gpu_count_when_num_gpus_is_not_given() -> None:
    """Not an error: `--layout tp=2,dp=16` alone plans 32 GPUs, both in the plan and the layout."""
    import json

    result = CliRunner().invoke(main, ["plan", "--flops", "1e21", "--gpu", "h100", "--layout",
                                       "tp=2,dp=16", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["num_gpus"] == 32 and plan["parallel"]["num_gpus"] == plan["layout"]["num_gpus"] == 32


def test_number_type_refuses_nan_where_click_float_range_took_it() -> None:
    """The root of the --pue/--grid cases: click.FloatRange lets NaN through (every comparison
    with NaN is false); budget.cli.common.Number does not."""
    import click

    from budget.cli.common import GRID_GCO2_PER_KWH, PUE

    assert click.FloatRange(0, 2000).convert("nan", None, None) != 0  # NaN passes click's range
    for kind in (PUE, GRID_GCO2_PER_KWH):
        with pytest.raises(click.BadParameter):
            kind.convert("nan", None, None)

