"""The planner: from a compute budget to N, D per law, GPU-hours, dollars, memory and a shape.

Modules by job: `request` (the request; whichever budget the user gave as C in FLOPs),
`allocation` (N and D per law, the recommended one, its shape), `fixed` (plans for a given model
or N), `cost` (the MFU and the beyond-optimal pricing), `layout` (the memory block and the cluster
layout), `notes`, `result` (the Plan), and `make` (make_plan, the one call the command makes).
"""

from budget.planner.allocation import calibrated_recommendation, recommend_law, sweep_setup
from budget.planner.layout import plan_memory
from budget.planner.make import make_plan
from budget.planner.notes import compute_range_warning, fixed_budget_notes
from budget.planner.request import (
    DEFAULT_NUM_GPUS,
    REFERENCE_GPU,
    SANE_COMPUTE_FLOPS,
    BudgetInput,
    PlanRequest,
    ResolvedBudget,
    resolve_budget,
    target_loss_budget,
)
from budget.planner.result import Plan, gpu_summary

__all__ = ["DEFAULT_NUM_GPUS", "REFERENCE_GPU", "SANE_COMPUTE_FLOPS", "BudgetInput", "Plan",
           "PlanRequest", "ResolvedBudget", "calibrated_recommendation", "compute_range_warning",
           "fixed_budget_notes", "gpu_summary", "make_plan", "plan_memory", "recommend_law",
           "resolve_budget", "sweep_setup", "target_loss_budget"]
