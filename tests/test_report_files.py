"""Report files written safely (issue 17 item 9): temporary folder then rename, no half-written
folder, stale figures removed, symlinks not followed, user strings escaped and drawn literally."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.errors import BudgetError
from budget.report.html import md_escape
from budget.report.safe_write import write_files

ROOT = Path(__file__).resolve().parent.parent
# an id is refused unless it is letters, digits and . _ + - : @ (issue 27); the name keeps the $
ODD_ID = "odd_gpu+x"
ODD_NAME = "My $\\alpha$ <b>GPU</b> | *x* [y](z)"
CATALOG = f"""
[[accelerator]]
id = 'odd_gpu+x'
name = "{ODD_NAME.replace(chr(92), chr(92) * 2)}"
vendor = "Example"
memory_gb = 96
memory_bandwidth_gbs = 4000
price_usd_per_hour = 2.0
price_provider = "Example $cloud$"
price_date = "2026-11-01"
[accelerator.peak_tflops]
bf16 = 1000
[accelerator.sources]
peak = "vendor $sheet$"
memory = "vendor sheet"
bandwidth = "vendor sheet"
price = "price page"
"""


def report(tmp_path: Path, out: Path, *extra: str):
    catalog = tmp_path / "odd.toml"
    catalog.write_text(CATALOG)
    return CliRunner().invoke(main, ["report", "--flops", "1e21", "--gpu", ODD_ID, "--catalog", str(catalog),
                                     "--compare", "h100", "--out", str(out), *extra])


def test_user_strings_with_dollars_are_drawn_and_escaped(tmp_path):
    """A name with $...$ crashed matplotlib's mathtext; now drawn literally, escaped in MD and HTML."""
    out = tmp_path / "p"
    result = report(tmp_path, out, "--title", "Run $1$ <script>alert(1)</script>")
    assert result.exit_code == 0, result.output
    md = (out / "proposal.md").read_text()
    assert "# Run \\$1\\$ \\<script\\>alert(1)\\</script\\>" in md
    assert "<script>" not in md and "<b>" not in md
    html = (out / "proposal.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;GPU&lt;/b&gt;" in html
    assert len(list((out / "figures").glob("*.png"))) == 5  # + tornado (issue 23)


def test_md_escape_round_trips_as_typed():
    assert md_escape("a|b *c* $d$ <e> [f](g) h_i _j_") == r"a\|b \*c\* \$d\$ \<e\> \[f\](g) h_i \_j\_"


def test_stale_figures_go_and_foreign_files_stay(tmp_path):
    out = tmp_path / "p"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "old_figure.png").write_bytes(b"stale")
    (out / "notes.txt").write_text("mine")
    assert report(tmp_path, out).exit_code == 0
    assert not (out / "figures" / "old_figure.png").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".p.tmp-")]


@pytest.mark.parametrize("blocker,kind", [("figures", "file"), ("proposal.html", "folder")])
def test_wrong_kind_at_a_report_name_is_one_line_and_nothing_written(tmp_path, blocker, kind):
    out = tmp_path / "p"
    out.mkdir()
    (out / blocker).mkdir() if kind == "folder" else (out / blocker).write_text("x")
    result = report(tmp_path, out)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"is a {kind}" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [blocker]


def test_symlinks_are_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "p"
    out.mkdir()
    os.symlink(victim, out / "proposal.md")
    assert report(tmp_path, out).exit_code == 0
    assert victim.read_text() == "precious"
    assert not (out / "proposal.md").is_symlink() and (out / "proposal.md").read_text().startswith("# ")
    link = tmp_path / "link"
    os.symlink(out, link)
    result = report(tmp_path, link)
    assert result.exit_code == 2 and "symbolic link" in result.stderr


def test_a_failed_write_leaves_nothing_half_written(tmp_path):
    """A real write error (the file-size limit, EFBIG, as a full disk gives ENOSPC) while the report is
    written: one line, exit 2, the earlier report intact, no temporary folder left."""
    out = tmp_path / "p"
    write_files(out, {"proposal.md": b"earlier", "figures/a.png": b"png"}, folders=("figures",))
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000)); "
            "from budget.cli import main; sys.argv = ['budget'] + sys.argv[1:]; main()")
    proc = subprocess.run([sys.executable, "-c", code, "report", "--flops", "1e21", "--gpu", "h100",
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT, check=False,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert proc.returncode == 2, proc.stderr[-400:]
    assert proc.stderr.count("\n") == 1 and "nothing was changed there" in proc.stderr
    assert (out / "proposal.md").read_bytes() == b"earlier" and (out / "figures" / "a.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


def test_write_files_refuses_a_file_as_out(tmp_path):
    target = tmp_path / "f"
    target.write_text("x")
    with pytest.raises(BudgetError, match="it is a file"):
        write_files(target, {"a.md": b"x"}, folders=())
