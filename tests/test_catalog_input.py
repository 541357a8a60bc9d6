"""Issue 27, catalogs, config files and the proposal's printed text: ids that are safe to paste,
text without control characters, files nested too deeply, a large catalog read in linear time,
the proposal's re-check line built with shlex.join, and each device's MFU named where it is used.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.hardware.catalog import load_catalog
from budget.text import printable

ROW = """
[[accelerator]]
id = {id}
name = {name}
vendor = "Example"
memory_gb = 96
memory_bandwidth_gbs = 4000
[accelerator.peak_tflops]
bf16 = 900
[accelerator.sources]
peak = "vendor sheet"
memory = "vendor sheet"
bandwidth = "vendor sheet"
"""


def row(id: str = '"ex-gpu"', name: str = '"Example GPU"', extra_line: str = "") -> str:
    """One catalog row; `extra_line` (a TOML line) goes among the row's top-level keys."""
    text = ROW.format(id=id, name=name)
    return text.replace('vendor = "Example"', f'vendor = "Example"\n{extra_line}') if extra_line else text


def one_error(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("text,field", [
    (row(id='"x; touch PWNED #"'), "'id'"),
    (row(id='"x$(id)"'), "'id'"),
    (row(id='"two words"'), "'id'"),
    (row(id='"x`id`"'), "'id'"),
    (row(extra_line='aliases = ["ok", "a|b"]'), "'aliases'"),
    (row(name='"GPU \\u001b[2J wiped"'), "'name'"),
    (row(name='"nul \\u0000 here"'), "'name'"),
    (row(name='"bidi \\u202e reversed"'), "'name'"),
    (row(extra_line='notes = "bell \\u0007"'), "'notes'"),
])
def test_unsafe_ids_and_control_characters_are_refused_in_one_line(tmp_path: Path, text: str,
                                                                   field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    line = one_error(["gpus", "--catalog", str(path)])
    assert field in line and "\x1b" not in line and "\x00" not in line and "\u202e" not in line, line


def test_printable_escapes_every_control_character() -> None:
    assert printable("a\x1b[2Jb\x00c\u202ed\x07") == "a\\x1b[2Jb\\x00c\\u202ed\\x07"
    assert printable("table\nrow", keep_newlines=True) == "table\nrow"
    assert printable("one\nline") == "one\\x0aline"


def test_an_error_naming_a_bad_value_never_prints_its_control_characters(tmp_path: Path) -> None:
    line = one_error(["plan", "--flops", "1e21", "--gpu", "h\x1b[31mred"])
    assert "\x1b" not in line and "\\x1b[31mred" in line


def test_deeply_nested_catalog_toml_is_one_line(tmp_path: Path) -> None:
    """Was a RecursionError, 2,999 lines of traceback."""
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "too deeply" in one_error(["plan", "--flops", "1e21", "--catalog", str(path)])


def test_deeply_nested_config_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"a": ' + "[" * 100000 + "]" * 100000 + "}")
    assert "too deeply" in one_error(["flops", "--config", str(path)])


def test_deeply_nested_layer_list_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "net.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "too deeply" in one_error(["flops", "--layers", str(path)])


def _rows(n: int, tag: str) -> str:
    return "".join(row(id=f'"{tag}-{i}"', name=f'"GPU {i}"', extra_line=f'aliases = ["{tag}{i}"]')
                   for i in range(n))


def test_a_4000_row_catalog_loads_in_linear_time(tmp_path: Path) -> None:
    """The merge compared each row with every row loaded before it (10 s for 4,000 rows); with an
    alias index it costs O(aliases) a row, so 4x the rows take about 4x the time, not 16x."""
    small, big = tmp_path / "small.toml", tmp_path / "big.toml"
    small.write_text(_rows(1000, "s"))
    big.write_text(_rows(4000, "b"))

    def seconds(path: Path) -> float:
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            catalog = load_catalog([path], use_env=False)
            best = min(best, time.perf_counter() - start)
        assert len(catalog.accelerators) > 1000
        return best

    t_small, t_big = seconds(small), seconds(big)
    assert t_big < 6.0, t_big
    assert t_big / t_small < 9.0, (t_small, t_big)  # quadratic: ~16


def test_the_alias_index_still_says_what_a_new_id_shadows(tmp_path: Path) -> None:
    path = tmp_path / "shadow.toml"
    path.write_text(row(id='"h100"'))
    catalog = load_catalog([path], use_env=False)
    assert any("id 'h100' is also an alias of" in note for note in catalog.notes), catalog.notes


@pytest.fixture(scope="module")
def odd_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog at a path a shell would split and expand: a space, a $, a quote and a ;."""
    folder = tmp_path_factory.mktemp("cat") / "my gpus $HOME 'x'; touch PWNED"
    folder.mkdir()
    path = folder / "cat $USER.toml"
    path.write_text(row(id='"ex-gpu"', name='"Example \\u0041 GPU"'))
    return path


def test_recheck_line_is_shell_quoted_and_reruns_the_same_plan(odd_catalog: Path,
                                                               tmp_path: Path) -> None:
    """The proposal's "re-check with" line: shlex.split gives back the catalog path as one
    argument, and running it gives the proposal's C."""
    out = tmp_path / "p"
    result = CliRunner().invoke(main, ["report", "--flops", "1e21", "--gpu", "ex-gpu", "--catalog",
                                       str(odd_catalog), "--out", str(out)])
    assert result.exit_code == 0, result.output
    markdown = (out / "proposal.md").read_text()
    line = next(text for text in markdown.splitlines() if text.startswith("budget plan "))
    argv = shlex.split(line)
    assert argv[argv.index("--catalog") + 1] == str(odd_catalog)
    rerun = CliRunner().invoke(main, [*argv[1:], "--json"])
    assert rerun.exit_code == 0, rerun.output
    plan = json.loads((out / "plan.json").read_text())
    assert json.loads(rerun.stdout)["compute_flops"] == plan["compute_flops"]


def test_report_title_with_terminal_escapes_is_escaped_in_markdown_and_html(tmp_path: Path) -> None:
    out = tmp_path / "p"
    result = CliRunner().invoke(main, ["report", "--flops", "1e21", "--out", str(out),
                                       "--title", "Plan \x1b]0;owned\x07 \u202eevil"])
    assert result.exit_code == 0, result.output
    for name in ("proposal.md", "proposal.html"):
        text = (out / name).read_text()
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, name
        assert "x1b" in text and "u202e" in text, name


def _cost_table(markdown: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| accelerator |")
                 and lines[i + 1].startswith("|---"))
    header = [c.strip() for c in lines[start].strip("|").split(" | ")]
    rows = []
    for text in lines[start + 2:]:
        if not text.startswith("|"):
            break
        rows.append(dict(zip(header, (re.sub(r"\\(.)", r"\1", c).strip()
                                      for c in re.split(r"(?<!\\) \| ", text.strip("|"))))))
    return rows


def test_accelerator_comparison_names_each_devices_own_mfu(tmp_path: Path) -> None:
    """A100 (catalog MFU 51.4%) and H200 (40%) were priced at their own MFU under a table and
    title saying one MFU for all, and Sources said 'MFU default 0.40'."""
    out = tmp_path / "p"
    result = CliRunner().invoke(main, ["report", "--flops", "1e21", "--gpu", "h100", "--compare",
                                       "a100,h200", "--out", str(out)])
    assert result.exit_code == 0, result.output
    markdown = (out / "proposal.md").read_text()
    report = load_catalog(use_env=False)
    table = _cost_table(markdown)
    for r in table:  # each device at the MFU its own plan (layout, step time, goodput) reaches
        device = report.get(r["accelerator"])
        own = json.loads(CliRunner().invoke(main, ["plan", "--flops", "1e21", "--gpu", device.id,
                                                   "--json"]).stdout)["mfu"]
        assert r["MFU (band)"].startswith(f"{own:.1%}"), r
        assert f"MFU {own:.3g} on {device.id}" in markdown.replace("\\", ""), device.id
    assert len({r["MFU (band)"] for r in table}) > 1
    assert "each accelerator at its own MFU" in markdown
    assert "MFU default 0.40" not in markdown


def test_sources_name_the_given_mfu_not_the_default(tmp_path: Path) -> None:
    out = tmp_path / "p"
    result = CliRunner().invoke(main, ["report", "--flops", "1e21", "--gpu", "h100", "--compare",
                                       "a100", "--mfu", "0.3", "--mfu-band", "0.2,0.35",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    markdown = (out / "proposal.md").read_text().replace("\\", "")
    assert "MFU 0.3 on every accelerator, band 0.2-0.35" in markdown
    assert "MFU default 0.40" not in markdown
    assert all(r["MFU (band)"].startswith("30.0%") for r in _cost_table(markdown))
