"""`budget ui` lands on a view where a sweep's points, their losses and sizes, show without a click.

A real store written through the project's Tracker (a sweep parent and two point children with
the tags, params and metric a sweep writes), the real `mlflow ui` started by `start_ui`, and
Debian's headless Chromium rendering the landing URL `budget ui` prints; the rendered DOM text
must hold each point's run name, final validation loss and size, best loss first, and not the
parent's row (the points would otherwise be folded under it with no metric column).
"""

import html
import re
import shutil
import socket
import subprocess

import pytest

from experiments.tracking import names

pytestmark = pytest.mark.slow

POINTS = [("C=1e12 N=20992", 20992, 2.8765), ("C=1e12 N=10496", 10496, 3.1234)]  # best first


def _store(tmp_path):
    from experiments.tracking.writer import open_store

    tracker, exp_id, uri = open_store(f"sqlite:///{tmp_path}/mlflow.db", "sweep-a")
    parent = tracker.create_run(exp_id, "sweep-smoke-test", {names.ROLE: names.ROLE_SWEEP})
    for name, n, loss in reversed(POINTS):
        run = tracker.create_run(exp_id, name, {names.ROLE: names.ROLE_POINT}, parent=parent)
        tracker.log_params(run, {"flops_budget": "1e12", "params": n, "tokens": 1000,
                                 names.LOSS_UNIT_PARAM: "nats per byte"})
        tracker.log_metrics(run, {names.FINAL_VAL_LOSS: loss})
        tracker.end_run(run)
    tracker.end_run(parent)
    return uri


def _page_text(url, profile):
    out = subprocess.run([shutil.which("chromium") or "chromium", "--headless", "--no-sandbox",
                          "--disable-gpu", f"--user-data-dir={profile}", "--window-size=2400,1400",
                          "--virtual-time-budget=15000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=90, check=True).stdout
    out = re.sub(r"<(script|style)\b.*?</\1>", " ", out, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", out)).split())


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_landing_page_shows_each_points_loss_and_size(tmp_path):
    from experiments.review.ui import start_ui, stop_ui

    uri = _store(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server, proc = start_ui(uri, "127.0.0.1", port, "sweep-a")
    try:
        text = _page_text(server.landing_url, tmp_path / "chromium")
    finally:
        stop_ui(proc)
    assert "2 matching runs" in text, text[:2000]
    assert "sweep-smoke-test" not in text  # no parent row to fold the points under
    where = []
    for name, n, loss in POINTS:
        assert name in text and f"{loss}" in text and f" {n} " in text, (name, text[:2000])
        where.append(text.index(name))
    assert where == sorted(where)  # best loss first
