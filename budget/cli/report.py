"""`budget report`: write a cost proposal (proposal.md + self-contained proposal.html with plots)."""

from __future__ import annotations

from typing import Any

import click

from budget.cli import plan as plan_cli
from budget.cli.arch_options import ALL_OPTIONS
from budget.cli.beyond import BEYOND_OPTION_NAMES
from budget.cli.common import emit, json_option
from budget.cli.plan import budget_options, build_request, calibrate_options
from budget.report.proposal import DEFAULT_OUT_DIR

# The shape and memory options are the plan command's own Option objects, so report and plan
# cannot drift apart: the same flags give the same plan.
SHAPE_OPTIONS = ("law", "seq_len", "vocab_size", "micro_batch", "zero_stage", "recompute",
                 "optimizer") + BEYOND_OPTION_NAMES + tuple(k for k in ALL_OPTIONS if k != "vocab")


@click.command(name="report")
@budget_options
@click.option("--compare", metavar="GPU,GPU,...",
              help="Also cost the same run on these accelerators (comma-separated ids or aliases).")
@click.option("--out", "out_dir", default=DEFAULT_OUT_DIR, show_default=True,
              type=click.Path(file_okay=False),
              help="Folder for proposal.md, proposal.html, plan.json and figures/ (created).")
@click.option("--title", help="Title of the proposal (default: the compute budget).")
@click.option("--experiment", help="Also log the report folder to this MLflow experiment.")
@click.option("--frontier", "with_frontier", is_flag=True,
              help="Add the tokens-per-parameter table and figure at this budget (budget frontier).")
@calibrate_options
@json_option
def command(as_json: bool, compare: str | None, out_dir: str, title: str | None,
            experiment: str | None, tracking_uri: str | None, calibrate: str | None,
            with_frontier: bool, **kw: Any) -> None:
    """Write a pre-project cost proposal: proposal.md and a self-contained proposal.html.

    The proposal states the budget and assumptions, the recommended allocation and why, every
    law's N and D, cost and time on --gpu and each --compare accelerator (GPU count, wall clock,
    GPU-hours, dollars, memory fit), the memory breakdown, risks and the source of every constant,
    with plots. Its numbers are those of 'budget plan' for the same options (plan.json holds the
    plan). With --experiment the folder is also logged to MLflow as artifacts of a run.

    Example: budget report --flops 1e21 --gpu h100 --compare a100,h200,mi300x --out proposal/
    """
    from budget.report.proposal import ProposalRequest, make_proposal, parse_compare

    req = ProposalRequest(build_request(kw), parse_compare(compare), out_dir, title, experiment,
                          tracking_uri, calibrate, with_frontier)
    emit(make_proposal(req), as_json, render_written)


def render_written(written: Any) -> str:
    """The terminal summary: the answer in one paragraph and the files written."""
    from budget.report.html import summary

    lines = [summary(written.report), "", f"Wrote {written.markdown}", f"      {written.html}",
             f"      {written.plan_json}"] + [f"      {f}" for f in written.figures]
    if written.mlflow:
        m = written.mlflow
        lines.append(f"Logged to MLflow run {m['run_id']} (experiment {m['experiment_id']}, "
                     f"{m['tracking_uri']}): {m['artifact_uri']}")
    return "\n".join(lines)


_at = next(i for i, p in enumerate(command.params) if p.name == "compare")
command.params[_at:_at] = [p for p in plan_cli.command.params if p.name in SHAPE_OPTIONS]
