"""The options of `budget plan` declared once: name, flag, help, choices and default.

Each `OptionSpec` names a `PlanRequest` field (or a `BudgetInput` budget form); its default is
that field's default unless the spec says otherwise, so a default lives in one place (the request
dataclass) and the click options (`budget.cli.plan.budget_options`, `plan_training_options`) and
the Python API (`budget.plan`) are generated from this table. `plan_request_from_options` (as
`PlanRequest.from_options`) is the one place a dict of options becomes a request: the command and
the API both call it.

Adding a plan option: add the `PlanRequest` field with its default, add one `OptionSpec` here
(in `BUDGET_OPTIONS` when `budget report` takes it too, else `TRAINING_OPTIONS`), and read it in
the planner; the command and the API get it from the table.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from budget.errors import BudgetError
from budget.hardware.catalog import PRECISIONS
from budget.models.families import DEFAULT_N_CTX
from budget.scaling.laws import LAW_IDS
from budget.training.time import DEFAULT_MFU

FROM_REQUEST: Any = object()  # the spec's default is the PlanRequest field's default
BUDGET_FORMS = ("flops", "pf_days", "gpu_hours", "budget_usd", "params", "tokens", "forward_flops",
                "samples", "epochs")


@dataclass(frozen=True)
class OptionSpec:
    """One option: `kind` is positive, positive_int, float, text, choice, band, path, range (a
    float in [low, high]) or int_range."""

    name: str  # the keyword: a PlanRequest field or a budget form
    flag: str
    help: str
    kind: str = "positive"
    default: Any = None
    choices: tuple[str, ...] = ()
    low: float | None = None  # kind "range": the closed interval
    high: float | None = None
    multiple: bool = False
    metavar: str | None = None

    def default_value(self) -> Any:
        """The default: the spec's own, or the PlanRequest field's (declared there once)."""
        if self.default is not FROM_REQUEST:
            return self.default
        from budget.planner import PlanRequest

        field = next(f for f in fields(PlanRequest) if f.name == self.name)
        if field.default is MISSING:
            raise TypeError(f"PlanRequest.{self.name} has no default")
        return field.default

    def shown_default(self) -> Any:
        """The default as a person types it on the command line (a band as LOW,HIGH)."""
        value = self.default_value()
        if self.kind == "band" and value is not None:
            return f"{value[0]:.2f},{value[1]:.2f}"
        return value


BUDGET_OPTIONS = (
    OptionSpec("flops", "--flops", "Training compute C in FLOPs, e.g. 1e21."),
    OptionSpec("pf_days", "--pf-days", "Compute in PF-days (1 PF-day = 8.64e19 FLOPs)."),
    OptionSpec("gpu_hours", "--gpu-hours", "Accelerator-hours of --gpu (at --mfu)."),
    OptionSpec("budget_usd", "--budget-usd", "Dollars on --gpu at its catalog price (or --price-per-hour)."),
    OptionSpec("params", "--params", "Model parameters N (with --tokens: C = 6ND)."),
    OptionSpec("tokens", "--tokens", "Training tokens D (with --params)."),
    OptionSpec("forward_flops", "--forward-flops", "Forward FLOPs per sample of any network (C = 3 F S E)."),
    OptionSpec("samples", "--samples", "Samples per epoch (with --forward-flops)."),
    OptionSpec("epochs", "--epochs", "Epochs (with --forward-flops)."),
    OptionSpec("gpu", "--gpu", "Accelerator id or alias ('budget gpus' lists them).", "accelerator",
               FROM_REQUEST),
    OptionSpec("precision", "--precision", "Training precision: picks the dense peak.", "choice",
               FROM_REQUEST, choices=PRECISIONS),
    OptionSpec("mfu", "--mfu", "Model FLOPs utilisation in (0, 1]; default: the GPU's published training "
               f"MFU where the catalog has one, else {DEFAULT_MFU:.2f} (the plan guide lists sources).",
               "fraction"),
    OptionSpec("mfu_band", "--mfu-band", "LOW,HIGH MFU range for the GPU-hours and cost ranges.", "band",
               FROM_REQUEST),
    OptionSpec("num_gpus", "--num-gpus", "GPUs running in parallel (wall clock = GPU-hours / this).",
               "positive_int", FROM_REQUEST),
    OptionSpec("price_per_hour", "--price-per-hour", "Override the catalog $/GPU-hour."),
    OptionSpec("pue", "--pue", "Datacenter PUE for the energy line (Patterson et al. 2021 Table 4).",
               "pue", FROM_REQUEST),
    OptionSpec("power_fraction", "--power-fraction",
               "Average board power / TDP (default: measured where known, else 1).", "power_fraction"),
    OptionSpec("grid_gco2_per_kwh", "--grid-gco2-per-kwh", "Grid carbon intensity: adds tCO2e to the "
               "energy line.", "range", low=0, high=2000),
    OptionSpec("catalog_paths", "--catalog", "Extra catalog TOML adding or overriding accelerators "
               "(repeatable; also BUDGET_CATALOG).", "path", (), multiple=True),
)

TRAINING_OPTIONS = (
    OptionSpec("law", "--law", "Size the shape and memory with this law instead of the recommended one "
               "(with --model or --params and no --tokens: the law whose optimal D is used).", "choice",
               choices=LAW_IDS),
    OptionSpec("seq_len", "--seq-len", "Training sequence length: attention FLOPs, activations, the "
               "proposed shape's context [default: a named model's training length, else "
               f"{DEFAULT_N_CTX}].", "positive_int"),
    OptionSpec("vocab_size", "--vocab", "Vocabulary size of the proposed shape [default: the family's].",
               "positive_int"),
    OptionSpec("micro_batch", "--micro-batch", "Sequences per GPU per step, for activation memory.",
               "positive_int", FROM_REQUEST),
    OptionSpec("zero_stage", "--zero", "ZeRO stage for the memory estimate and the fewest-GPUs answer.",
               "int_range", FROM_REQUEST, low=0, high=3),
    OptionSpec("recompute", "--recompute", "Activation recomputation; auto = selective, or full when "
               "selective cannot fit.", "choice", FROM_REQUEST, choices=("auto", "none", "selective", "full")),
    OptionSpec("optimizer", "--optimizer", "Optimizer whose state the memory counts.", "choice", FROM_REQUEST,
               choices=("adam", "momentum", "sgd")),
    OptionSpec("finetune", "--finetune", "Price fine-tuning a given model (--model/--params with --tokens): "
               "full, LoRA or QLoRA FLOPs per token (no weight gradients for frozen weights) and memory.",
               "choice", FROM_REQUEST, choices=("full", "lora", "qlora")),
    OptionSpec("finetune_rank", "--rank", "LoRA rank with --finetune lora|qlora.", "positive_int",
               FROM_REQUEST),
)


def parse_band(text: str | tuple[float, float] | list[float]) -> tuple[float, float]:
    """'0.3,0.5' (or a pair) -> (0.3, 0.5); BudgetError otherwise."""
    if not isinstance(text, str):
        low, high = (float(x) for x in text)
    else:
        try:
            low, high = (float(x) for x in text.split(","))
        except ValueError:
            raise BudgetError(f"--mfu-band {text!r} must be LOW,HIGH, e.g. 0.30,0.50") from None
    if not 0 < low < high <= 1:
        raise BudgetError(f"--mfu-band {text!r} must be 0 < LOW < HIGH <= 1, e.g. 0.30,0.50")
    return low, high


def plan_request_from_options(options: dict[str, Any]) -> Any:
    """The PlanRequest for a dict of plan options (the command's keyword arguments or the API's):
    one budget form, the table's options (absent ones take their defaults), the model options of
    budget.models.choice (model=, config=, family=, n_layer=, ...), cluster= and the beyond
    options. `options` is consumed; what is left is passed to PlanRequest as is."""
    from budget.models.choice import ALL_OPTIONS, BLOCK_OPTIONS, resolve_model
    from budget.planner import BudgetInput, PlanRequest

    budget = BudgetInput(**{k: options.pop(k, None) for k in BUDGET_FORMS})
    opts = {k: options.pop(k) for k in ALL_OPTIONS if k in options}
    kw = {k: v for k, v in options.items() if v is not None or k not in _SPEC_NAMES}
    if "mfu_band" in kw:
        kw["mfu_band"] = parse_band(kw["mfu_band"])
    kw["catalog_paths"] = tuple(kw.get("catalog_paths") or ())
    if kw.get("mfu") is None:
        kw.pop("mfu", None)
        kw.setdefault("mfu_from_catalog", True)  # the GPU's published MFU, else DEFAULT_MFU
    kw.setdefault("seq_len_given", kw.get("seq_len") is not None)
    choice = resolve_model({**opts, "vocab": kw.get("vocab_size")}, seq_len=kw.get("seq_len"))
    if choice is not None:
        source = f"{choice.source}; {choice.note}" if choice.note else choice.source
        kw.update(model=choice.arch, model_source=source, seq_len=choice.seq_len)
    else:
        kw["block"] = tuple((k, opts[k]) for k in BLOCK_OPTIONS if opts.get(k) is not None)
        if kw.get("seq_len") is None:
            kw.pop("seq_len", None)  # the request's default context
    for key in ("family", "attention"):
        if opts.get(key):
            kw[key] = opts[key]
    return PlanRequest(budget=budget, **kw)


_SPEC_NAMES = frozenset(s.name for s in BUDGET_OPTIONS + TRAINING_OPTIONS)
