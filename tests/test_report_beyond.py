"""`budget report` with the beyond options: the sections appear when asked, with their
assumptions and sources, and the proposal's numbers are those of `budget plan`."""

import json

from click.testing import CliRunner

from budget.cli import main
from budget.planner import BudgetInput, PlanRequest
from budget.report.build import build_report


def test_no_beyond_option_no_beyond_section():
    report = build_report(PlanRequest(budget=BudgetInput(flops=1e21)))
    assert report.beyond == () and report.plan.beyond is None


def test_report_carries_the_three_sections_when_asked(tmp_path):
    out = tmp_path / "proposal"
    result = CliRunner().invoke(main, [
        "report", "--flops", "1e21", "--inference-tokens", "2e12", "--unique-tokens", "2e10",
        "--frontier", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert any(f.endswith("frontier.png") for f in written["figures"])
    md = (out / "proposal.md").read_text()
    for title in ("## Inference-aware sizing", "## Capped unique data",
                  "## Tokens per parameter at this budget"):
        assert title in md
    assert "inference priced like training" in md  # the assumption is stated
    # and sourced (proposal.md backslash-escapes Markdown punctuation in user-visible text)
    assert "Sardana \\& Frankle 2023, arXiv:2401.00448" in md
    assert "R_D\\* = 15.387756" in md
    assert "--inference-tokens 2000000000000.0 --unique-tokens 20000000000.0" in md
    plan = CliRunner().invoke(main, ["plan", "--flops", "1e21", "--inference-tokens", "2e12",
                                     "--unique-tokens", "2e10", "--json"])
    beyond = json.loads(plan.stdout)["beyond"]
    assert json.loads((out / "plan.json").read_text())["beyond"] == beyond
    saving = beyond["inference"][0]["saving_flops"]
    assert f"saves {saving:.2e} FLOPs" in md
    html = (out / "proposal.html").read_text()
    assert 'data-name="frontier"' in html


def test_report_shows_the_loss_you_buy_for_a_params_tokens_budget(tmp_path):
    result = CliRunner().invoke(main, ["report", "--params", "280e9", "--tokens", "300e9",
                                       "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "p" / "proposal.md").read_text()
    assert "## The loss you buy" in md and "N = 280B parameters on D = 300B tokens" in md
