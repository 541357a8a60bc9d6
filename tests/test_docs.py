"""The docs site stays true to the CLI: every `$ budget ...` output block in README.md and
docs/**/*.md is what the command prints now (docs/regen.py), every `budget CMD --option` shown
exists in that command's --help, and the site builds with `mkdocs build --strict` with a CLI
reference naming every command and option."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from budget.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _regen():
    spec = importlib.util.spec_from_file_location("regen", ROOT / "docs" / "regen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_output_block_is_the_real_output():
    """Run `python docs/regen.py` to refresh a stale block (after checking the change is meant)."""
    regen = _regen()
    files = regen.doc_files()
    counted = sum(len(list(regen.blocks(p.read_text(encoding="utf-8")))) for p in files)
    assert counted >= 30
    diff = regen.check(files)
    assert not diff, "stale output in the docs; run python docs/regen.py\n" + diff


def test_regen_finds_console_blocks_and_honours_no_regen():
    regen = _regen()
    text = "\n".join(["```console", "$ budget gpus | head -2", "old", "```", "<!-- no-regen -->",
                      "```console", "$ budget gpus", "kept", "```", "```text", "$ budget gpus", "```"])
    assert [s for s, _ in regen.blocks(text)] == [1]
    new = regen.regenerate(text).split("\n")
    assert new[2] != "old" and new[4] == "..." and "kept" in new
    lines = ["a", "x1", "b", "c", "x2", "d", "e", "f"]
    assert regen.grep_after(lines, "x", 1) == ["x1", "b", "--", "x2", "d"]
    assert regen.grep_after(lines, "x", 3) == ["x1", "b", "c", "x2", "d", "e", "f"]


def _code_lines():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in re.findall(r"```[a-z]*\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S):
            for line in block.splitlines():
                yield path.name, line.lstrip("$ ").strip()


def test_every_option_shown_in_the_docs_exists():
    checked = 0
    for name, line in _code_lines():
        for segment in re.split(r"&&|\||;", line):
            match = re.match(r"\s*budget (\w+)(.*)", segment)
            if not match or match.group(1) not in main.commands:
                continue
            command = main.commands[match.group(1)]
            sub = match.group(2).split()[:1]  # a group (budget server start): its subcommand
            if isinstance(command, click.Group) and sub and sub[0] in command.commands:
                command = command.commands[sub[0]]
            known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", match.group(2)):
                assert option in known, f"{name} shows `budget {match.group(1)} {option}`, not in --help"
                checked += 1
    assert checked > 50


def _commands(group: click.Group, prefix: str = "budget"):
    for name in sorted(group.commands):
        command = group.commands[name]
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="the [docs] extra is not installed")
def test_site_builds_strict_with_every_command_and_option(tmp_path):
    """`mkdocs build --strict` (as .ci/run) and the generated CLI reference names every command
    and every option of each."""
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
                            cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1",
                                                                         "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    missing = []
    for path, command in _commands(main):
        if f">{path}<" not in page and f">{path.split()[-1]}<" not in page:
            missing.append(path)
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and not getattr(param, "hidden", False) and opt not in page:
                    missing.append(f"{path} {opt}")
    assert not missing, f"CLI reference misses {missing}"
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for guide in ("models", "validate", "cost-interval", "serving", "sweeps", "team", "plan", "memory-layouts",
                  "beyond-optimal", "fit", "proposal", "emit"):
        assert f"guide/{guide}.md" in nav
