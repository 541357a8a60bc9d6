"""`budget plan`: compute budget -> N, D per scaling law, GPU-hours, wall clock, dollars, memory, shape."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import click

from budget.cli.arch_options import architecture_options_without_vocab
from budget.cli.beyond import beyond_options, render_beyond
from budget.cli.common import (
    ACCELERATOR,
    FINITE,
    FRACTION,
    POSITIVE,
    POSITIVE_INT,
    POWER_FRACTION,
    PUE,
    Number,
    json_option,
    number_pair,
)
from budget.cli.common import emit as show
from budget.cli.interval_options import interval_options, pop_reliability, render_interval
from budget.cli.layout_options import cluster_request, layout_options, render_cluster
from budget.plan_options import BUDGET_OPTIONS, TRAINING_OPTIONS, OptionSpec


class MfuBand(click.ParamType):
    """LOW,HIGH fractions in (0, 1] with LOW < HIGH (budget.cli.common.number_pair)."""

    name = "LOW,HIGH"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            return number_pair(value, "--mfu-band")
        except click.UsageError as exc:
            self.fail(exc.message.removeprefix("--mfu-band "), param, ctx)


MFU_BAND = MfuBand()


def click_option(spec: OptionSpec) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click option for one row of budget.plan_options (its flag, help, choices, default)."""
    types: dict[str, Any] = {"positive": POSITIVE, "positive_int": POSITIVE_INT, "float": FINITE,
                             "text": str, "band": MFU_BAND, "path": click.Path(dir_okay=False),
                             "accelerator": ACCELERATOR, "fraction": FRACTION, "pue": PUE,
                             "power_fraction": POWER_FRACTION}
    if spec.kind == "choice":
        kind: Any = click.Choice(spec.choices)
    elif spec.kind == "int_range":
        kind = click.IntRange(None if spec.low is None else int(spec.low),
                              None if spec.high is None else int(spec.high))
    elif spec.kind == "range":
        kind = Number(positive=False, low=spec.low, high=spec.high)
    else:
        kind = types[spec.kind]
    default = spec.shown_default()
    return click.option(spec.flag, spec.name, type=kind, default=default, multiple=spec.multiple,
                        show_default=default not in (None, ()), help=spec.help, metavar=spec.metavar)


def options_from(specs: tuple[OptionSpec, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding the click options of `specs`, in the table's order."""
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for spec in reversed(specs):
            func = click_option(spec)(func)
        return func
    return decorate


def budget_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The budget forms and hardware (the option table), then the failure, checkpoint and price
    options of the interval (budget.cli.interval_options); shared with report."""
    return options_from(BUDGET_OPTIONS)(interval_options(func))


training_options = options_from(TRAINING_OPTIONS)


def build_request(kw: dict[str, Any]) -> Any:
    """The PlanRequest for the command's remaining keyword arguments (a bad --mfu-band is a
    usage error naming the option)."""
    from budget.errors import BudgetError
    from budget.planner import PlanRequest

    kw["reliability"] = pop_reliability(kw)
    try:
        return PlanRequest.from_options(kw)
    except BudgetError as exc:
        if str(exc).startswith("--mfu-band"):
            raise click.BadParameter(str(exc).split(" ", 2)[2], param_hint="'--mfu-band'") from None
        raise


def calibrate_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--calibrate EXP|FILE and --tracking-uri, shared by plan and report."""
    func = click.option("--tracking-uri", default=None,
                        help="MLflow store of --calibrate EXP (default: MLFLOW_TRACKING_URI or "
                             "sqlite:///mlflow.db).")(func)
    return click.option("--calibrate", metavar="EXP|FILE", default=None,
                        help="Add your own fitted law ('calibrated'): an MLflow experiment fitted "
                             "with 'budget fit --experiment', or a saved 'budget fit --json' file.")(func)


@click.command(name="plan")
@budget_options
@architecture_options_without_vocab
@training_options
@layout_options
@calibrate_options
@beyond_options
@click.option("--emit", nargs=2, type=(click.Choice(("torchtitan", "megatron", "deepspeed")),
                                       click.Path(dir_okay=False)),
              metavar="TRAINER FILE", default=None,
              help="Also write the chosen model and layout as that trainer's config: torchtitan "
                   "(TOML job config), megatron (Megatron-LM arguments), deepspeed (JSON).")
@json_option
def command(as_json: bool, calibrate: str | None, tracking_uri: str | None,
            emit: tuple[str, str] | None, **kw: Any) -> None:
    """Plan a training run from a compute budget under each published scaling law.

    Prints C (also in PF-days and H100-hours), the compute-optimal parameters N and tokens D
    under Chinchilla, Epoch AI's refit, Kaplan and the 20 tokens/parameter rule, the recommended
    law, GPU-hours over an MFU band, wall clock, dollars, training memory with the fewest GPUs it
    fits on, a transformer shape, and DeepSeek LLM batch size and learning rate.

    Example: budget plan --flops 1e21 --gpu h100
    """
    from budget.wiring import calibrated_plan

    apply_trainer_config(kw)
    cluster = cluster_request(kw)  # pops the layout options, then the rest is the plan request
    plan = calibrated_plan(replace(build_request(kw), cluster=cluster), calibrate, tracking_uri)
    show(plan, as_json, render_plan)
    if emit is not None:
        from budget.emit.write import notes, write

        trainer, path = emit
        write(plan.to_dict(), trainer, path)
        for line in [*notes(plan.to_dict(), trainer), f"wrote {trainer} config {path}"]:
            click.echo(line, err=True)


def apply_trainer_config(kw: dict[str, Any]) -> None:
    """`--config` naming a torchtitan TOML or a Megatron-LM argument file: its model, shape,
    layout and sequence length fill the options not given on the command line."""
    if not kw.get("config"):
        return  # budget.emit (and its dataclasses) is imported only when a file is given
    from budget.emit.read import is_trainer_config, read_trainer_config

    if not is_trainer_config(kw["config"]):
        return
    stated = read_trainer_config(kw.pop("config"))
    kw["config"] = None
    if stated.model and not kw.get("model"):
        kw["model"] = stated.model
    for key, value in stated.shape.items():
        key = "vocab_size" if key == "vocab" else key
        if kw.get(key) is None:
            kw[key] = value
    if stated.layout and kw.get("layout") is None:
        kw["layout"] = stated.layout
    if stated.seq_len and kw.get("seq_len") is None:
        kw["seq_len"] = stated.seq_len


def wrap(text: str, first: str, rest: str, width: int = 100) -> str:
    """A long sentence as indented lines of at most `width` characters."""
    import textwrap

    return textwrap.fill(text, width, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False)


def render_calibration(plan: Any) -> list[str]:
    """The calibrated law's intervals, its distance from the evidence, and the side-by-side table."""
    from budget.render import human, table

    at, mine = plan.calibration, plan.allocation("calibrated")
    cal = at.calibration
    lines = ["", f"Calibrated law: {cal.source} ({cal.n_runs} runs, budgets "
                 f"{min(cal.budgets_flops):.1e}-{cal.max_budget_flops:.1e} FLOPs)"]
    if mine.params_ci and mine.tokens_ci and mine.loss_ci:
        pct = f"{mine.interval_level:.0%}"
        lines.append(f"  N {human(mine.params)} ({pct}: {human(mine.params_ci[0])}-{human(mine.params_ci[1])}), "
                     f"D {human(mine.tokens)} ({human(mine.tokens_ci[0])}-{human(mine.tokens_ci[1])}), "
                     f"loss {mine.loss:.3f} ({mine.loss_ci[0]:.3f}-{mine.loss_ci[1]:.3f}) "
                     f"{mine.loss_unit} over {len(cal.draws)} bootstrap refits")
    else:
        lines.append("  no bootstrap draws in the fit: no intervals (fit with --bootstrap N)")
    lines.append(f"  extrapolation: {at.extrapolation_decades:.1f} orders of magnitude beyond "
                 f"the largest swept budget")
    if at.warning:
        lines.append(wrap(f"WARNING: {at.warning}", "  ", "    "))
    rows = [[r["law"], f"{r['a']:.3f}", f"{r['b']:.3f}", human(r["params"]),
             "-" if r["params_ratio"] is None else f"{r['params_ratio']:.3g}"]
            for r in at.comparison()]
    lines += ["  Your fit against the literature (N_opt ~ C^a, D_opt ~ C^b; ratio = your N_opt / theirs):",
              table(["law", "a", "b", "N_opt", "ratio"], rows, indent="    ")]
    return lines


def unit_lines(plan: Any) -> list[str]:
    """Which loss is in which unit, when the table mixes them."""
    from budget.render import loss_units_line
    from budget.scaling.laws import own_unit_losses

    return [loss_units_line(plan)] if own_unit_losses(plan.allocations) else []


def energy_lines(plan: Any) -> list[str]:
    """The plan's energy line (budget.hardware.energy.run_energy), or why there is none."""
    e = getattr(plan, "energy", None)
    if e is None:
        return ["  energy        - (no TDP for this accelerator in the catalog)"]
    co2 = "" if e.tco2e is None else f" = {e.tco2e:,.1f} tCO2e at {e.grid_gco2_per_kwh:g} g/kWh"
    amount = f"{e.mwh:,.1f} MWh" if e.mwh >= 10 else f"{e.kwh:,.0f} kWh"
    return [f"  energy        {amount}{co2} (GPU-hours x {e.avg_power_w:,.0f} W = TDP x "
            f"{e.power_fraction:.3g}, x PUE {e.pue:g}; Patterson et al. 2021 §2.5)"]


def law_legend(plan: Any) -> str:
    """Which reading each row is, from the law registry (e.g. chinchilla rounded vs unrounded)."""
    from budget.scaling.laws import LAWS

    return "laws: " + "; ".join(f"{a.law} = {LAWS[a.law].title}" for a in plan.allocations
                                if a.law in LAWS)


def render_plan(plan: Any) -> str:
    """The terminal report of a Plan."""
    from budget.render import gib, hours, human, loss_cell, money, sci, table

    g, c, m, s = plan.gpu, plan.cost, plan.memory, plan.shape
    lines = [f"Compute budget  C = {sci(plan.compute_flops)} FLOPs = {plan.compute_pf_days:,.3g} "
             f"PF-days = {hours(plan.h100_hours)} H100-hours of C at MFU {plan.mfu:.0%}",
             f"                ({plan.budget.formula})"]
    if plan.budget.mfu_band_effect:
        lines.append(wrap(plan.budget.mfu_band_effect, "                ", "                  "))
    if g.alias_note:
        lines.append(f"GPU             {g.alias_note}")
    lines.append(f"                {g.name}: {g.peak_flops / 1e12:,.1f} TFLOP/s dense "
                 f"{plan.precision}, {gib(g.memory_bytes)} ({g.memory_basis}); "
                 f"{m.usable_fraction:.0%} usable = {gib(g.memory_bytes * m.usable_fraction)}")
    lines.append(wrap(f"MFU {plan.mfu:.1%} ({plan.mfu_source})", "                ", "                  "))
    network = plan.budget.given_as == "forward-flops"  # a network by its FLOPs: no LM sections
    rows = []
    for a in plan.allocations:
        mark = " *" if a.law == plan.recommended else ""
        rows.append([a.law + mark, human(a.params) + ("" if a.params_count == "total" else " (non-emb)"),
                     human(a.tokens), f"{a.tokens_per_param:.1f}", loss_cell(a)])
    if not network:
        lines += ["", "Compute-optimal allocation (6ND = C)",
                  table(["law", "params N", "tokens D", "D/N", "loss"], rows),
                  wrap(law_legend(plan), "  ", "    "),
                  *[wrap(line, "  ", "    ") for line in unit_lines(plan)],
                  wrap(f"* recommended: {plan.recommended_reason}", "  ", "    ")]
    if plan.calibration:
        lines += render_calibration(plan)
    if plan.fixed:
        lines += render_fixed(plan)
    lo, hi = c.gpu_hours_range
    clo, chi = c.cost_usd_range if c.cost_usd is not None else (None, None)
    spread = "range"
    pct = plan.interval.percentiles if plan.interval is not None else None
    if pct is not None:  # one interval: the P10-P90 below, not the MFU band's ends
        spread = "P10-P90"
        lo, hi = pct["gpu_hours"]["p10"], pct["gpu_hours"]["p90"]
        if pct.get("usd"):
            clo, chi = pct["usd"]["p10"], pct["usd"]["p90"]
    lines += ["", f"Time and cost on {g.id} ({plan.precision}, MFU {plan.mfu:.0%}; "
                  f"band {c.mfu_band[0]:.0%}-{c.mfu_band[1]:.0%})",
              f"  FLOPs         {sci(plan.training_flops)} = 3 x forward x samples x epochs" if network else
              f"  FLOPs         {plan.training_flops_per_token:.4g} per token x D "
              f"{human(plan.tokens)} = {sci(plan.training_flops)} = {plan.ratio_to_6nd:.3f}x "
              f"6ND (attention {plan.attention_convention}, T = {m.seq_len:,}"
              f"{', full recomputation' if m.recompute == 'full' and plan.time_source == 'mfu' else ''})",
              f"  GPU-hours     {hours(c.gpu_hours)}  ({spread} {hours(lo)} - {hours(hi)})",
              f"  wall clock    {hours(c.wall_clock_hours)} h = {c.wall_clock_days:,.1f} days "
              f"on {c.num_gpus} GPU(s)"]
    if c.cost_usd is None:
        lines.append(f"  cost          - ({c.price_source}; give --price-per-hour)")
    else:
        lines.append(f"  cost          {money(c.cost_usd)}  ({spread} {money(clo)} - {money(chi)}) "
                     f"at ${c.price_usd_per_hour:.2f}/GPU-hour ({c.price_source})")
    lines += energy_lines(plan)
    lines += render_interval(plan)  # P10/P50/P90 (budget.training.interval)
    if network:
        lines += ["", "Notes"] + [wrap(f"- {n}", "  ", "    ") for n in plan.notes]
        return "\n".join(lines)
    if plan.finetune is not None:
        from budget.cli.memory import render_finetune

        lines += ["", "Fine-tuning memory, " + render_finetune(plan.finetune)]
    else:
        lines += memory_lines(plan)
    lines += ["", _shape_title(plan),
              wrap(f"{s.describe()} ({plan.shape_source})", "  ", "    "),
              "", f"Batch and learning rate (DeepSeek LLM eq. 1): "
                  f"{human(plan.hyperparameters.batch_tokens)} tokens "
                  f"(~{plan.hyperparameters.batch_sequences:,.0f} sequences), "
                  f"lr {plan.hyperparameters.learning_rate:.2e}"]
    lines += render_beyond(plan)
    if plan.parallel is not None:
        lines += render_cluster(plan.parallel, plan)
    lines += ["", "Notes"] + [wrap(f"- {n}", "  ", "    ") for n in plan.notes]
    return "\n".join(lines)


def memory_lines(plan: Any) -> list[str]:
    """The ZeRO memory block of a pre-training plan."""
    from budget.render import gib

    m = plan.memory
    return ["", f"Memory for the shape below ({m.precision}, {m.optimizer}, micro-batch "
                f"{m.micro_batch} x {m.seq_len} tokens, recompute {m.recompute}, ZeRO-{m.zero_stage} "
                f"over {m.num_gpus} GPU(s)), per GPU:",
            f"  params {gib(m.params_bytes)}, grads {gib(m.grads_bytes)}, optimizer "
            f"{gib(m.optimizer_bytes)}, activations {gib(m.activations_bytes)}: total "
            f"{gib(m.total_bytes)} of {gib(m.gpu_memory_bytes)}",
            f"  unsharded model states {gib(m.model_states_bytes_unsharded)} "
            f"({m.bytes_per_param:g} bytes/param); fewest GPUs: "
            f"{m.min_gpus if m.min_gpus is not None else 'none'} ({m.min_gpus_note})"]


def _shape_title(plan: Any) -> str:
    from budget.render import human

    if plan.fixed:
        exact = plan.shape.params_total() == plan.fixed.params or plan.shape.is_moe
        return (f"Model: {plan.shape.name}" if exact else
                f"Shape for N = {plan.fixed.params:,.0f} (it has {plan.shape.params_total():,}, "
                f"{plan.shape.params_total() / plan.fixed.params - 1:+.1%}; memory and C use N)")
    chosen = (plan.shape_law or plan.recommended) if plan.shape_params_count else ""
    return (f"Shape for {chosen} N ({plan.shape_params_count.replace('_', '-')} params "
            f"{human(plan.shape_params)}, {plan.shape_error:+.1%})")


def render_fixed(plan: Any) -> list[str]:
    """Your model's N and D read by each law, its compute-optimal alternative, or each law's D."""
    from budget.render import hours, human, money, sci, table

    f = plan.fixed
    how = "given" if f.tokens_given else f"{plan.budget.formula.split(', ')[-1]}"
    lines = ["", wrap(f"Your model: {f.name}, N = {f.params:,.0f}"
                      f"{' active' if plan.shape.is_moe else ''}, D = {human(f.tokens)} ({how}): "
                      f"{f.tokens_per_param:.1f} tokens per parameter", "", "  ")]
    def loss(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"
    rows = [[r.law, human(r.params) + ("" if r.params_count == "total" else " (non-emb)"),
             loss(r.loss), human(r.optimal_params), human(r.optimal_tokens), loss(r.optimal_loss),
             f"{r.overtraining:.2f}"] for r in f.readings]
    lines += ["  Each law at your (N, D) against its own compute-optimal (N*, D*) for the same C",
              table(["law", "N", "loss (N, D)", "N*", "D*", "loss (N*, D*)", "D/D*"], rows),
              wrap("D/D* > 1: over-trained (more tokens, smaller model than compute-optimal); "
                   "kaplan's loss is its eq. 1.5 L(N, D)", "  ", "    ")]
    a = f.alternative
    lines.append(wrap(f"Compute-optimal alternative ({a.law}) for the same C = {sci(a.compute_flops)}: "
                      f"N* = {human(a.params)}, D* = {human(a.tokens)} "
                      f"({a.tokens_per_param:.1f} tokens/param)", "  ", "    "))
    if f.optimal_tokens:
        rows = [[o.law, human(o.tokens), f"{o.tokens / f.params:.1f}", sci(o.compute_flops),
                 hours(o.gpu_hours), money(o.cost_usd)] for o in f.optimal_tokens]
        lines += [f"  Each law's compute-optimal D for this N (GPU-hours from the real FLOPs on "
                  f"{plan.gpu.id} at MFU {plan.mfu:.0%})",
                  table(["law", "D", "D/N", "C = 6ND", "GPU-hours", "cost"], rows)]
    if f.note:
        lines.append(f"  note: {f.note}")
    return lines
