"""Regenerate every output block of README.md and docs/**/*.md from the real commands.

A block is a ```console fence whose first line is `$ budget ...`. Each `$ budget ...` line in it
is run in-process (through the same click group as the `budget` script, with the built-in
catalog: BUDGET_CATALOG unset) and the lines after it, up to the next `$` line, are replaced by
what it prints (stdout and stderr, as a terminal shows them). `$ budget CMD | head -N` keeps the
first N lines and adds `...`; `| tail -N` keeps the last N; `| grep -F -A N 'TEXT'` keeps each
line holding TEXT and the N after it (a section of a long output). Blocks of one file run in order in one
scratch folder, so a later block can read a file an earlier one wrote. A fence directly below a `<!-- no-regen -->` line is left alone:
commands that train, start servers, or print timings, absolute paths or measured peaks.

    python docs/regen.py          # rewrite the files in place (and the figures the blocks write)
    python docs/regen.py --check  # exit 1 and print a diff when a block is stale

Every command runs in a scratch folder whose `docs/img` is, in the first form, the repository's:
commands that write a figure (`--plot docs/img/x.png`, `--png ...`) redraw the docs' figures, and
anything else they write is thrown away; the check leaves the tree alone. `tests/test_docs.py` runs the check: a block that no
longer matches the real output fails the suite.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
NO_REGEN = "<!-- no-regen -->"
FENCE = "```console"
_PIPE = re.compile(r"^(?P<cmd>.*?)\s*\|\s*(?P<end>head|tail)\s+-(?P<n>\d+)\s*$")
_GREP = re.compile(r"^(?P<cmd>.*?)\s*\|\s*grep -F -A (?P<n>\d+) '(?P<text>[^']+)'\s*$")


def grep_after(lines: list[str], text: str, after: int) -> list[str]:
    """`grep -F -A N TEXT`: each line holding TEXT and the N after it, groups parted by `--`."""
    keep: list[int] = []
    for i, line in enumerate(lines):
        if text in line:
            keep += [j for j in range(i, min(i + after + 1, len(lines))) if not keep or j > keep[-1]]
    out: list[str] = []
    for k, j in enumerate(keep):
        if k and j != keep[k - 1] + 1:
            out.append("--")
        out.append(lines[j])
    return out


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown page of the docs site."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def run_command(line: str) -> str:
    """What `$ line` prints: `budget ...` run in-process, optionally `| head -N`."""
    from click.testing import CliRunner

    from budget.cli import main

    grep = _GREP.match(line)
    match = None if grep else _PIPE.match(line)
    command, keep = (match.group("cmd"), int(match.group("n"))) if match else (line, None)
    if grep:
        command = grep.group("cmd")
    argv = shlex.split(command)
    if not argv or argv[0] != "budget":
        raise SystemExit(f"regen: only 'budget ...' lines can be regenerated: {line!r}")
    env = {"BUDGET_CATALOG": None, "COLUMNS": "100"}  # the built-in catalog, as a fresh install sees it
    result = CliRunner(env=env).invoke(main, argv[1:], prog_name="budget")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise SystemExit(f"regen: {line!r} raised {result.exception!r}")
    lines = result.output.rstrip("\n").splitlines()
    if grep:
        lines = grep_after(lines, grep.group("text"), int(grep.group("n")))
    if keep is not None and len(lines) > keep:
        lines = lines[:keep] + ["..."] if match and match.group("end") == "head" else lines[-keep:]
    return "\n".join(line.rstrip() for line in lines)


def render_body(body: list[str]) -> list[str]:
    """The block's lines with every `$ budget` line's output replaced by the real output."""
    out: list[str] = []
    for line in body:
        if line.startswith("$ "):
            out.append(line)
            printed = run_command(line[2:])
            if printed:
                out.extend(printed.split("\n"))
    return out


def blocks(text: str) -> Iterator[tuple[int, int]]:
    """(first body line, closing fence line) of each block to regenerate, as line indices."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            regen = (lines[i].strip() == FENCE and end > i + 1 and lines[i + 1].startswith("$ budget ")
                     and not (i > 0 and lines[i - 1].strip() == NO_REGEN))
            if regen:
                yield i + 1, end
            i = end + 1
        else:
            i += 1


def regenerate(text: str) -> str:
    """The text with every block regenerated."""
    os.environ.pop("BUDGET_CATALOG", None)
    lines = text.split("\n")
    rendered = [(start, end, render_body(lines[start:end])) for start, end in blocks(text)]  # in order
    for start, end, body in reversed(rendered):
        lines[start:end] = body
    return "\n".join(lines)


@contextmanager
def scratch_dir(figures: Path | None = None) -> Iterator[None]:
    """Run in a scratch folder with a docs/img (a link to `figures` when given), then come back."""
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "docs").mkdir()
        if figures is None:
            (Path(tmp) / "docs" / "img").mkdir()
        else:
            (Path(tmp) / "docs" / "img").symlink_to(figures)
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(here)


def check(files: list[Path]) -> str:
    """The unified diff of every stale block ('' when every block is current)."""
    diff: list[str] = []
    with scratch_dir():
        for path in files:
            text = path.read_text(encoding="utf-8")
            new = regenerate(text)
            rel = str(path.relative_to(ROOT))
            diff += difflib.unified_diff(text.splitlines(True), new.splitlines(True), rel, "regenerated")
    return "".join(diff)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    files = doc_files()
    if "--check" in argv:
        diff = check(files)
        sys.stdout.write(diff)
        return 1 if diff else 0
    count = 0
    with scratch_dir(ROOT / "docs" / "img"):
        for path in files:
            text = path.read_text(encoding="utf-8")
            count += len(list(blocks(text)))
            new = regenerate(text)
            if new != text:
                path.write_text(new, encoding="utf-8")
    sys.path.insert(0, str(ROOT / "docs"))
    from figures import make_figures  # the figures no block writes

    make_figures()
    print(f"regenerated {count} blocks in {len(files)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
