"""The planner: from a compute budget to N, D per law, GPU-hours, dollars, memory and a shape.

`resolve_budget` turns whichever budget the user gave (FLOPs, PF-days, GPU-hours, dollars, N and D,
or a network's forward FLOPs x samples x epochs) into C in FLOPs; `make_plan` does the rest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Sequence

from budget import fixed_plan
from budget.errors import BudgetError
from budget.hardware import energy as energy_model
from budget.hardware.catalog import Accelerator, Catalog, load_catalog
from budget.models import families
from budget.models.arch import DEFAULT_ATTENTION_CONVENTION, Architecture
from budget.models.transformer import DEFAULT_N_CTX, ModelShape
from budget.scaling import laws
from budget.scaling.calibrated import VERY_LONG_EXTRAPOLATION_DECADES, Calibration
from budget.training import time as costing
from budget.training.memory import MemoryBreakdown, training_memory

if TYPE_CHECKING:  # beyond needs numpy: imported only when a beyond option is given
    from budget.scaling.beyond import BeyondPlan

# Budgets outside this range get a warning: the laws were fitted on 6e18-3e21 FLOPs (Hoffmann et al.
# 2022 Figure 3) and the largest reported runs are ~4e25 (Llama 3.1 405B: 3.8e25, Meta 2024 §3.1).
SANE_COMPUTE_FLOPS = (1e15, 1e28)
REFERENCE_GPU = "h100-sxm-80gb"  # "H100-hours" are quoted on the H100 SXM dense BF16 peak
DEFAULT_NUM_GPUS = 8  # one 8-GPU node, the unit clouds rent


@dataclass(frozen=True)
class BudgetInput:
    """Exactly one way of giving the budget; the others stay None."""

    flops: float | None = None
    pf_days: float | None = None
    gpu_hours: float | None = None
    budget_usd: float | None = None
    params: float | None = None
    tokens: float | None = None
    forward_flops: float | None = None
    samples: float | None = None
    epochs: float | None = None


@dataclass(frozen=True)
class ResolvedBudget:
    """C in FLOPs and how it was derived."""

    compute_flops: float
    given_as: str
    formula: str
    mfu_band_effect: str = ""  # a budget fixed in money or hours: what the MFU band moves instead

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_budget(b: BudgetInput, gpu: Accelerator, precision: str, mfu: float,
                   price_per_hour: float | None = None) -> ResolvedBudget:
    """Turn exactly one budget form into FLOPs; BudgetError names conflicts or missing partners."""
    forms = {
        "--flops": b.flops is not None, "--pf-days": b.pf_days is not None,
        "--gpu-hours": b.gpu_hours is not None, "--budget-usd": b.budget_usd is not None,
        "--params/--tokens": b.params is not None or b.tokens is not None,
        "--forward-flops/--samples/--epochs": any(
            x is not None for x in (b.forward_flops, b.samples, b.epochs)),
    }
    given = [name for name, present in forms.items() if present]
    if not given:
        raise BudgetError("no budget given; give exactly one of --flops, --pf-days, --gpu-hours, "
                          "--budget-usd, --params with --tokens, or --forward-flops with "
                          "--samples and --epochs")
    if len(given) > 1:
        raise BudgetError(f"conflicting budgets {' and '.join(given)}; give exactly one")
    if b.flops is not None:
        return ResolvedBudget(laws.check_compute(b.flops), "flops", "C given in FLOPs")
    if b.pf_days is not None:
        return ResolvedBudget(laws.check_compute(b.pf_days * laws.PF_DAY_FLOPS), "pf-days",
                              f"C = {b.pf_days:g} PF-days x 8.64e19 FLOPs/PF-day")
    if b.gpu_hours is not None:
        c = costing.compute_from_gpu_hours(b.gpu_hours, gpu, precision, mfu)
        return ResolvedBudget(laws.check_compute(c), "gpu-hours",
                              f"C = {b.gpu_hours:g} {gpu.id}-hours x 3600 s x {precision} peak x MFU {mfu:g}")
    if b.budget_usd is not None:
        c = costing.compute_from_usd(b.budget_usd, gpu, precision, mfu, price_per_hour)
        return ResolvedBudget(laws.check_compute(c), "usd",
                              f"C = ${b.budget_usd:g} / price per {gpu.id}-hour x 3600 s x peak x MFU {mfu:g}")
    if b.params is not None or b.tokens is not None:
        if b.params is None or b.tokens is None:
            raise BudgetError("--params and --tokens go together (C = 6 N D); give both")
        return ResolvedBudget(laws.check_compute(6.0 * b.params * b.tokens), "params-tokens",
                              f"C = 6 N D with N = {b.params:g}, D = {b.tokens:g}")
    if b.forward_flops is None or b.samples is None or b.epochs is None:
        raise BudgetError("--forward-flops, --samples and --epochs go together (C = 3 F S E); give all three")
    return ResolvedBudget(laws.check_compute(3.0 * b.forward_flops * b.samples * b.epochs),
                          "forward-flops", "C = 3 x forward FLOPs x samples x epochs")


@dataclass(frozen=True)
class PlanRequest:
    """Everything `budget plan` takes, already parsed."""

    budget: BudgetInput
    gpu: str = "h100"
    precision: str = "bf16"
    mfu: float = costing.DEFAULT_MFU
    mfu_band: tuple[float, float] = costing.DEFAULT_MFU_BAND
    num_gpus: int = DEFAULT_NUM_GPUS
    price_per_hour: float | None = None
    law: str | None = None  # the law whose N sizes the shape and memory; default: recommended
    seq_len: int = DEFAULT_N_CTX
    seq_len_given: bool = False  # --seq-len given: a calibrated shape keeps it (else the sweep's)
    vocab_size: int | None = None  # None: the family's (llama 32000, gpt2 50257)
    micro_batch: int = 1
    zero_stage: int = 3
    recompute: str = "auto"  # selective, or full when selective does not fit at any GPU count
    optimizer: str = "adam"
    catalog_paths: tuple[str, ...] = ()
    # beyond compute-optimal (budget.scaling.beyond): None = not asked
    inference_tokens: float | None = None  # lifetime tokens served (Sardana & Frankle 2023)
    target_loss: float | None = None  # the loss to reach as cheaply as possible
    unique_tokens: float | None = None  # cap on unique training tokens (Muennighoff et al. 2023)
    pue: float = energy_model.DEFAULT_PUE  # energy hook (budget.hardware.energy)
    power_fraction: float | None = None
    grid_gco2_per_kwh: float | None = None
    mfu_from_catalog: bool = False  # use the GPU's published default MFU (else the global one)
    cluster: Any = None  # budget.training.cluster_plan.ClusterRequest (layout options); default: search
    family: str = families.DEFAULT_FAMILY  # the family of the proposed shape
    attention: str = DEFAULT_ATTENTION_CONVENTION  # attention-FLOP convention of the real FLOPs
    model: Architecture | None = None  # a fixed model (--model, --config): N is its count
    model_source: str = ""
    block: tuple[tuple[str, Any], ...] = ()  # block options for the proposed shape (--mlp, ...)
    reliability: Any = None  # budget.training.interval.Reliability (failures, checkpoints, price tier)


@dataclass(frozen=True)
class Plan:
    """The answer: C, one allocation per law, the chosen one, time, dollars, memory and a shape."""

    compute_flops: float
    compute_pf_days: float
    h100_hours: float
    budget: ResolvedBudget
    gpu: dict[str, Any]
    precision: str
    mfu: float
    mfu_source: str
    allocations: tuple[laws.Allocation, ...]
    recommended: str
    recommended_reason: str
    cost: costing.CostEstimate
    memory: MemoryBreakdown
    shape: Architecture
    shape_params: float
    shape_params_count: str
    shape_error: float
    hyperparameters: laws.Hyperparameters
    notes: tuple[str, ...] = field(default=())
    calibration: dict[str, Any] | None = None
    beyond: BeyondPlan | None = None  # only when asked (--inference-tokens, --target-loss, ...)
    energy: energy_model.EnergyEstimate | None = None  # None: no TDP in the catalog
    parallel: Any = None  # budget.training.cluster_plan.ClusterPlan when a cluster was asked for
    shape_law: str = ""  # the law whose N the shape and memory are sized for
    tokens: float = 0.0  # D the time is priced for (the chosen law's D*, or the fixed model's D)
    training_flops_per_token: float = 0.0  # the shape's real training FLOPs per token
    training_flops: float = 0.0  # per token x D: what GPU-hours and wall clock are priced on
    attention_convention: str = DEFAULT_ATTENTION_CONVENTION
    fixed: fixed_plan.FixedModel | None = None  # a plan for a given N (--model, --params)
    shape_source: str = ""
    interval: Any = None  # budget.training.interval.Interval: P10/P50/P90, goodput, tornado

    @property
    def ratio_to_6nd(self) -> float:
        """Real training FLOPs / C (C = 6ND as the laws count it)."""
        return self.training_flops / self.compute_flops

    def allocation(self, law: str) -> laws.Allocation:
        return next(a for a in self.allocations if a.law == law)

    def to_dict(self) -> dict[str, Any]:
        c = self.cost
        return {
            "compute_flops": self.compute_flops, "compute_pf_days": self.compute_pf_days,
            "h100_hours": self.h100_hours, "budget": self.budget.to_dict(), "gpu": self.gpu,
            "precision": self.precision, "mfu": self.mfu, "mfu_band": list(c.mfu_band),
            "mfu_source": self.mfu_source,
            "allocations": [a.to_dict() for a in self.allocations],
            "recommended": self.recommended, "recommended_reason": self.recommended_reason,
            "gpu_hours": c.gpu_hours, "gpu_hours_range": list(c.gpu_hours_range),
            "wall_clock_hours": c.wall_clock_hours,
            "wall_clock_hours_range": list(c.wall_clock_hours_range),
            "wall_clock_days": c.wall_clock_days, "num_gpus": c.num_gpus,
            "cost_usd": c.cost_usd, "cost_usd_range": None if c.cost_usd_range is None
            else list(c.cost_usd_range), "price_usd_per_hour": c.price_usd_per_hour,
            "price_source": c.price_source, "memory": self.memory.to_dict(),
            "min_gpus": self.memory.min_gpus,
            "shape": {**self.shape.to_dict(), "params": self.shape_params,
                      "params_count": self.shape_params_count,
                      "relative_error": self.shape_error, "law": self.shape_law or self.recommended,
                      "description": self.shape.describe(), "source": self.shape_source},
            "hyperparameters": self.hyperparameters.to_dict(), "notes": list(self.notes),
            "calibration": self.calibration, "tokens": self.tokens,
            "training_flops_per_token": self.training_flops_per_token,
            "training_flops": self.training_flops, "ratio_to_6nd": self.ratio_to_6nd,
            "attention_convention": self.attention_convention,
            "fixed_model": None if self.fixed is None else self.fixed.to_dict(),
            "energy": None if self.energy is None else self.energy.to_dict(),
            **_parallel_keys(self.parallel),
            "interval": None if self.interval is None else self.interval.to_dict(),
        } | ({} if self.beyond is None else {"beyond": self.beyond.to_dict()})


def _parallel_keys(parallel: Any) -> dict[str, Any]:
    """The layout section's JSON keys (units in the names), or nothing without one."""
    if parallel is None:
        return {}
    out = parallel.to_dict()
    best = parallel.search.best
    return {"parallel": out, "layout": None if best is None else best.layout.to_dict(),
            "memory_per_gpu_bytes": out["memory_per_gpu_bytes"], "step_time_s": out["step_time_s"],
            "compute_s": out["compute_s"], "communication_s": out["communication_s"],
            "bubble_s": out["bubble_s"], "predicted_mfu": out["predicted_mfu"],
            "goodput": parallel.goodput}


def gpu_summary(gpu: Accelerator, requested: str, precision: str) -> dict[str, Any]:
    """The GPU block of a plan: what the name resolved to and the peak used."""
    alias = "" if requested.strip().lower() == gpu.id.lower() else \
        f"'{requested}' means {gpu.name} ({gpu.id})"
    return {"id": gpu.id, "name": gpu.name, "requested": requested, "alias_note": alias,
            "peak_flops": gpu.peak_flops(precision), "precision": precision,
            "memory_bytes": gpu.memory_bytes, "memory_basis": gpu.memory_basis,
            "price_tier": gpu.price_tier, "price_usd_per_hour": gpu.price_usd_per_hour,
            "price_provider": gpu.price_provider, "price_date": gpu.price_date,
            "peak_source": gpu.sources.get("peak", "")}


def make_plan(req: PlanRequest, *, catalog: Catalog | None = None,
              extra_allocations: Sequence[laws.Allocation] = (),
              recommend: tuple[str, str] | None = None,
              calibration: Calibration | None = None) -> Plan:
    """Build the plan. `extra_allocations` join the literature laws; `recommend` = (law id,
    reason) overrides the default recommendation. A `calibration` (the team's fitted law) adds
    the `calibrated` allocation and is recommended unless the budget lies more than 1,000x
    beyond its largest swept budget.

    A budget of hours or dollars (--gpu-hours, --budget-usd, --days) buys real training FLOPs, not
    6ND: C is the FLOPs those hours deliver divided by the planned model's real-FLOP ratio, so the
    run fits the hours given. The ratio is found with probe passes (no layout search, no
    beyond-optimal part: neither moves the FLOPs), then the chosen C is planned once in full."""
    catalog = catalog or load_catalog(req.catalog_paths)
    hours_budget = (req.budget.gpu_hours is not None or req.budget.budget_usd is not None) \
        and req.model is None
    plan = _make_plan(req, catalog, extra_allocations, recommend, calibration, 1.0,
                      probe=hours_budget)
    if not hours_budget:
        return plan
    deliverable = plan.compute_flops  # what the hours deliver at the MFU: real FLOPs to spend
    ratio, tried = plan.ratio_to_6nd, []
    for _ in range(6):  # the shape is discrete in C, so its ratio can jump: correct and keep the best
        probe = _make_plan(req, catalog, extra_allocations, recommend, calibration, ratio,
                           probe=True)
        tried.append((probe.training_flops, ratio))
        if 0.995 * deliverable <= probe.training_flops <= deliverable:
            break
        ratio *= probe.training_flops / (0.998 * deliverable)  # aim just inside the hours
    within = [t for t in tried if t[0] <= deliverable * (1 + 1e-9)]
    best = max(within) if within else min(tried)
    return _make_plan(req, catalog, extra_allocations, recommend, calibration, best[1])


def _make_plan(req: PlanRequest, catalog: Catalog, extra_allocations: Sequence[laws.Allocation],
               recommend: tuple[str, str] | None, calibration: Calibration | None,
               flop_ratio: float, probe: bool = False) -> Plan:
    """One pass of make_plan; an hours or money budget's C is divided by `flop_ratio`. A `probe`
    pass (make_plan's search for that ratio) skips the layout search and the beyond part."""
    gpu = catalog.get(req.gpu)
    mfu, mfu_source = costing.check_mfu(req.mfu), costing.MFU_SOURCE
    band = req.mfu_band
    if req.mfu_from_catalog:
        mfu, mfu_source = costing.device_mfu(gpu)
        band = costing.band_including(mfu, band)
    fixed_n = _fixed_params(req)
    fixed_shape = _fixed_shape(req, fixed_n) if fixed_n else None
    b = req.budget
    only_n = fixed_n and b.tokens is None and not any(
        getattr(b, f) is not None for f in ("flops", "pf_days", "gpu_hours", "budget_usd",
                                             "forward_flops", "samples", "epochs"))
    target = target_loss_budget(req)
    if target is not None:
        budget = target
    elif fixed_n and fixed_shape and only_n:  # no D: the chosen law's compute-optimal D for N
        law_for_d = req.law or (recommend or (laws.RECOMMENDED_LAW, ""))[0]
        budget = _optimal_d_budget(law_for_d, fixed_n, fixed_shape[0], req.model is not None)
    else:
        given = replace(b, params=fixed_n) if req.model is not None and b.tokens is not None else b
        budget = resolve_budget(given, gpu, req.precision, mfu, req.price_per_hour)
        if flop_ratio != 1.0:
            budget = replace(budget, compute_flops=budget.compute_flops / flop_ratio,
                             formula=f"{budget.formula} / {flop_ratio:.4f} (the planned model's "
                                     "real training FLOPs per 6ND, so the run fits the hours)")
    C = budget.compute_flops
    effect = fixed_budget_notes(budget, req.law or recommend_law(recommend), mfu, band)
    if effect:
        budget = replace(budget, mfu_band_effect=effect[0])
    allocations = tuple(laws.all_allocations(C)) + tuple(extra_allocations)
    if calibration is not None:
        allocations += (calibration.allocation(C),)
        recommend = recommend or calibrated_recommendation(calibration, C)
    law, reason = recommend or (laws.RECOMMENDED_LAW, laws.RECOMMENDED_REASON)
    chosen_id = req.law or law
    if chosen_id not in {a.law for a in allocations}:
        raise BudgetError(f"unknown law {chosen_id!r}; choose one of "
                          f"{', '.join(a.law for a in allocations)}")
    chosen = next(a for a in allocations if a.law == chosen_id)
    setup_notes: list[str] = []
    if chosen_id == "calibrated" and calibration is not None and not fixed_n:
        req, setup_notes = sweep_setup(req, calibration)
    if fixed_n and fixed_shape:
        tokens = b.tokens if b.tokens is not None else C / (laws.FLOPS_PER_PARAM_TOKEN * fixed_n)
        shape, source = fixed_shape
        size, count = fixed_n, "total"
    else:
        tokens, size, count = chosen.tokens, chosen.params, chosen.params_count
        shape = families.shape_for_params(size, req.family, count=count, n_ctx=req.seq_len,
                                          vocab_size=req.vocab_size, **dict(req.block))
        source = f"{req.family} family shape for {chosen_id}'s N"
    counted = float(fixed_n) if req.model is not None and fixed_n else \
        float(families.count_of(shape, count))
    # model states: --params N exactly; a named model's own total (all experts of an MoE)
    memory = plan_memory(req, shape, gpu, params=fixed_n if req.model is None else None)
    per_token = shape.training_flops_per_token(req.seq_len, req.attention,
                                               recompute=memory.recompute == "full")
    # --- interval hook (budget.training.interval): price tier, goodput, P10/P50/P90 ---
    from budget.training import interval as interval_model

    rel = req.reliability or interval_model.Reliability()
    tier = interval_model.tier_row(catalog.prices_for(gpu.id), gpu.id, rel, req.price_per_hour)
    cost = costing.estimate_cost(per_token * tokens, gpu, precision=req.precision, mfu=mfu,
                                 num_gpus=req.num_gpus, mfu_band=band,
                                 price_per_hour=tier.usd_per_hour if tier else req.price_per_hour)
    cost = replace(cost, price_source=tier.label()) if tier else cost
    run_interval = None if probe else interval_model.plan_interval(
        cost, allocations, counted, catalog.prices_for(gpu.id), rel, req.price_per_hour,
        fixed=bool(fixed_n))
    # --- end interval hook ---
    fixed = _fixed_report(req, shape, fixed_n, tokens, not only_n, C, chosen, gpu, mfu,
                          per_token) if fixed_n else None
    from budget.training.cluster_plan import ClusterRequest, plan_cluster

    cluster = req.cluster or ClusterRequest(num_gpus=req.num_gpus, recompute=(
        req.recompute if req.recompute in ("none", "selective", "full") else "auto"))
    if cluster.goodput is None and run_interval is not None:  # interval hook: modelled goodput
        cluster = replace(cluster, goodput=run_interval.goodput.goodput,
                          goodput_source=run_interval.goodput_source())
    parallel = None
    if budget.given_as != "forward-flops" and not probe:  # a CNN budget gets no transformer layout
        hyper = laws.deepseek_hyperparameters(C, req.seq_len)
        parallel = plan_cluster(shape, gpu, cluster, seq_len=req.seq_len, tokens=tokens,
                                useful_batch=hyper.batch_sequences, precision=req.precision,
                                optimizer=req.optimizer, assumed_mfu=mfu)
    reference = catalog.get(REFERENCE_GPU)
    return Plan(
        compute_flops=C, compute_pf_days=C / laws.PF_DAY_FLOPS,
        h100_hours=costing.gpu_hours_for(C, reference.peak_flops("bf16"), mfu),
        budget=budget, gpu=gpu_summary(gpu, req.gpu, req.precision), precision=req.precision,
        mfu=mfu, mfu_source=mfu_source, allocations=allocations, recommended=law,
        recommended_reason=reason, cost=cost, memory=memory, shape=shape,
        shape_params=float(counted), shape_params_count=count,
        shape_error=counted / size - 1.0,
        hyperparameters=laws.deepseek_hyperparameters(C, req.seq_len),
        notes=tuple(setup_notes + _notes(req, budget, memory, counted / size - 1.0, calibration, C)
                    + _flop_notes(req, memory, per_token * tokens / C, fixed_n, shape)),
        calibration=None if calibration is None else calibration.to_dict(C),
        tokens=tokens, training_flops_per_token=per_token, training_flops=per_token * tokens,
        attention_convention=req.attention, fixed=fixed, shape_source=source,
        energy=energy_model.run_energy(cost.gpu_hours, gpu, power_fraction=req.power_fraction,
                                       pue=req.pue, grid_gco2_per_kwh=req.grid_gco2_per_kwh),
        beyond=None if probe else plan_beyond(req, budget, allocations, chosen_id, cost,
                                              calibration),
        parallel=parallel, shape_law=chosen_id, interval=run_interval)


def sweep_setup(req: PlanRequest, calibration: Calibration) -> tuple[PlanRequest, list[str]]:
    """A calibrated shape in the sweep's own vocabulary and context: the law's N counts that
    vocabulary's embeddings and was fitted at that context (--vocab / --seq-len keep theirs)."""
    u = calibration.units
    if u is None:
        return req, []
    changes: dict[str, Any] = {}
    if req.vocab_size is None and u.vocab_size:
        changes["vocab_size"] = u.vocab_size
    if not req.seq_len_given and u.n_ctx:
        changes["seq_len"] = u.n_ctx
    if not changes:
        return req, []
    said = " and ".join(f"{'vocabulary' if k == 'vocab_size' else 'context'} {v:,}"
                        for k, v in changes.items())
    return replace(req, **changes), [
        f"shape: the sweep's own {said} (the calibrated N counts its embeddings and its loss is "
        f"{u.loss_unit}); --vocab / --seq-len set your own"]


def recommend_law(recommend: tuple[str, str] | None) -> str:
    """The published law the plan sizes with when --law is not given (the band note's law)."""
    return recommend[0] if recommend else laws.RECOMMENDED_LAW


def fixed_budget_notes(budget: ResolvedBudget, law: str, mfu: float,
                       band: tuple[float, float]) -> list[str]:
    """A budget fixed in dollars, GPU-hours or days: the MFU band moves C, N, D and loss, not the
    dollars (C = hours x peak x MFU scales with MFU)."""
    if budget.given_as not in ("usd", "gpu-hours"):
        return []
    ends = []
    for m in band:
        c = budget.compute_flops * m / mfu
        try:
            a = next(x for x in laws.all_allocations(c) if x.law == law)
        except (BudgetError, StopIteration):
            return []
        ends.append((c, a))
    (c0, a0), (c1, a1) = ends
    loss = "" if a0.loss is None or a1.loss is None else f", loss {a0.loss:.3f}-{a1.loss:.3f}"
    return [f"the budget is fixed ({budget.given_as}): over the MFU band {band[0]:.0%}-{band[1]:.0%} "
            f"the same money or hours buy C = {c0:.2e}-{c1:.2e} FLOPs, so under '{law}' N = "
            f"{a0.params:.3g}-{a1.params:.3g}, D = {a0.tokens:.3g}-{a1.tokens:.3g}{loss}; the dollar "
            "and hour ranges shown are for the one C at the assumed MFU"]


def calibrated_recommendation(calibration: Calibration, compute_flops: float) -> tuple[str, str] | None:
    """Recommend the team's own law unless the budget is more than 1,000x beyond its evidence."""
    decades = calibration.extrapolation_decades(compute_flops)
    if decades > VERY_LONG_EXTRAPOLATION_DECADES:
        return None
    return ("calibrated", f"calibrated: fitted to your own sweep ({calibration.source}); the budget is "
                          f"{decades:.1f} orders of magnitude from the largest swept budget")


def plan_memory(req: PlanRequest, shape: ModelShape | Architecture, gpu: Accelerator,
                params: float | None = None) -> MemoryBreakdown:
    """Memory at the request's settings; recompute 'auto' is selective, or full when selective
    activations leave no GPU count that fits. `params` (a fixed N) sizes the model states."""
    def at(recompute: str) -> MemoryBreakdown:
        return training_memory(shape, micro_batch=req.micro_batch, seq_len=req.seq_len,
                               precision=req.precision, optimizer=req.optimizer,
                               recompute=recompute, zero_stage=req.zero_stage,
                               num_gpus=req.num_gpus, gpu_memory_bytes=gpu.memory_bytes,
                               gpu=gpu.id, params=params)
    if req.recompute != "auto":
        return at(req.recompute)
    memory = at("selective")
    return memory if memory.min_gpus is not None else at("full")


def compute_range_warning(compute_flops: float) -> str:
    """A warning for a budget far outside the range the laws were fitted on, else ''."""
    low, high = SANE_COMPUTE_FLOPS
    if low <= compute_flops <= high:
        return ""
    side = "below" if compute_flops < low else "above"
    return (f"the budget {compute_flops:.3g} FLOPs is far {side} the range the laws were fitted on "
            f"(6e18-3e21 FLOPs; sane planning range {low:.0e}-{high:.0e}): the allocations are "
            f"extrapolations, not predictions")
def _fixed_params(req: PlanRequest) -> float | None:
    """The N a plan keeps: the model's (active per token for MoE) or --params; None otherwise."""
    if req.model is None:
        return req.budget.params
    if req.budget.params is not None:
        raise BudgetError("a named model fixes N; give --tokens (or another budget), not --params")
    return float(req.model.params_active())


def _fixed_shape(req: PlanRequest, n: float) -> tuple[Architecture, str]:
    """The fixed model itself, or a family shape for N (it sizes only the activations)."""
    if req.model is not None:
        return req.model, req.model_source or req.model.name
    shape = families.shape_for_params(n, req.family, count="total", n_ctx=req.seq_len,
                                      vocab_size=req.vocab_size, **dict(req.block))
    return shape, (f"{req.family} family shape for N = {n:g}: it sizes the activations and the "
                   f"FLOPs per token; model states use N exactly")


def _law_params(law: str, n_total: float, shape: Architecture, named: bool) -> float:
    """N as `law` counts it: total, or non-embedding (Kaplan) from the model or the shape."""
    if fixed_plan.LAW_COUNTS.get(law, "total") == "total":
        return n_total
    return float(shape.params_non_embedding(active=True)) if named else \
        n_total - shape.embedding_params()


def _optimal_d_budget(law: str, n: float, shape: Architecture, named: bool) -> ResolvedBudget:
    """C = 6 N D with D the law's compute-optimal tokens for this N."""
    tokens = fixed_plan.optimal_tokens(law, _law_params(law, n, shape, named))
    return ResolvedBudget(laws.check_compute(6.0 * n * tokens), "params",
                          f"C = 6 N D with N = {n:g} and D = {tokens:.4g}, {law}'s "
                          f"compute-optimal D for this N")


def _fixed_report(req: PlanRequest, shape: Architecture, n: float, tokens: float,
                  tokens_given: bool, C: float, chosen: laws.Allocation, gpu: Accelerator,
                  mfu: float, per_token: float) -> fixed_plan.FixedModel:
    named = req.model is not None
    n_ne = _law_params("kaplan", n, shape, named)
    options: list[fixed_plan.OptimalTokens] = []
    if not tokens_given:
        price = costing.resolve_price(gpu, req.price_per_hour)[0]
        for law in laws.LAW_IDS:
            d = fixed_plan.optimal_tokens(law, _law_params(law, n, shape, named))
            real = per_token * d
            hours = costing.gpu_hours_for(real, gpu.peak_flops(req.precision), mfu)
            options.append(fixed_plan.OptimalTokens(law, d, 6.0 * n * d, real, hours,
                                                    None if price is None else hours * price))
    note = ("the laws are fitted on dense models; this MoE is read with its active parameters"
            if shape.is_moe else "")
    return fixed_plan.FixedModel(
        name=shape.name if named else f"N = {n:g}", params=n, params_non_embedding=n_ne, tokens=tokens,
        tokens_given=tokens_given, compute_flops=C,
        readings=fixed_plan.readings(n, n_ne, tokens, C), alternative=chosen,
        optimal_tokens=tuple(options), note=note)


def _flop_notes(req: PlanRequest, memory: MemoryBreakdown, ratio: float, fixed_n: float | None,
                shape: Architecture) -> list[str]:
    full = memory.recompute == "full"
    notes = [(f"GPU-hours and wall clock use the model's real training FLOPs, {ratio:.3f}x C = "
              f"6ND: {'4x (full recomputation)' if full else '3x'} forward with attention "
              f"({req.attention}, T = {req.seq_len:,}) and logits")]
    if full:
        notes.append("with full recomputation the extra forward is counted as work, so --mfu is "
                     "read as hardware FLOPs utilisation (HFU; PaLM's MFU leaves it out, "
                     "Chowdhery et al. 2022 App. B)")
    if (req.budget.gpu_hours is not None or req.budget.budget_usd is not None) and fixed_n:
        notes.append(f"the budget became C by 6ND; this model's real FLOPs are {ratio:.3f}x C, so "
                     f"the run needs {ratio:.3f}x the hours given (or {1 / ratio:.0%} of D)")
    return notes


def _notes(req: PlanRequest, budget: ResolvedBudget, memory: MemoryBreakdown,
           shape_error: float, calibration: Calibration | None, C: float) -> list[str]:
    notes = []
    warning = compute_range_warning(C)
    if warning:
        import warnings

        from budget.errors import BudgetWarning

        warnings.warn(warning, BudgetWarning, stacklevel=3)
        notes.append(f"WARNING: {warning}")
    if calibration is not None:
        if hasattr(calibration, "used"):  # a fit without Approach 3 (budget.scaling.calibrated_frontier)
            notes.append(calibration.used())
        decades = calibration.extrapolation_decades(C)
        notes.append(calibration.warning(C) or f"the budget is {decades:.1f} orders of magnitude "
                     f"from the largest swept budget ({calibration.max_budget_flops:.2e} FLOPs)")
        if decades > VERY_LONG_EXTRAPOLATION_DECADES:
            notes.append("the calibrated law is shown but not recommended: more than 3 orders of "
                         "magnitude of extrapolation; sweep larger budgets to trust it")
    low, high = req.mfu_band
    if not req.mfu_from_catalog and not low <= req.mfu <= high:
        notes.append(f"--mfu {req.mfu:g} lies outside --mfu-band {low:g}-{high:g}: the ranges do "
                     "not bracket the point estimate")
    if req.law:
        notes.append(f"shape and memory sized for law '{req.law}' as asked (--law)")
    if req.precision == "fp8":
        notes.append("MFU here is against the FP8 dense peak (twice BF16's): reported FP8 runs reach "
                     "about 20% (Llama 4) to 45% (NeMo GPT-3 175B) of it, so check --mfu")
    if budget.given_as == "forward-flops":
        notes.append("the scaling laws are for dense decoder-only language models; for a CNN "
                     "use 'budget scale' and read the law rows as a language-model reference only")
    if abs(shape_error) > 0.02:
        notes.append(f"no {req.family}-family shape with d_model a multiple of 64 and this "
                     f"vocabulary comes within 2% of N (closest {shape_error:+.1%}): embeddings "
                     "dominate at this size")
    if req.recompute == "auto" and memory.recompute == "full":
        notes.append("with ZeRO data parallelism alone selective recomputation does not fit at any GPU "
                     "count, so the memory block assumes full activation recomputation (one extra "
                     "forward pass: 4x instead of 3x forward); the layout section splits the model "
                     "with tp/pp instead")
    if memory.min_gpus is None:
        notes.append(memory.min_gpus_note)
    elif memory.min_gpus > req.num_gpus:
        notes.append(f"does not fit on {req.num_gpus} GPU(s): needs at least {memory.min_gpus} "
                     f"with ZeRO-{req.zero_stage}")
    notes.append("losses are nats/token on each law's own data (MassiveText, WebText2): compare "
                 "them within a law, not across laws or with your data")
    return notes


def target_loss_budget(req: PlanRequest) -> ResolvedBudget | None:
    """With --target-loss and no other budget: C = the compute-optimal C reaching that loss."""
    if req.target_loss is None or any(v is not None for v in asdict(req.budget).values()):
        return None
    from budget.scaling import beyond

    law = req.law or laws.RECOMMENDED_LAW
    C = beyond.budget_for_target_loss(req.target_loss, law)
    return ResolvedBudget(C, "target-loss", f"C = 6 N D of the compute-optimal model reaching "
                                            f"loss {req.target_loss:g} under {law}")


def plan_beyond(req: PlanRequest, budget: ResolvedBudget, allocations: Sequence[laws.Allocation],
                chosen: str, cost: costing.CostEstimate,
                calibration: Calibration | None = None) -> BeyondPlan | None:
    """The beyond-compute-optimal part, FLOPs priced at the plan's GPU, peak, MFU and $/hour;
    a calibrated fit joins the parametric laws."""
    params_tokens = (req.budget.params, req.budget.tokens) \
        if req.budget.params is not None and req.budget.tokens is not None else None
    if all(x is None for x in (req.inference_tokens, req.target_loss, req.unique_tokens,
                               params_tokens)):
        return None
    from budget.scaling import beyond

    price = cost.price_usd_per_hour
    usd_per_flop = None if price is None else \
        price / (costing.SECONDS_PER_HOUR * cost.peak_flops * cost.mfu)
    pricing = (f"{cost.gpu} {cost.precision} peak {cost.peak_flops / 1e12:g} TFLOP/s x MFU "
               f"{cost.mfu:g}" + ("" if price is None else f" at ${price:.2f}/GPU-hour"))
    return beyond.beyond_plan(
        compute_flops=budget.compute_flops, allocations=allocations, chosen_law=chosen,
        inference_tokens=req.inference_tokens, target_loss=req.target_loss,
        unique_tokens=req.unique_tokens, params_tokens=params_tokens, seq_len=req.seq_len,
        usd_per_flop=usd_per_flop, pricing=pricing,
        extra_laws=None if calibration is None else {"calibrated": calibration.law})
