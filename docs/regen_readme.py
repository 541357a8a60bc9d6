"""Regenerate the README's output blocks from the real commands.

A code block right after a `<!-- regen -->` line is a terminal session: each `$ budget ...` line
is run (in-process, through the same click group as the `budget` script, without BUDGET_CATALOG)
and the lines after it up to the next `$` line are replaced by what it prints (stdout and stderr,
as a terminal shows them). `$ budget CMD | head -N` keeps the first N lines and adds `...`.

    python docs/regen_readme.py          # rewrite README.md in place
    python docs/regen_readme.py --check  # exit 1 and print a diff when a block is stale

`tests/test_readme.py` runs the check, so a block that no longer matches the real output fails
the suite. Blocks without the marker (machine-dependent output: measured peaks, absolute paths)
are left alone.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKER = "<!-- regen -->"
_BLOCK = re.compile(r"(?P<head>" + re.escape(MARKER) + r"\n```[a-z]*\n)(?P<body>.*?)(?P<tail>```)",
                    re.S)
_HEAD = re.compile(r"^(?P<cmd>.*?)\s*\|\s*head\s+-(?P<n>\d+)\s*$")


def run_command(line: str) -> str:
    """What `$ line` prints: `budget ...` run in-process, optionally `| head -N`."""
    from click.testing import CliRunner

    from budget.cli import main

    match = _HEAD.match(line)
    command, keep = (match.group("cmd"), int(match.group("n"))) if match else (line, None)
    argv = shlex.split(command)
    if not argv or argv[0] != "budget":
        raise SystemExit(f"regen_readme: only 'budget ...' lines can be regenerated: {line!r}")
    env = {"BUDGET_CATALOG": None}  # the built-in catalog, as a fresh install sees it
    result = CliRunner(env=env).invoke(main, argv[1:], prog_name="budget")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise SystemExit(f"regen_readme: {line!r} raised {result.exception!r}")
    lines = result.output.rstrip("\n").splitlines()
    if keep is not None and len(lines) > keep:
        lines = lines[:keep] + ["..."]
    return "\n".join(lines)


def render_body(body: str) -> str:
    """The block with every `$ budget` line's output replaced by the real output."""
    out: list[str] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            out.append(line)
            printed = run_command(line[2:])
            if printed:
                out.append(printed)
    return "\n".join(out) + "\n"


def regenerate(text: str) -> str:
    """The README text with every marked block regenerated."""
    os.environ.pop("BUDGET_CATALOG", None)
    return _BLOCK.sub(lambda m: m.group("head") + render_body(m.group("body")) + m.group("tail"),
                      text)


def marked_blocks(text: str) -> int:
    return len(_BLOCK.findall(text))


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    text = README.read_text(encoding="utf-8")
    new = regenerate(text)
    if "--check" in argv:
        if new != text:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                       "README.md", "regenerated"))
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    print(f"regenerated {marked_blocks(text)} blocks in {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
