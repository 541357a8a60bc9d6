"""The README's command reference stays true to the CLI: every `budget CMD --option` shown in a
code block exists in that command's --help, and the quick start is exactly two command lines."""

import re
from pathlib import Path

from budget.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def code_lines():
    text = README.read_text(encoding="utf-8")
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            yield line.lstrip("$ ").strip()


def test_every_option_shown_in_the_readme_exists():
    checked = 0
    for line in code_lines():
        for segment in re.split(r"&&|\||;", line):
            match = re.match(r"\s*budget (\w+)(.*)", segment)
            if not match or match.group(1) not in main.commands:
                continue
            command = main.commands[match.group(1)]
            sub = match.group(2).split()[:1]  # a group (budget server start): its subcommand
            if hasattr(command, "commands") and sub and sub[0] in command.commands:
                command = command.commands[sub[0]]
            known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", match.group(2)):
                assert option in known, f"README shows `budget {match.group(1)} {option}`, not in --help"
                checked += 1
    assert checked > 20


def test_quick_start_is_two_command_lines():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```\n(.*?)```", section, flags=re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) == 2
    assert "budget plan --flops 1e21 --gpu h100" in lines[0]
    assert "pytest" in lines[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert lines[1].strip() in ci  # .ci/run runs the same test line


def test_marked_output_blocks_are_the_real_output():
    """Blocks after `<!-- regen -->` equal what the commands print now (docs/regen_readme.py);
    run `python docs/regen_readme.py` to refresh them."""
    import difflib
    import importlib.util

    spec = importlib.util.spec_from_file_location("regen_readme", README.parent / "docs" / "regen_readme.py")
    regen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regen)
    text = README.read_text(encoding="utf-8")
    assert regen.marked_blocks(text) >= 6  # plan, gpus, memory, errors, two flops blocks
    new = regen.regenerate(text)
    diff = "".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True), "README.md",
                                        "real output"))
    assert new == text, "stale README output; run python docs/regen_readme.py\n" + diff


def test_plan_json_key_list_names_every_key():
    """The README's `--json` paragraph for `budget plan` names every top-level key it prints."""
    import json

    from click.testing import CliRunner

    plan = json.loads(CliRunner().invoke(main, ["plan", "--flops", "1e21", "--json"]).stdout)
    section = README.read_text(encoding="utf-8").split("`--json` prints one object with", 1)[1]
    paragraph = section.split("\n\n", 1)[0]
    missing = [k for k in plan if f"`{k}`" not in paragraph]
    assert not missing, f"README's plan --json list misses {missing}"
