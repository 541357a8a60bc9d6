"""Every MLflow run, tag, param, metric and artifact name the project writes or reads, in one place.

Writers (`experiments.tracking.writer.Tracker`) and readers (`tracking.sweep_runs_frame`,
`fitting.latest_fit`, `budget report --experiment`) take their names from here, so a rename is
one edit and a reader cannot drift from its writer. MLflow's own tag keys are named too.
"""

from __future__ import annotations

# MLflow's own tag keys (mlflow.utils.mlflow_tags)
PARENT_RUN = "mlflow.parentRunId"
NOTE = "mlflow.note.content"
EXPERIMENT_KIND = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"  # the UI opens it on the "Model training" pages
SHARED_VIEW = "mlflow.sharedViewState."  # + a key: a runs-table view the UI opens with
# ?viewStateShareKey=<key> (MLflow 3's "Share view"; a JSON of search facets and columns)

# our tags
ROLE = "budget.role"  # one of the ROLE_* values below
MLFLOW_USER = "mlflow.user"  # MLflow's own tag: the run's user (its sign-in name on a team server)
ROLE_SWEEP, ROLE_POINT, ROLE_FIT, ROLE_REPORT = "sweep", "point", "fit", "report"
CONFIG_HASH = "budget.config_hash"  # what a point measures (resume key)
SWEEP_HASH = "budget.sweep_hash"  # which grid a parent run trains (resume key)
FAILURE = "budget.failure_reason"  # why a run ended FAILED or KILLED
ATTEMPT = "budget.attempt"  # 1 for the first run of a config hash in this parent, 2 on a retry
POINT_INDEX = "budget.point"  # "3/12": the point's place in the grid
EXECUTOR = "budget.executor"  # local, pool or ray
SUBMISSION = "budget.submission"  # one per submission of a point; a retried task keeps it
LOSS_UNIT = "budget.loss_unit"  # "nats per byte" (byte corpus) or "nats per token"
LOSS_UNIT_PARAM = "loss_unit"  # the same, as a param (a column of the runs table)
EXECUTION, THREADS = "budget.execution", "budget.threads"  # the autotuner's choice
TIMED_TPS = "budget.timed_tokens_per_s"
SWEEP_WORKER = "budget.worker"  # host:pid of the process holding a RUNNING run
HEARTBEAT = "budget.heartbeat"  # unix seconds, refreshed while that process lives
NODE = "budget.node"  # the host (Ray node IP) that trained the point
DEVICE, DTYPE = "budget.device", "budget.dtype"
PEAK_SOURCE, PEAK_FLOPS = "budget.peak_source", "budget.peak_flops_per_s"
POINTS_FINISHED, POINTS_FAILED = "budget.points_finished", "budget.points_failed"
POINTS_ELSEWHERE = "budget.points_elsewhere"
SWEEP_PARENTS = "budget.sweep_parents"  # a fit run: the sweep runs it came from
USABLE = "budget.usable_for_planning"  # a fit run: "true" or "false" (review.usability)
UNUSABLE_WHY = "budget.not_usable_because"

SWEEP_PARAM_PREFIX = "sweep."  # a parent run's params: the SweepSpec, one param per field

# metrics of a point run (per step: train_loss, lr, tokens_seen, flops_seen, tokens_per_s, mfu,
# val_loss; at the end: the names below)
TRAIN_LOSS, TOKENS_SEEN, VAL_LOSS, FINAL_VAL_LOSS = ("train_loss", "tokens_seen", "val_loss",
                                                     "final_val_loss")
TOKENS, FLOPS_MODEL, FLOPS_6ND, SECONDS, FINAL_MFU = ("tokens", "flops_model", "flops_6nd",
                                                      "seconds", "final_mfu")

# metrics of a sweep's parent run: per budget (step k = the k-th budget), and per budget by name
BEST_LOSS, BEST_PARAMS = "best_loss", "best_params"

# artifacts
CONFIG_JSON, LOSS_CURVE_PNG, ISOFLOP_PNG = "config.json", "loss_curve.png", "isoflop.png"
FIT_JSON, FIT_PLOTS = "fit.json", "plots"
BEST_TABLE_JSON = "best_by_budget.json"  # the parent's table: budget, best size, its loss
REPORT_DIR = "report"

# the experiment view `budget ui` opens on (tag SHARED_VIEW + POINTS_VIEW)
POINTS_VIEW = "budget-points"

# run names
FIT_RUN = "fit"


def budget_label(flops: float) -> str:
    """An exact, short budget: 1.5e10, 2.5e11, 1e12 (never the rounded 2e+10)."""
    mantissa, exponent = f"{flops:.6e}".split("e")
    digits = mantissa.rstrip("0").rstrip(".")
    return f"{digits}e{int(exponent)}"


def point_run_name(flops_budget: float, params: int, seed: int = 0) -> str:
    """A point run's name: its exact budget and size, e.g. 'C=1.5e10 N=10496' (' seed=1' for a
    repeat with another seed)."""
    return f"C={budget_label(flops_budget)} N={params}" + (f" seed={seed}" if seed else "")


def sweep_run_name(preset: str, stamp: str) -> str:
    return f"sweep-{preset}-{stamp}"


def report_run_name(compute_flops: float) -> str:
    return f"report-{compute_flops:.3g}"
