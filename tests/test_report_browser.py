"""proposal.html in a real headless Chromium (Debian's `chromium`): every image decodes and the
key figures (compute, recommended N and D, GPU-hours, cost) are in the rendered page text.

The page's own inline script writes each image's natural size into <pre id="check"> on load;
`--dump-dom` prints the DOM after the page has loaded and run its scripts."""

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from budget.planner import BudgetInput, PlanRequest
from budget.render import hours, human, money, sci
from budget.report.build import build_report, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium); CI installs it "
                "and runs this test", allow_module_level=True)


class _Text(HTMLParser):
    """The visible text of a page: everything outside <script> and <style>."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def chromium(*args, profile):
    assert CHROMIUM is not None, "CI is set but chromium is not installed (.ci/run installs it)"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, priced_catalog):
    tmp = tmp_path_factory.mktemp("browser")
    report = build_report(PlanRequest(BudgetInput(flops=1e21), gpu="h100"), ["a100", "mi300x"],
                          catalog=priced_catalog)  # the frozen prices ($3.49/h on h100 at MFU 0.40)
    written = write_report(report, tmp / "proposal")
    out = chromium("--virtual-time-budget=10000", "--dump-dom",
                   f"file://{written.html}", profile=tmp / "profile")
    assert out.returncode == 0, out.stderr[-2000:]
    return written, out.stdout


def test_every_image_loaded(rendered):
    written, dom = rendered
    check = re.search(r'<pre id="check" data-ready="(\w+)">(.*?)</pre>', dom, re.S)
    assert check and check.group(1) == "yes", "the page's load script did not run"
    lines = check.group(2).strip().splitlines()
    assert lines[0] == f"images {len(written.figures)}"
    sizes = dict(line.split(" ") for line in lines[1:])
    assert set(sizes) == {"loss_vs_compute", "allocation", "accelerators", "memory", "tornado"}
    for name, size in sizes.items():
        width, height = (int(x) for x in size.split("x"))
        assert width > 0 and height > 0, f"{name} did not decode"


def test_key_figures_are_in_the_page_text(rendered):
    written, dom = rendered
    parser = _Text()
    parser.feed(dom)
    text = " ".join(" ".join(parser.parts).split())
    plan = written.report.plan
    rec = plan.allocation(plan.recommended)
    assert sci(plan.compute_flops) == "1.00e+21"  # what the page should say, by hand
    for figure in (f"C = {sci(plan.compute_flops)} FLOPs", f"N = {human(rec.params)}",
                   f"D = {human(rec.tokens)}", f"{hours(plan.cost.gpu_hours)} GPU-hours",
                   money(plan.cost.cost_usd), "2.78B", "59.9B",
                   "$2,679"):  # 701.8 H100-hours of 6ND x 1.0937 (the shape's real FLOPs) x $3.49
        assert figure in text, figure
    for row in written.report.compare:
        assert row.gpu.id in text and money(row.cost.cost_usd) in text


def test_interval_tornado_and_price_table_in_the_page(rendered):
    """Issue 23: the P10/P50/P90 table, the inputs, the tornado chart and the price table."""
    written, dom = rendered
    parser = _Text()
    parser.feed(dom)
    text = " ".join(" ".join(parser.parts).split())
    iv = written.report.plan.interval
    assert "Interval: P10 / P50 / P90" in text
    for key in ("p10", "p50", "p90"):
        assert money(iv.percentiles["usd"][key]) in text and hours(
            iv.percentiles["gpu_hours"][key]) in text
    assert money(iv.point["usd"]) in text and "Each input from its P10 to its P90" in text
    assert "triangular(30%, 40%, 50%)" in text  # the stated step-time distribution
    assert "RunPod Secure Cloud (default)" in text and "cost at P50 GPU-hours" in text
    assert f"{iv.goodput.goodput:.1%}" in text


def test_screenshot_renders(rendered, tmp_path):
    written, _ = rendered
    shot = tmp_path / "shot.png"
    out = chromium("--hide-scrollbars", "--window-size=1200,2400", f"--screenshot={shot}",
                   f"file://{written.html}", profile=tmp_path / "profile")
    assert out.returncode == 0, out.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_the_check_sees_a_broken_image(rendered, tmp_path):
    """The image check can fail: a corrupted data URI reports a natural width of 0."""
    written, _ = rendered
    page = open(written.html, encoding="utf-8").read()
    broken = re.sub(r'(data-name="memory" alt="[^"]*" src="data:image/png;base64,)[^"]{200}',
                    r"\1AAAA", page, count=1)
    assert broken != page
    path = tmp_path / "broken.html"
    path.write_text(broken, encoding="utf-8")
    out = chromium("--virtual-time-budget=10000", "--dump-dom", f"file://{path}",
                   profile=tmp_path / "profile")
    check = re.search(r'<pre id="check" data-ready="yes">(.*?)</pre>', out.stdout, re.S).group(1)
    assert "memory 0x0" in check and "allocation 0x0" not in check
