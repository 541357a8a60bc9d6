"""`budget report`: write a cost proposal (proposal.md + self-contained proposal.html with plots)."""

from __future__ import annotations

from typing import Any

import click

from budget.cli import plan as plan_cli
from budget.cli.common import emit, json_option, require_extra
from budget.cli.plan import budget_options, build_request, calibrate_options
from budget.errors import BudgetError

# The shape and memory options are the plan command's own Option objects, so report and plan
# cannot drift apart: the same flags give the same plan.
SHAPE_OPTIONS = ("law", "seq_len", "vocab_size", "micro_batch", "zero_stage", "recompute",
                 "optimizer")


def parse_compare(text: str | None) -> tuple[str, ...]:
    """'a100, h200,mi300x' -> ('a100', 'h200', 'mi300x')."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


@click.command(name="report")
@budget_options
@click.option("--compare", metavar="GPU,GPU,...",
              help="Also cost the same run on these accelerators (comma-separated ids or aliases).")
@click.option("--out", "out_dir", default="proposal", show_default=True,
              type=click.Path(file_okay=False),
              help="Folder for proposal.md, proposal.html, plan.json and figures/ (created).")
@click.option("--title", help="Title of the proposal (default: the compute budget).")
@click.option("--experiment", help="Also log the report folder to this MLflow experiment.")
@calibrate_options
@json_option
def command(as_json: bool, compare: str | None, out_dir: str, title: str | None,
            experiment: str | None, tracking_uri: str | None, calibrate: str | None,
            **kw: Any) -> None:
    """Write a pre-project cost proposal: proposal.md and a self-contained proposal.html.

    The proposal states the budget and assumptions, the recommended allocation and why, every
    law's N and D, cost and time on --gpu and each --compare accelerator (GPU count, wall clock,
    GPU-hours, dollars, memory fit), the memory breakdown, risks and the source of every constant,
    with plots. Its numbers are those of 'budget plan' for the same options (plan.json holds the
    plan). With --experiment the folder is also logged to MLflow as artifacts of a run.

    Example: budget report --flops 1e21 --gpu h100 --compare a100,h200,mi300x --out proposal/
    """
    from dataclasses import replace

    from budget.report.build import build_report, write_report

    store = None
    if experiment is not None:  # open the store first: a bad URI fails before any file is written
        require_extra("sweep", "mlflow")
        from experiments.tracking import open_store

        try:
            store = open_store(tracking_uri, experiment)
        except OSError as exc:  # open_store lets mlflow's mkdir of the sqlite folder through
            raise BudgetError(f"tracking store {tracking_uri!r} is not usable: "
                              f"{exc.strerror or exc}") from None
    from budget.hardware.catalog import load_catalog

    req = build_request(kw)
    catalog = load_catalog(req.catalog_paths)
    section = calibration(calibrate, tracking_uri, req, catalog) if calibrate else None
    report = build_report(req, parse_compare(compare), title=title, calibration=section,
                          catalog=catalog)
    written = write_report(report, out_dir)
    if store is not None:
        written = replace(written, mlflow=log_report(written, *store))
    emit(written, as_json, render_written)


def log_report(written: Any, tracker: Any, experiment_id: str, tracking_uri: str) -> dict[str, str]:
    """The report folder as artifacts (under `report/`) of a run of its own, through the
    project's one MLflow writer; its ids."""
    from budget.report.build import report_metrics, report_params
    from experiments import names
    from experiments.tracking import log_folder_run

    plan = written.report.plan
    return log_folder_run(tracker, experiment_id, written.out_dir,
                          name=names.report_run_name(plan.compute_flops), role=names.ROLE_REPORT,
                          params=report_params(written.report), metrics=report_metrics(plan),
                          artifact_path=names.REPORT_DIR)


def calibration(name: str, tracking_uri: str | None, req: Any, catalog: Any) -> Any:
    """The calibration section: the fitted law (file or experiment) and, for a logged fit, the
    IsoFLOP and frontier figures logged with it."""
    from budget.planner import resolve_budget
    from budget.report.calibration import calibration_section

    law, run_id = plan_cli.load_calibration(name, tracking_uri)
    gpu = catalog.get(req.gpu)
    C = resolve_budget(req.budget, gpu, req.precision, req.mfu, req.price_per_hour).compute_flops
    figures = {}
    if run_id is not None:
        from experiments.fitting import fit_figures

        figures = fit_figures(run_id, tracking_uri)
    return calibration_section(law, C, figures)


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
