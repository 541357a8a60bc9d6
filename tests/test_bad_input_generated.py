"""Generated bad input over every command and option: each exits 2 with one 'Error:' line on
stderr that names the option (or the bad value), and never a traceback.

The cases are not written by hand: they are read from click's own description of `budget.cli.main`
(every command, subcommand, option and argument, with its type), so an option added tomorrow is
covered without editing this file. Per parameter type the bad values are:

- `budget.cli.common.Number`: not a number, NaN, +-inf, overflow (1e999), empty, and the values
  just outside its stated range (0 and -1 for a positive number; below `low`, above `high`);
- `PositiveInt` / click `IntRange` / `INT`: not a number, a fraction, NaN, 0 and -1 where >= 1,
  one past the maximum;
- click `Choice`: a name not among the choices, the empty string;
- `budget.cli.common.Name` (--gpu): empty, blank, a control character;
- click `Path`: a missing path where it must exist, a folder where a file is asked, a file where a
  folder is asked;
- every option that takes a value: the option with no value after it;
- every command: an option it does not have, and a stray argument where it takes none;
- text options that name things (a GPU, a model, a layout, a catalog file, a band), each on a
  base invocation of its command that succeeds, so the refusal is the command's own check.

Everything runs in-process with click's CliRunner. A typed bad value is refused while click
converts the options, before any command body runs; the named-text cases run the light commands
only (plan, memory, serve, roofline, flops, energy, frontier, gpus), so nothing trains, serves or
writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.cli.common import Name, Number, PositiveInt

NOT_NUMBERS = ("abc", "nan", "NaN", "inf", "-inf", "1e999", "", " ", "1e21x", "1,5", "0x1p3")


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every leaf command under `group` with the words that call it."""
    for name in sorted(group.commands):
        cmd = group.commands[name]
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path + (name,))
        else:
            yield path + (name,), cmd


def _number_values(kind: Number) -> list[str]:
    bad = list(NOT_NUMBERS)
    if kind.positive:
        bad += ["0", "-1", "-0", "1e-400"]  # 1e-400 underflows to 0.0
    if kind.low is not None:
        bad.append(repr(kind.low - max(1.0, abs(kind.low))))
        if kind.low_open:
            bad.append(repr(kind.low))
    if kind.high is not None:
        bad.append(repr(kind.high * 2 + 1))
        if kind.high_open:
            bad.append(repr(kind.high))
    return bad


def _int_values(kind: click.ParamType) -> list[str]:
    bad = ["abc", "2.5", "nan", "inf", "", "1e999", "1,5"]
    if isinstance(kind, PositiveInt):
        bad += ["0", "-1"] + ([str(kind.maximum + 1)] if kind.maximum is not None else [])
    elif isinstance(kind, click.IntRange):
        if kind.min is not None:
            bad.append(str(kind.min - 1))
        if kind.max is not None:
            bad.append(str(kind.max + 1))
    return bad


def bad_values(param: click.Parameter, tmp: Path) -> list[str]:
    """Values `param`'s type must refuse (empty when the type takes any text)."""
    kind = param.type
    if isinstance(kind, Number):
        return _number_values(kind)
    if isinstance(kind, (PositiveInt, click.IntRange)) or kind is click.INT:
        return _int_values(kind)
    if isinstance(kind, Name):
        return ["", "   ", "h100\x1b[2J", "\x00"]
    if isinstance(kind, click.Choice):
        return ["nosuch-choice", "", str(kind.choices[0]).upper() + "-X"]
    if isinstance(kind, click.Path):
        bad = []
        if kind.exists:
            bad.append(str(tmp / "missing" / "nothing.toml"))
        if not kind.dir_okay:
            bad.append(str(tmp))  # a folder
        if not kind.file_okay:
            bad.append(str(tmp / "a-file.txt"))
        return bad
    return []


def cases(tmp: Path) -> list[tuple[list[str], str]]:
    """(argv, text the error line must hold) for every generated bad input."""
    out: list[tuple[list[str], str]] = []
    for words, cmd in _commands(main):
        takes_args = any(isinstance(p, click.Argument) for p in cmd.params)
        out.append(([*words, "--no-such-option-zz"], "--no-such-option-zz"))
        if not takes_args:
            out.append(([*words, "stray-argument-zz"], ""))  # may be refused for a missing option first
        for param in cmd.params:
            if isinstance(param, click.Argument):
                out += [([*words, value], "") for value in bad_values(param, tmp)]
                continue
            if not isinstance(param, click.Option) or param.is_flag or param.hidden:
                continue
            name = max(param.opts, key=len)
            out.append(([*words, name], name))  # no value after it
            out += [([*words, f"{name}={value}"], name) for value in bad_values(param, tmp)]
    return out


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    (folder / "a-file.txt").write_text("not a folder\n")
    return folder


def test_every_generated_bad_input_is_one_line_exit_2(tmp: Path) -> None:
    """Issue 27: at least 1,500 generated bad inputs, each exit 2, one stderr line, no traceback,
    all of them in well under a minute."""
    all_cases = cases(tmp)
    assert len(all_cases) >= 1500, len(all_cases)
    runner = CliRunner()
    failures = []
    start = time.perf_counter()
    for argv, must_name in all_cases:
        result = runner.invoke(main, argv, catch_exceptions=True)
        lines = result.stderr.strip().splitlines()
        traceback = result.exception is not None and not isinstance(result.exception, SystemExit)
        if (traceback or result.exit_code != 2 or len(lines) != 1 or not lines[0].startswith("Error: ")
                or "Traceback" in result.output or (must_name and must_name not in lines[0])):
            failures.append((argv, result.exit_code, repr(result.exception) if traceback else "",
                             result.stderr[-300:], result.stdout[-200:]))
    elapsed = time.perf_counter() - start
    assert not failures, f"{len(failures)} of {len(all_cases)} failed; first: {failures[:10]}"
    assert elapsed < 60, f"{len(all_cases)} cases took {elapsed:.1f} s"


def test_the_generator_reaches_every_command_and_typed_option(tmp: Path) -> None:
    """The generator is not vacuous: every command appears, and every option with a checked type
    (number, integer, choice, path) gets at least one bad value."""
    all_cases = cases(tmp)
    called = {tuple(argv[:2]) if argv[0] == "server" else (argv[0],) for argv, _ in all_cases}
    for words, cmd in _commands(main):
        assert words in called, words
        for param in cmd.params:
            if isinstance(param, click.Option) and isinstance(
                    param.type, (Number, PositiveInt, click.IntRange, click.Choice)):
                assert bad_values(param, tmp), (words, param.opts)


def test_number_bad_values_are_all_refused_by_the_type_itself() -> None:
    """The generated values for a Number are refused by the type alone (so an exit 2 in the run
    above is the option's own check, not a side effect of another option)."""
    kind = Number(low=1.0, high=3.0)
    for value in _number_values(kind):
        with pytest.raises(click.BadParameter):
            kind.convert(value, None, None)


# A base invocation that succeeds, per light command; the named-text cases are added to it.
BASES = {"plan": ["--flops", "1e21"], "memory": ["--params", "1e9", "--gpu", "h100"],
         "serve": ["--model", "llama-2-7b"], "roofline": ["--model", "llama-2-7b"],
         "flops": ["--params", "1e9"], "energy": ["--gpu-hours", "100"],
         "frontier": ["--flops", "1e21"], "gpus": []}
# Bad text for options that name something, by option name ({tmp}: the test's folder).
NAMED = {"--gpu": ["nosuch-gpu-zz", "", "h100; touch PWNED"],
         "--model": ["nosuch-model-zz", "../../etc/passwd"],
         "--layout": ["garbage", "tp=2,tp=4", "tp=0", "dp=16,zz=1"],
         "--overlap": ["tp=2", "xx=0.5", "tp=nan"],
         "--mfu-band": ["0.5,0.3", "0.3", "nan,0.5", "0.3,0.5,0.7"],
         "--catalog": ["{tmp}/missing.toml", "{tmp}/a-file.txt"],
         "--config": ["{tmp}/missing/config.json", "{tmp}/a-file.txt"],
         "--layers": ["nosuch-net-zz", "{tmp}/a-file.txt"],
         "--network": ["nosuch-net-zz"],
         "--ratios": ["abc", "20,-1", "nan"]}


def named_cases(tmp: Path) -> list[list[str]]:
    out = []
    for name, base in BASES.items():
        cmd = main.commands[name]
        opts = {max(p.opts, key=len) for p in cmd.params if isinstance(p, click.Option)}
        for option, values in NAMED.items():
            if option not in opts:
                continue
            for value in values:
                argv = [name, *base]
                if option in argv:  # replace the base's own value
                    i = argv.index(option)
                    argv = argv[:i] + argv[i + 2:]
                out.append([*argv, option, value.replace("{tmp}", str(tmp))])
    return out


def test_named_text_options_are_one_line_exit_2(tmp: Path) -> None:
    """Each base succeeds alone; with one bad named value, exit 2 and one 'Error:' line."""
    runner = CliRunner()
    for name, base in BASES.items():
        ok = runner.invoke(main, [name, *base, "--json"])
        assert ok.exit_code == 0, (name, ok.output[-300:])
    failures = []
    all_cases = named_cases(tmp)
    assert len(all_cases) >= 60, len(all_cases)
    for argv in all_cases:
        result = runner.invoke(main, argv, catch_exceptions=True)
        lines = result.stderr.strip().splitlines()
        traceback = result.exception is not None and not isinstance(result.exception, SystemExit)
        if traceback or result.exit_code != 2 or len(lines) != 1 or not lines[0].startswith("Error: "):
            failures.append((argv, result.exit_code, repr(result.exception) if traceback else "",
                             result.stderr[-300:]))
    assert not failures, f"{len(failures)} of {len(all_cases)} failed; first: {failures[:10]}"
