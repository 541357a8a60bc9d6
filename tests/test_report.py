"""`budget.report.build` as a library: the report's numbers are the planner's, the comparison rows are
`budget plan` on each accelerator, the files are self-contained, and a calibration section plugs in."""

import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from budget.errors import BudgetError
from budget.planner import BudgetInput, PlanRequest, make_plan
from budget.render import human, money
from budget.report.build import (
    build_report,
    orders_of_magnitude,
    same_run_request,
    write_report,
)
from budget.report.sections import CalibrationSection, Figure
from budget.scaling import laws

REQ = PlanRequest(BudgetInput(flops=1e21), gpu="h100")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(priced_catalog):  # prices and their dates from the frozen fixture catalog
    return build_report(REQ, ["a100", "h200", "mi300x"], catalog=priced_catalog)


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    return write_report(report, tmp_path_factory.mktemp("proposal"))


def test_report_plan_is_the_planners_plan(report, priced_catalog):
    """Same catalog, same plan (the interval's price quotes come from the catalog too)."""
    assert report.plan.to_dict() == make_plan(REQ, catalog=priced_catalog).to_dict()


def test_h100_row_known_answer(report):
    """1e21 FLOPs / (989.5e12 FLOP/s x 0.4) / 3600 = 701.8 H100-hours (H100 SXM datasheet dense
    BF16 989.5 TFLOP/s); at $3.49/h (fixture catalog, RunPod 2026-09-25) = $2,449; 8 GPUs -> 87.7 h.
    Time is priced on the proposed shape's real training FLOPs, 1.094x 6ND at 2,048 context."""
    row, ratio = report.compare[0], report.plan.ratio_to_6nd
    assert row.gpu.id == "h100-sxm-80gb" and row.num_gpus == 8
    assert report.plan.h100_hours == pytest.approx(1e21 / (989.5e12 * 0.4) / 3600)
    assert report.plan.h100_hours == pytest.approx(701.8, abs=0.05)
    assert ratio == pytest.approx(1.094, abs=0.001)
    assert row.cost.gpu_hours == pytest.approx(701.8 * ratio, abs=0.1)
    assert row.cost.cost_usd == pytest.approx(701.8 * ratio * 3.49, abs=0.3)
    assert row.cost.wall_clock_hours == pytest.approx(87.7 * ratio, abs=0.05)


def test_every_compare_row_is_budget_plan_on_that_gpu(report):
    assert [r.gpu.id for r in report.compare] == ["h100-sxm-80gb", "a100-sxm-80gb",
                                                     "h200-sxm-141gb", "mi300x"]
    for row in report.compare:
        again = make_plan(same_run_request(REQ, report.plan, row))
        assert again.cost.to_dict() == row.cost.to_dict()
        assert again.memory.to_dict() == row.memory.to_dict()
        assert again.shape == report.plan.shape


def test_duplicate_and_alias_compare_entries_are_dropped():
    rep = build_report(REQ, ["h100-sxm-80gb", "a100", "a100-sxm-80gb"])
    assert [r.gpu.id for r in rep.compare] == ["h100-sxm-80gb", "a100-sxm-80gb"]


def test_gpu_count_rises_to_the_fewest_that_fit():
    """A 1e24-FLOP epoch model (~60B params, 16 bytes/param of state) cannot sit on 1 A100 40GB."""
    req = replace(REQ, budget=BudgetInput(flops=1e24), num_gpus=1)
    rep = build_report(req, ["a100-40gb"])
    row = rep.compare[1]
    assert row.num_gpus == row.memory.min_gpus > 1 and row.fits
    assert row.count_reason.startswith("fewest that fit")
    assert row.cost.wall_clock_hours == pytest.approx(row.cost.gpu_hours / row.num_gpus)


def test_a_model_that_fits_nowhere_is_a_risk():
    """ZeRO-0 keeps all 16 bytes/param on every GPU: 60B params never fit on a 24 GB L4."""
    req = replace(REQ, budget=BudgetInput(flops=1e24), zero_stage=0)
    rep = build_report(req, ["l4"])
    row = rep.compare[1]
    assert not row.fits and row.count_reason == "does not fit at any GPU count"
    assert f"Memory on {row.gpu.id}: does not fit at any GPU count with ZeRO-0" in "\n".join(rep.risks)


@pytest.mark.parametrize("names,fragment", [
    (["h10"], "--compare h10: unknown accelerator 'h10'; close matches: h100"),
    (["v100"], "--compare v100: v100-sxm2-32gb has no bf16 peak"),
])
def test_bad_compare_names(names, fragment):
    with pytest.raises(BudgetError, match=re.escape(fragment)):
        build_report(REQ, names)


@pytest.mark.parametrize("c,expected", [
    (3e22, 1.0), (3e21, 0.0), (1e20, 0.0), (6e17, -1.0), (3e24, 3.0)])
def test_orders_of_magnitude_outside_the_fitted_range(c, expected):
    assert orders_of_magnitude(c, (6e18, 3e21)) == pytest.approx(expected)


def test_risks_name_the_mfu_band_extrapolation_and_price_dates(report):
    text = "\n".join(report.risks)
    lo, hi = report.plan.cost.gpu_hours_range
    assert f"{lo:,.0f}-{hi:,.0f} GPU-hours" in text and "30%-50%" in text
    assert "inside the fitted range 6.0e+18-3.0e+21 FLOPs" in text
    assert "1.7 orders of magnitude above the fitted range 1.0e+17-2.0e+19" in text  # DeepSeek
    # one price tier (issue 17): MI300X has no RunPod Secure Cloud row, so no dollars, said so
    assert "read 2026-09-25" in text and "No on-demand price in the catalog for mi300x" in text


def test_sources_cover_every_law_and_every_accelerator(report):
    sources = dict(report.sources)
    joined = "\n".join(f"{c} {s}" for c, s in report.sources)
    for law in laws.LAW_IDS:
        assert laws.LAW_SOURCES[law] in joined
    for row in report.compare:
        assert any(c.startswith(f"{row.gpu.id} dense bf16 peak") for c in sources)
        if row.cost.price_usd_per_hour is not None:
            assert any(c.startswith(f"{row.gpu.id} $") for c in sources)
    assert all(s for s in sources.values())


def test_files_are_written_and_self_contained(written):
    out = Path(written.out_dir)
    assert {p.name for p in out.iterdir()} >= {"proposal.md", "proposal.html", "plan.json",
                                               "figures"}
    assert len(written.figures) == 5  # + tornado (issue 23)
    for path in written.figures:
        assert Path(path).read_bytes().startswith(PNG_MAGIC)
    page = Path(written.html).read_text()
    assert "<link" not in page and not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert page.count('src="data:image/png;base64,') == 5
    markdown = Path(written.markdown).read_text()
    for ref in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown):
        assert (out / ref).is_file()


def test_plan_json_in_the_folder_and_in_the_page_is_the_plan(written):
    plan = written.report.plan.to_dict()
    assert json.loads(Path(written.plan_json).read_text()) == plan
    page = Path(written.html).read_text()
    embedded = re.search(r'<script type="application/json" id="plan-json">(.*?)</script>', page,
                         re.S).group(1)
    assert json.loads(embedded.replace("<\\/", "</")) == plan


def _from_human(text):
    scale = {"T": 1e12, "B": 1e9, "M": 1e6, "k": 1e3}
    return float(text[:-1]) * scale[text[-1]] if text[-1] in scale else float(text)


def _md_table(markdown, first_header):
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |")
                 and lines[i + 1].startswith("|---"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\) \| ", line.strip("|"))  # cells as rendered: markdown escapes undone
        rows.append([re.sub(r"\\(.)", r"\1", c).strip() for c in cells])
    return rows


def test_markdown_numbers_parse_back_to_the_plan(written):
    """The rendered tables, read back, give the plan's N, D, GPU-hours and dollars."""
    plan, markdown = written.report.plan, Path(written.markdown).read_text()
    for row, a in zip(_md_table(markdown, "law"), plan.allocations):
        assert row[0].split(" ")[0] == a.law
        assert _from_human(row[1].split(" ")[0]) == pytest.approx(a.params, rel=5e-3)
        assert _from_human(row[2]) == pytest.approx(a.tokens, rel=5e-3)
        assert float(row[3]) == pytest.approx(a.tokens_per_param, abs=0.05)
        assert row[4] == "-" if a.loss is None else float(row[4]) == pytest.approx(a.loss, abs=5e-4)
    for row, r in zip(_md_table(markdown, "accelerator"), written.report.compare):
        assert row[0] == r.gpu.id and row[1].startswith(f"{r.num_gpus} ")
        assert float(row[2].split(" ")[0].replace(",", "")) == pytest.approx(r.cost.gpu_hours,
                                                                             abs=0.5)
        assert row[4].startswith(money(r.cost.cost_usd))
    assert f"Train a {human(plan.allocation('epoch').params)}-parameter model" in markdown


def _tiny_png():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(2, 1.5))
    FigureCanvasAgg(fig)
    fig.subplots().plot([1, 2, 3], [3, 1, 2])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_a_calibration_section_plugs_in(tmp_path):
    """What issue 5 will pass: a law of the team's own (here a parametric law with made-up
    constants), recommended, with its fitted compute range, a table and a figure."""
    own = laws.ParametricLaw(E=2.0, A=300.0, B=900.0, alpha=0.33, beta=0.33, source="test sweep")

    def allocate(c):
        n, d = own.frontier(c)
        return laws.Allocation("calibrated", c, n, d, own.loss(n, d), "total", own.source)

    cal = CalibrationSection(
        title="Calibrated on our sweep", paragraphs=("Fitted on 12 runs.",),
        figures=(Figure("isoflop", "IsoFLOP curves", "our sweep", _tiny_png()),),
        allocation=allocate(1e21), recommend_reason="fitted on our data", allocate=allocate,
        fitted_compute_range=(1e15, 1e17), table=(("param", "value"), ("alpha", "0.33")),
        sources=(("calibrated law", "experiment demo, runs 1-12"),))
    rep = build_report(REQ, calibration=cal)
    assert rep.plan.recommended == "calibrated"
    assert rep.plan.allocations[-1].law == "calibrated"
    assert any("calibrated law: the budget is 4.0 orders of magnitude above" in r for r in rep.risks)
    w = write_report(rep, tmp_path / "cal")
    markdown = Path(w.markdown).read_text()
    assert "## Calibrated on our sweep" in markdown and "figures/isoflop.png" in markdown
    assert "| alpha | 0.33 |" in markdown and "experiment demo, runs 1-12" in markdown
    assert (tmp_path / "cal" / "figures" / "isoflop.png").is_file() and len(w.figures) == 6
    assert json.loads(Path(w.plan_json).read_text())["recommended"] == "calibrated"


def test_unwritable_output_folder(tmp_path, report):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BudgetError, match="cannot write the report to .*file/sub"):
        write_report(report, blocker / "sub")
    with pytest.raises(BudgetError, match="cannot write the report"):
        write_report(report, blocker)


def test_report_compute_is_the_resolved_budget_for_money_budgets():
    """--budget-usd on H100 buys real training FLOPs: $3,490 at $3.49/h = 1,000 H100-hours x
    989.5 TFLOP/s x 0.4; C = 6ND is that divided by the planned shape's real-FLOP ratio, so the
    run spends the money given. The comparison rows train the same model on the same tokens."""
    req = replace(REQ, budget=BudgetInput(budget_usd=3490.0))  # $3.49/h: 1,000 H100-hours
    rep = build_report(req, ["a100"])
    ratio = rep.plan.ratio_to_6nd
    assert rep.plan.compute_flops == pytest.approx(1000 * 3600 * 989.5e12 * 0.4 / ratio, rel=1e-3)
    assert rep.compare[1].cost.compute_flops == rep.plan.training_flops
    assert rep.compare[1].cost.gpu_hours == pytest.approx(
        rep.plan.training_flops / (312e12 * 0.4) / 3600)
    assert rep.compare[0].cost.cost_usd == pytest.approx(3490.0, rel=1e-3)


def test_an_accelerator_without_a_price(tmp_path):
    """gb200 has no on-demand price in the catalog: no dollars, said once in the risks."""
    rep = build_report(REQ, ["gb200"])
    row = rep.compare[1]
    assert row.cost.cost_usd is None and row.cost.gpu_hours > 0
    assert any(r.startswith(f"No on-demand price in the catalog for {row.gpu.id}")
               for r in rep.risks)
    w = write_report(rep, tmp_path / "p")
    cells = next(r for r in _md_table(Path(w.markdown).read_text(), "accelerator")
                 if r[0] == row.gpu.id)
    assert cells[4] == "-" and cells[5] == "-"


def test_headline_gpu_count_too_small_is_a_risk():
    """1e24 FLOPs (~60B params, ~0.9 TiB of model state) cannot sit on 1 H100 even with ZeRO-3."""
    rep = build_report(replace(REQ, budget=BudgetInput(flops=1e24), num_gpus=1))
    need = rep.plan.memory.min_gpus
    assert need > 1 and rep.compare[0].num_gpus == need
    assert any("does not fit on 1 h100-sxm-80gb GPU(s)" in r and f"uses the {need}" in r
               for r in rep.risks)
