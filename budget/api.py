"""The Python API: `budget.plan(...)`, `budget.memory(...)`, `budget.flops(...)`.

Each returns the frozen result whose `to_dict()` is exactly what the command's `--json` prints,
takes the command's options as keyword arguments (underscores for dashes, the same defaults),
and raises BudgetError (one line naming the bad value) where the command exits 2:

    >>> import budget
    >>> p = budget.plan(flops=1e21, gpu="h100")
    >>> p.recommended, round(p.allocation("epoch").params / 1e9, 2)
    ('epoch', 2.78)

`import budget` stays light: this module is imported on first use of one of these names.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Sequence

from budget.errors import BudgetError
from budget.models.arch import DEFAULT_ATTENTION_CONVENTION
from budget.models.choice import ALL_OPTIONS, ModelChoice, resolve_model
from budget.models.count import ArchitectureCount
from budget.plan_options import BUDGET_FORMS
from budget.planner import Plan, PlanRequest
from budget.training.memory_report import (
    DEFAULT_NUM_GPUS,
    DEFAULT_RECOMPUTE,
    DEFAULT_ZERO_STAGE,
    MemoryReport,
    MemoryRequest,
    memory_report,
)


def _pop_model(options: dict[str, Any]) -> dict[str, Any]:
    """The architecture options (model=, config=, family=, n_layer=, n_kv_head=, mlp=, ...)."""
    return {k: options.pop(k) for k in ALL_OPTIONS if k in options}


def plan(flops: float | None = None, *, calibrate: str | None = None,
         tracking_uri: str | None = None, **options: Any) -> Plan:
    """`budget plan`: the Plan for one budget form (flops=, pf_days=, gpu_hours=, budget_usd=,
    params= with tokens=, or forward_flops= with samples= and epochs=), any PlanRequest field
    (gpu=, precision=, mfu=, num_gpus=, law=, ...), a model (model="llama-2-7b", config=FILE, or
    shape options n_layer=, d_model=, n_kv_head=, ...); calibrate= a fit file or an experiment."""
    from budget.wiring import calibrated_plan

    allowed = {f.name for f in fields(PlanRequest)} - {"budget", "model", "model_source", "block"}
    unknown = sorted(set(options) - allowed - set(BUDGET_FORMS) - set(ALL_OPTIONS))
    if unknown:
        raise BudgetError(f"unknown plan option(s) {', '.join(unknown)}; allowed: "
                          f"{', '.join(BUDGET_FORMS + tuple(sorted(allowed)))}, "
                          f"{', '.join(ALL_OPTIONS)}, calibrate, tracking_uri")
    return calibrated_plan(PlanRequest.from_options({"flops": flops, **options}), calibrate, tracking_uri)


def _model(params: float | None, seq_len: int | None, opts: dict[str, Any],
           count: str = "total") -> ModelChoice:
    """The one rule of `budget flops`/`memory`: a name, a config, a shape or a size N."""
    choice = resolve_model(opts, seq_len=seq_len, params=params, count=count)
    if choice is None:
        raise BudgetError("give model=NAME, config=FILE, params=N, or n_layer with d_model")
    return choice


def memory(params: float | None = None, *, seq_len: int | None = None, micro_batch: int = 1,
           precision: str = "bf16", optimizer: str = "adam", recompute: str = DEFAULT_RECOMPUTE,
           zero_stage: int = DEFAULT_ZERO_STAGE, num_gpus: int = DEFAULT_NUM_GPUS,
           gpu: str | None = None, catalog_paths: Sequence[str] = (),
           **model_options: Any) -> MemoryReport:
    """`budget memory`: training memory per GPU; with `gpu`, whether it fits, min_gpus and the
    layout search (the command's defaults: ZeRO-3 over 8 GPUs, recompute auto). The model is
    model=, config=, a shape (n_layer=, d_model=, ... in family=) or params=N (model states use N
    exactly)."""
    opts = _pop_model(model_options)
    _no_unknown("memory", model_options)
    opts.pop("attention", None)
    choice = _model(params, seq_len, opts)
    return memory_report(MemoryRequest(choice.arch, micro_batch=micro_batch, seq_len=choice.seq_len,
                                       precision=precision, optimizer=optimizer,
                                       recompute=recompute, zero_stage=zero_stage,
                                       num_gpus=num_gpus, gpu=gpu,
                                       catalog_paths=tuple(catalog_paths), params=params,
                                       model=choice))


def flops(params: float | None = None, *, n_ctx: int | None = None, count: str = "total",
          tokens: float | None = None, **model_options: Any) -> ArchitectureCount:
    """`budget flops` for a transformer: parameters, FLOPs per token by term (and C for
    `tokens`); attention= "unhalved" (default) or "causal"."""
    opts = _pop_model(model_options)
    _no_unknown("flops", model_options)
    choice = _model(params, n_ctx, opts, count)
    return ArchitectureCount(choice.arch, choice.seq_len, opts.get("attention") or
                             DEFAULT_ATTENTION_CONVENTION, tokens, choice.source, choice.note)


def _no_unknown(command: str, options: dict[str, Any]) -> None:
    if options:
        raise BudgetError(f"unknown {command} option(s) {', '.join(sorted(options))}; model "
                          f"options: {', '.join(ALL_OPTIONS)}")
