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

# our tags
ROLE = "budget.role"  # one of the ROLE_* values below
ROLE_SWEEP, ROLE_POINT, ROLE_FIT, ROLE_REPORT = "sweep", "point", "fit", "report"
CONFIG_HASH = "budget.config_hash"  # what a point measures (resume key)
SWEEP_HASH = "budget.sweep_hash"  # which grid a parent run trains (resume key)
FAILURE = "budget.failure_reason"  # why a run ended FAILED or KILLED
ATTEMPT = "budget.attempt"  # 1 for the first run of a config hash in this parent, 2 on a retry
POINT_INDEX = "budget.point"  # "3/12": the point's place in the grid
EXECUTOR = "budget.executor"  # local or ray
NODE = "budget.node"  # the host (Ray node IP) that trained the point
DEVICE, DTYPE = "budget.device", "budget.dtype"
PEAK_SOURCE, PEAK_FLOPS = "budget.peak_source", "budget.peak_flops_per_s"
POINTS_FINISHED, POINTS_FAILED = "budget.points_finished", "budget.points_failed"
SWEEP_PARENTS = "budget.sweep_parents"  # a fit run: the sweep runs it came from

SWEEP_PARAM_PREFIX = "sweep."  # a parent run's params: the SweepSpec, one param per field

# metrics of a point run (per step: train_loss, lr, tokens_seen, flops_seen, tokens_per_s, mfu,
# val_loss; at the end: the names below)
TRAIN_LOSS, TOKENS_SEEN, VAL_LOSS, FINAL_VAL_LOSS = ("train_loss", "tokens_seen", "val_loss",
                                                     "final_val_loss")
TOKENS, FLOPS_MODEL, FLOPS_6ND, SECONDS, FINAL_MFU = ("tokens", "flops_model", "flops_6nd",
                                                      "seconds", "final_mfu")

# artifacts
CONFIG_JSON, LOSS_CURVE_PNG, ISOFLOP_PNG = "config.json", "loss_curve.png", "isoflop.png"
FIT_JSON, FIT_PLOTS = "fit.json", "plots"
REPORT_DIR = "report"

# run names
FIT_RUN = "fit"


def point_run_name(flops_budget: float, params: int) -> str:
    """A point run's name: its budget and size, e.g. 'C=5e+09 N=10496'."""
    return f"C={flops_budget:.0e} N={params}"


def report_run_name(compute_flops: float) -> str:
    return f"report-{compute_flops:.3g}"
