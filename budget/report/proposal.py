"""`budget report` in one call: `make_proposal(ProposalRequest) -> WrittenReport`.

Opens the MLflow store first when the proposal is to be logged (a bad URI fails before any file
is written), loads the calibration (`--calibrate FILE|EXP`, with the figures logged beside a fit
run), builds the report, writes the folder and logs it. MLflow and the fit loading are reached
through `budget.wiring`, never imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from budget.hardware.catalog import Catalog, load_catalog
from budget.planner import PlanRequest, resolve_budget
from budget.report.build import build_report, write_report
from budget.report.sections import CalibrationSection, WrittenReport

DEFAULT_OUT_DIR = "proposal"


@dataclass(frozen=True)
class ProposalRequest:
    """Everything `budget report` takes, already parsed."""

    plan: PlanRequest
    compare: tuple[str, ...] = ()
    out_dir: str = DEFAULT_OUT_DIR
    title: str | None = None
    experiment: str | None = None  # also log the folder to this MLflow experiment
    tracking_uri: str | None = None
    calibrate: str | None = None  # a fit file or an MLflow experiment with a fit
    frontier: bool = False  # add the tokens-per-parameter table and figure (budget frontier)


def parse_compare(text: str | None) -> tuple[str, ...]:
    """'a100, h200,mi300x' -> ('a100', 'h200', 'mi300x')."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def make_proposal(req: ProposalRequest) -> WrittenReport:
    """Build, write and (with `experiment`) log the proposal for `req`."""
    from budget import wiring

    store = wiring.open_report_store(req.tracking_uri, req.experiment) \
        if req.experiment is not None else None
    catalog = load_catalog(req.plan.catalog_paths)
    section = calibration(req.calibrate, req.tracking_uri, req.plan, catalog) \
        if req.calibrate else None
    report = build_report(req.plan, req.compare, title=req.title, calibration=section,
                          catalog=catalog, frontier=req.frontier)
    written = write_report(report, req.out_dir)
    if store is not None:
        written = replace(written, mlflow=wiring.log_report(written, *store))
    return written


def calibration(name: str, tracking_uri: str | None, req: PlanRequest,
                catalog: Catalog) -> CalibrationSection:
    """The calibration section: the fitted law (file or experiment) and, for a logged fit, the
    IsoFLOP and frontier figures logged with it."""
    from budget import wiring
    from budget.report.calibration import calibration_section

    loaded = wiring.load_calibration(name, tracking_uri)
    gpu = catalog.get(req.gpu)
    C = resolve_budget(req.budget, gpu, req.precision, req.mfu, req.price_per_hour).compute_flops
    return calibration_section(loaded.calibration, C, wiring.calibration_figures(loaded))
