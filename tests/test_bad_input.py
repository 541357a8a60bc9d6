"""Every command's bad input ends in one line: exit 2, one 'Error:' line on stderr, no traceback.

The case table is a list of (command line, text the error must contain). `{tmp}` in an argument is
replaced by a folder holding the fixture files below (a bad catalog, bad CSVs, layer lists). To
add a command's cases, append rows to CASES; a case whose command this branch lacks is skipped.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from budget.cli import main

CATALOG_ROW = """
[[accelerator]]
id = "{id}"
name = "Example GPU"
vendor = "Example"
memory_gb = 96
memory_bandwidth_gbs = 4000
[accelerator.peak_tflops]
bf16 = {peak}
[accelerator.sources]
peak = "vendor sheet"
memory = "vendor sheet"
bandwidth = "vendor sheet"
"""

FILES = {
    "header.csv": "params,tokens,loss\n",
    "empty.csv": "",
    "nocols.csv": "size,steps\n1,2\n",
    "text.csv": "params,tokens,loss\n1e6,2e7,3.1\n2e6,lots,3.0\n",
    "negative.csv": "params,tokens,loss\n1e6,-2e6,3.1\n",
    "constant.csv": "params,tokens,loss\n" + "".join(f"{n},{d},3.0\n" for n in (1e6, 2e6, 4e6) for d in (1e8, 2e8)),
    "huge.csv": "params,tokens,loss\n" + "".join(f"{n},{d},1e300\n" for n in (1e6, 2e6, 4e6) for d in (1e8, 2e8)),
    "typo.toml": CATALOG_ROW.format(id="x", peak=1000).replace("memory_gb", "memory_gib"),
    "tiny_peak.toml": CATALOG_ROW.format(id="x", peak="1e-30"),
    "huge_peak.toml": CATALOG_ROW.format(id="x", peak="1e30"),
    "twins.toml": CATALOG_ROW.format(id="x", peak=1000) + CATALOG_ROW.format(id="x", peak=900),
    "notoml.toml": "[[accelerator\n",
    "repeats.toml": 'name = "big"\ninput = [3, 32, 32]\n[[stage]]\nname = "s"\nrepeats = 1e12\n'
                    'layers = [{ type = "conv", out = 8, kernel = 3 }]\n',
    "noparams.toml": 'name = "pool only"\ninput = [3, 32, 32]\n[[stage]]\nname = "s"\n'
                     'layers = [{ type = "activation", fn = "relu" }]\n',
    "badlayer.toml": 'name = "x"\ninput = [3, 32, 32]\n[[stage]]\nname = "s"\nlayers = [{ type = "conv2d" }]\n',
    "coeffs.csv": "width,depth\n1,2\n",
}

# (command line, text the one-line error must contain)
CASES: list[tuple[str, str]] = [
    # plan
    ("plan", "--flops"),
    ("plan --flops abc --gpu h100", "'abc' is not a number"),
    ("plan --flops -1e21 --gpu h100", "must be > 0"),
    ("plan --flops inf --gpu h100", "not finite"),
    ("plan --flops nan --gpu h100", "not finite"),
    ("plan --flops 0 --gpu h100", "must be > 0"),
    ("plan --flops 1e21 --gpu h10", "close matches"),
    ("plan --flops 1e21 --gpu h100 --mfu 0", "'--mfu': '0' must be > 0"),
    ("plan --flops 1e21 --gpu h100 --mfu 1.5", "'1.5' is out of range; give a number > 0 and <= 1"),
    ("plan --flops 1e21 --gpu h100 --mfu-band 0.5", "--mfu-band"),
    ("plan --flops 1e21 --gpu h100 --law gpt", "--law"),
    ("plan --flops 1e21 --gpu h100 --zero 4", "--zero"),
    ("plan --flops 1e21 --gpu h100 --num-gpus 0", "--num-gpus"),
    ("plan --flops 1e21 --gpu h100 --num-gpus 2.5", "--num-gpus"),
    ("plan --flops 1e21 --gpu v100 --precision bf16", "no bf16 peak"),
    ("plan --flops 1e21 --gpu h100 --precision fp64", "--precision"),
    ("plan --flops 1e21 --pf-days 3 --gpu h100", "--pf-days"),
    ("plan --params 1e9 --tokens -5 --gpu h100", "-5"),
    ("plan --model llama-2-7b --params 7e9", "a named model fixes N"),
    ("plan --model nosuch --tokens 1e12", "unknown model 'nosuch'"),
    ("plan --flops 1e21 --gpu h100 --catalog {tmp}/missing.toml", "missing.toml"),
    ("plan --flops 1e21 --gpu h100 --catalog {tmp}/typo.toml", "did you mean 'memory_gb'"),
    ("plan --flops 1e21 --gpu x --catalog {tmp}/tiny_peak.toml", "plausible range"),
    ("plan --flops 1e21 --gpu x --catalog {tmp}/huge_peak.toml --json", "plausible range"),
    ("plan --flops 1e21 --gpu h100 --catalog {tmp}/twins.toml", "both have id 'x'"),
    ("plan --flops 1e21 --gpu h100 --catalog {tmp}/notoml.toml", "not valid TOML"),
    ("plan --flops 1e21 --gpu h100 --seq-len 0", "--seq-len"),
    ("plan --flops 1e21 --gpu h100 --calibrate {tmp}/header.csv", "header.csv"),
    ("plan --budget-usd 1000 --gpu h100 --price-per-hour -3", "must be > 0"),
    # gpus
    ("gpus --catalog {tmp}/typo.toml", "unknown field 'memory_gib'"),
    ("gpus --catalog {tmp}/twins.toml --json", "both have id"),
    ("gpus --catalog {tmp}", "{tmp}"),
    # flops
    ("flops", "give"),
    ("flops --n-layer 0 --d-model 768", "--n-layer"),
    ("flops --n-layer 12 --d-model abc", "--d-model"),
    ("flops --n-layer 12 --d-model 768 --n-head 7", "7"),
    ("flops --params -5", "must be > 0"),
    ("flops --layers nosuch-net", "nosuch-net"),
    ("flops --layers {tmp}/badlayer.toml", "conv2d"),
    ("flops --layers {tmp}/repeats.toml", "repeats"),
    ("scale --base {tmp}/noparams.toml --phi 1", "no parameters"),
    ("flops --layers resnet-18 --image-size 0", "--image-size"),
    ("flops --layers resnet-18 --bytes-per-element 0", "--bytes-per-element"),
    # memory
    ("memory", "give"),
    ("memory --params 0", "must be > 0"),
    ("memory --params 7e9 --zero 5", "--zero"),
    ("memory --params 7e9 --micro-batch 0", "--micro-batch"),
    ("memory --params 7e9 --gpu nosuch", "unknown accelerator"),
    ("memory --params 7e9 --precision int3", "--precision"),
    ("memory --params 7e9 --num-gpus -1", "--num-gpus"),
    # scale
    ("scale --variant b9", "--variant"),
    ("scale efficientnet --resolution 240", "--image-size 240"),
    ("scale efficientnet --resolution 1.2 --image-size 240", "not both"),
    ("scale efficientnet --phi -40", "phi"),
    ("scale", "give a base network"),
    ("scale efficientnet --variant b1 --phi 1", "choose one way"),
    ("scale resnet-18 --variant b1", "EfficientNet"),
    ("scale --phi abc", "not a number"),
    ("scale --base {tmp}/badlayer.toml --phi 1", "conv2d"),
    ("scale efficientnet --fit-coefficients {tmp}/coeffs.csv", "resolution"),
    ("scale efficientnet --variant b7 --gpu nosuch --samples 1e6 --epochs 1", "unknown accelerator"),
    ("scale efficientnet --samples 1e6", "go together"),
    ("scale efficientnet --variant b0 --samples 1e6 --epochs 1 --gpu h100 --mfu 2", "MFU 2"),
    # fit
    ("fit", "--csv"),
    ("fit --csv {tmp}/header.csv", "no data rows"),
    ("fit --csv {tmp}/empty.csv", "empty.csv"),
    ("fit --csv {tmp}/nocols.csv", "missing column"),
    ("fit --csv {tmp}/text.csv", "data row 2: 'lots'"),
    ("fit --csv {tmp}/negative.csv", "data row 1: -2000000)"),
    ("fit --csv {tmp}/constant.csv", "in every row"),
    ("fit --csv {tmp}/huge.csv", "above"),
    ("fit --csv {tmp}/nosuch.csv", "nosuch.csv"),
    ("fit --csv {tmp}/constant.csv --bootstrap 1e25", "--bootstrap"),
    ("fit --csv {tmp}/constant.csv --bootstrap 20000", "--bootstrap"),
    ("fit --csv {tmp}/constant.csv --approach 4", "--approach"),
    ("fit --csv {tmp}/constant.csv --level 1.5", "--level"),
    ("fit --csv {tmp}/constant.csv --budgets 1e19,abc", "abc"),
    ("fit --csv {tmp}/constant.csv --plot {tmp}/constant.csv/figs", "--plot"),
    ("fit --csv {tmp}/constant.csv --experiment e", "not both"),
    # report
    ("report --flops 1e21 --gpu h100 --out {tmp}/r --compare a100,nosuch", "nosuch"),
    ("report --flops 1e21 --gpu h100 --out {tmp}/header.csv", "header.csv"),
    ("report --flops 1e21 --gpu h100 --out {tmp}/r --catalog {tmp}/typo.toml", "memory_gib"),
    ("report --flops -1 --gpu h100 --out {tmp}/r", "must be > 0"),
    # sweep (argument checks only: nothing trains)
    ("sweep --preset huge --dry-run", "--preset"),
    ("sweep --preset smoke --budgets 1e10,abc --dry-run", "abc"),
    ("sweep --preset smoke --points 0 --dry-run", "--points"),
    ("sweep --preset smoke --points 1e25 --dry-run", "--points"),
    ("sweep --preset smoke --lr -1 --dry-run", "--lr"),
    ("sweep --preset smoke --device tpu --dry-run", "--device"),
    # ui
    ("ui --port 0 --check", "--port"),
    ("ui --port 99999 --check", "--port"),
    # models, flops/memory with a model (issue 11)
    ("models nosuch", "unknown model 'nosuch'"),
    ("models --nosuch", "--nosuch"),
    ("flops --model nosuch", "unknown model 'nosuch'"),
    ("flops --config {tmp}/nosuch.json", "no such file"),
    ("flops --n-layer 2 --d-model 128 --n-head 4 --n-kv-head 3", "n_kv_head=3"),
    ("memory --model llama-2-7b --params 7e9", "fixes the size"),
    # serve, roofline, energy (issue 13)
    ("serve --model nosuch", "unknown model 'nosuch'"),
    ("serve --model llama-2-7b --precision int3", "--precision"),
    ("serve --model llama-2-7b --num-gpus 0", "--num-gpus"),
    ("serve --model llama-2-7b --gpu nosuch", "nosuch"),
    ("validate --plot {tmp}/no/such/folder/v.png", "--plot"),
    ("validate --bogus", "--bogus"),
    ("roofline --model nosuch", "unknown model 'nosuch'"),
    ("roofline --model llama-2-7b --gpu nosuch", "nosuch"),
    ("roofline --model llama-2-7b --batch 0", "--batch"),
    ("energy --nosuch", "--nosuch"),
    # frontier (issue 14)
    ("frontier --flops -1", "--flops"),
    ("frontier", "--flops"),
    # server (issue 16)
    ("server status --dir {tmp}/no-server", "no team server was started"),
    ("server stop --dir {tmp}/no-server", "no team server was started"),
    ("server start --port 0 --dir {tmp}/srv", "--port"),
    ("server nosuch", "nosuch"),
    # no such command or option
    ("nosuchcommand", "nosuchcommand"),
    ("plan --flops 1e21 --gpu h100 --nosuch", "--nosuch"),
]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad_input")
    for name, text in FILES.items():
        (folder / name).write_text(text)
    return folder


def test_the_run_covers_every_command_with_enough_cases() -> None:
    commands = {line.split()[0] for line, _ in CASES}
    assert set(main.commands) <= commands | {"nosuchcommand"}, set(main.commands) - commands
    assert len(CASES) >= 60


@pytest.mark.parametrize("line,expected", CASES, ids=[line for line, _ in CASES])
def test_bad_input_is_one_line_exit_2(tmp: Path, line: str, expected: str) -> None:
    args = [a.replace("{tmp}", str(tmp)) for a in shlex.split(line)]
    if args[0] not in main.commands and args[0] != "nosuchcommand":
        pytest.skip(f"no '{args[0]}' command on this branch")
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"traceback: {result.exception!r}")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.stdout[-300:])
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert "Traceback" not in result.output
    assert expected.replace("{tmp}", str(tmp)) in lines[0], lines[0]
    assert "()" not in lines[0] and "''" not in lines[0], lines[0]  # nothing empty in the message


def test_json_output_survives_an_overflowed_number() -> None:
    """`--json` printed a traceback on inf; now strict JSON with null (values from a catalog peak
    the range check lets through can still overflow at absurd budgets)."""
    import json

    from budget.cli.common import emit

    class Result:
        def to_dict(self) -> dict:
            return {"gpu_hours": float("inf"), "rows": [1.0, float("nan")]}

    runner = CliRunner()
    import click

    @click.command()
    def show() -> None:
        emit(Result(), True, str)

    result = runner.invoke(show)
    assert result.exit_code == 0 and json.loads(result.stdout) == {"gpu_hours": None, "rows": [1.0, None]}
