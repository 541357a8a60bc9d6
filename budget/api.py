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
from budget.models import transformer
from budget.models.layers import TransformerCount
from budget.planner import BudgetInput, Plan, PlanRequest
from budget.training.memory_report import (
    DEFAULT_NUM_GPUS,
    DEFAULT_RECOMPUTE,
    DEFAULT_ZERO_STAGE,
    MemoryReport,
    MemoryRequest,
    memory_report,
)

BUDGET_FORMS = tuple(f.name for f in fields(BudgetInput))


def plan(flops: float | None = None, *, calibrate: str | None = None,
         tracking_uri: str | None = None, **options: Any) -> Plan:
    """`budget plan`: the Plan for one budget form (flops=, pf_days=, gpu_hours=, budget_usd=,
    params= with tokens=, or forward_flops= with samples= and epochs=) and any PlanRequest field
    (gpu=, precision=, mfu=, num_gpus=, law=, ...); calibrate= a fit file or an experiment."""
    from budget.wiring import calibrated_plan

    allowed = {f.name for f in fields(PlanRequest)} - {"budget"}
    unknown = sorted(set(options) - allowed - set(BUDGET_FORMS))
    if unknown:
        raise BudgetError(f"unknown plan option(s) {', '.join(unknown)}; allowed: "
                          f"{', '.join(BUDGET_FORMS + tuple(sorted(allowed)))}, calibrate, "
                          "tracking_uri")
    budget = BudgetInput(flops=flops, **{k: options.pop(k) for k in BUDGET_FORMS if k in options})
    if "catalog_paths" in options:
        options["catalog_paths"] = tuple(options["catalog_paths"])
    options.setdefault("mfu_from_catalog", "mfu" not in options)  # as `budget plan` without --mfu
    if "mfu_band" in options:
        options["mfu_band"] = tuple(options["mfu_band"])
    return calibrated_plan(PlanRequest(budget=budget, **options), calibrate, tracking_uri)


def transformer_shape(*, params: float | None = None, n_layer: int | None = None,
                      d_model: int | None = None, n_head: int | None = None,
                      d_ff: int | None = None, n_ctx: int = transformer.DEFAULT_N_CTX,
                      vocab_size: int = transformer.GPT2_VOCAB, count: str = "total"
                      ) -> transformer.ModelShape:
    """One rule for a GPT-2-style shape: chosen for `params` (of `count`), or given explicitly
    (n_head defaults to d_model / 64 and must divide it; d_ff to 4 d_model)."""
    if params is not None:
        if any(v is not None for v in (n_layer, d_model, n_head, d_ff)):
            raise BudgetError("give either params or an explicit shape (n_layer, d_model, ...), "
                              "not both")
        return transformer.shape_for_params(params, count=count, n_ctx=n_ctx, vocab_size=vocab_size)
    if n_layer is None or d_model is None:
        raise BudgetError("give params, or n_layer with d_model (optional n_head, d_ff)")
    if n_head is None:
        if d_model % transformer.HEAD_DIM:
            raise BudgetError(f"d_model {d_model} is not a multiple of {transformer.HEAD_DIM}; "
                              "give n_head")
        n_head = d_model // transformer.HEAD_DIM
    return transformer.ModelShape(n_layer, d_model, n_head,
                                  transformer.FFN_MULT * d_model if d_ff is None else d_ff,
                                  n_ctx, vocab_size)


def memory(params: float | None = None, *, n_layer: int | None = None, d_model: int | None = None,
           n_head: int | None = None, d_ff: int | None = None,
           vocab_size: int = transformer.GPT2_VOCAB, seq_len: int = transformer.DEFAULT_N_CTX,
           micro_batch: int = 1, precision: str = "bf16", optimizer: str = "adam",
           recompute: str = DEFAULT_RECOMPUTE, zero_stage: int = DEFAULT_ZERO_STAGE,
           num_gpus: int = DEFAULT_NUM_GPUS, gpu: str | None = None,
           catalog_paths: Sequence[str] = ()) -> MemoryReport:
    """`budget memory`: training memory per GPU; with `gpu`, whether it fits, min_gpus and the
    layout search (the same defaults as the command: ZeRO-3 over 8 GPUs, recompute auto)."""
    shape = transformer_shape(params=params, n_layer=n_layer, d_model=d_model, n_head=n_head,
                              d_ff=d_ff, n_ctx=seq_len, vocab_size=vocab_size)
    return memory_report(MemoryRequest(shape, micro_batch=micro_batch, seq_len=seq_len,
                                       precision=precision, optimizer=optimizer,
                                       recompute=recompute, zero_stage=zero_stage,
                                       num_gpus=num_gpus, gpu=gpu,
                                       catalog_paths=tuple(catalog_paths)))


def flops(params: float | None = None, *, n_layer: int | None = None,
          d_model: int | None = None, n_head: int | None = None, d_ff: int | None = None,
          n_ctx: int = transformer.DEFAULT_N_CTX, vocab: int = transformer.GPT2_VOCAB,
          count: str = "total", tokens: float | None = None) -> TransformerCount:
    """`budget flops` for a transformer: parameters and FLOPs per token (and C for `tokens`)."""
    shape = transformer_shape(params=params, n_layer=n_layer, d_model=d_model, n_head=n_head,
                              d_ff=d_ff, n_ctx=n_ctx, vocab_size=vocab, count=count)
    return TransformerCount(shape, tokens)
