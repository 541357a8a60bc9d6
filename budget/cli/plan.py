"""`budget plan`: compute budget -> N, D per scaling law, GPU-hours, wall clock, dollars, memory, shape."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import click

from budget.cli.arch_options import architecture_options_without_vocab
from budget.cli.beyond import beyond_options, render_beyond
from budget.cli.common import POSITIVE, POSITIVE_INT, emit, json_option
from budget.cli.interval_options import interval_options, pop_reliability, render_interval
from budget.cli.layout_options import cluster_request, layout_options, render_cluster
from budget.hardware.catalog import PRECISIONS
from budget.hardware.energy import DEFAULT_PUE
from budget.scaling.laws import LAW_IDS
from budget.training.time import DEFAULT_MFU, DEFAULT_MFU_BAND


def budget_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The budget forms (exactly one) and the hardware assumptions shared by plan and report."""
    options = [
        click.option("--flops", type=POSITIVE, help="Training compute C in FLOPs, e.g. 1e21."),
        click.option("--pf-days", type=POSITIVE, help="Compute in PF-days (1 PF-day = 8.64e19 FLOPs)."),
        click.option("--gpu-hours", type=POSITIVE, help="Accelerator-hours of --gpu (at --mfu)."),
        click.option("--budget-usd", type=POSITIVE,
                     help="Dollars on --gpu at its catalog price (or --price-per-hour)."),
        click.option("--params", type=POSITIVE, help="Model parameters N (with --tokens: C = 6ND)."),
        click.option("--tokens", type=POSITIVE, help="Training tokens D (with --params)."),
        click.option("--forward-flops", type=POSITIVE,
                     help="Forward FLOPs per sample of any network (C = 3 F S E)."),
        click.option("--samples", type=POSITIVE, help="Samples per epoch (with --forward-flops)."),
        click.option("--epochs", type=POSITIVE, help="Epochs (with --forward-flops)."),
        click.option("--gpu", default="h100", show_default=True,
                     help="Accelerator id or alias ('budget gpus' lists them)."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="bf16", show_default=True,
                     help="Training precision: picks the dense peak."),
        click.option("--mfu", type=float, default=None,
                     help="Model FLOPs utilisation in (0, 1]; default: the GPU's published "
                          f"training MFU where the catalog has one, else {DEFAULT_MFU:.2f} "
                          "(README lists sources)."),
        click.option("--mfu-band", default=f"{DEFAULT_MFU_BAND[0]:.2f},{DEFAULT_MFU_BAND[1]:.2f}",
                     show_default=True,
                     help="LOW,HIGH MFU range for the GPU-hours and cost ranges."),
        click.option("--num-gpus", type=POSITIVE_INT, default=8, show_default=True,
                     help="GPUs running in parallel (wall clock = GPU-hours / this)."),
        click.option("--price-per-hour", type=POSITIVE, help="Override the catalog $/GPU-hour."),
        click.option("--pue", type=float, default=DEFAULT_PUE, show_default=True,
                     help="Datacenter PUE for the energy line (Patterson et al. 2021 Table 4)."),
        click.option("--power-fraction", type=float, default=None,
                     help="Average board power / TDP (default: measured where known, else 1)."),
        click.option("--grid-gco2-per-kwh", type=click.FloatRange(0, 2000), default=None,
                     help="Grid carbon intensity: adds tCO2e to the energy line."),
        click.option("--catalog", "catalog_paths", multiple=True, type=click.Path(dir_okay=False),
                     help="Extra catalog TOML adding or overriding accelerators (repeatable; "
                          "also BUDGET_CATALOG)."),
    ]
    for option in reversed(options):
        func = option(func)
    return interval_options(func)  # failure, checkpoint and price tier (budget.training.interval)


def parse_band(text: str) -> tuple[float, float]:
    """'0.3,0.5' -> (0.3, 0.5); a one-line usage error otherwise."""
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} must be LOW,HIGH, e.g. 0.30,0.50",
                                 param_hint="'--mfu-band'") from None
    return low, high


def build_request(kw: dict[str, Any]) -> Any:
    """Parse the shared options into a PlanRequest (library import kept inside)."""
    from budget.cli.arch_options import pop_options
    from budget.models.choice import BLOCK_OPTIONS, resolve_model
    from budget.planner import BudgetInput, PlanRequest

    budget = BudgetInput(**{k: kw.pop(k) for k in (
        "flops", "pf_days", "gpu_hours", "budget_usd", "params", "tokens", "forward_flops",
        "samples", "epochs")})
    kw["mfu_band"] = parse_band(kw["mfu_band"])
    kw["reliability"] = pop_reliability(kw)
    kw["catalog_paths"] = tuple(kw["catalog_paths"])
    if kw["mfu"] is None:
        from budget.training.time import DEFAULT_MFU

        kw["mfu"], kw["mfu_from_catalog"] = DEFAULT_MFU, True
    opts = pop_options(kw)
    choice = resolve_model({**opts, "vocab": kw.get("vocab_size")}, seq_len=kw.get("seq_len"))
    if choice is not None:
        source = f"{choice.source}; {choice.note}" if choice.note else choice.source
        kw.update(model=choice.arch, model_source=source, seq_len=choice.seq_len)
    else:
        kw["block"] = tuple((k, opts[k]) for k in BLOCK_OPTIONS if opts.get(k) is not None)
        kw["seq_len_given"] = kw.get("seq_len") is not None
        kw["seq_len"] = kw.get("seq_len") or 2048
    for key in ("family", "attention"):
        if opts.get(key):
            kw[key] = opts[key]
    return PlanRequest(budget=budget, **kw)


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
@click.option("--law", type=click.Choice(LAW_IDS),
              help="Size the shape and memory with this law instead of the recommended one "
                   "(with --model or --params and no --tokens: the law whose optimal D is used).")
@architecture_options_without_vocab
@click.option("--seq-len", type=POSITIVE_INT,
              help="Training sequence length: attention FLOPs, activations, the proposed shape's "
                   "context [default: a named model's training length, else 2048].")
@click.option("--vocab", "vocab_size", type=POSITIVE_INT,
              help="Vocabulary size of the proposed shape [default: the family's].")
@click.option("--micro-batch", type=POSITIVE_INT, default=1, show_default=True,
              help="Sequences per GPU per step, for activation memory.")
@click.option("--zero", "zero_stage", type=click.IntRange(0, 3), default=3, show_default=True,
              help="ZeRO stage for the memory estimate and the fewest-GPUs answer.")
@click.option("--recompute", type=click.Choice(("auto", "none", "selective", "full")), default="auto",
              show_default=True,
              help="Activation recomputation; auto = selective, or full when selective cannot fit.")
@click.option("--optimizer", type=click.Choice(("adam", "momentum", "sgd")), default="adam",
              show_default=True)
@layout_options
@calibrate_options
@beyond_options
@json_option
def command(as_json: bool, calibrate: str | None, tracking_uri: str | None, **kw: Any) -> None:
    """Plan a training run from a compute budget under each published scaling law.

    Prints C (also in PF-days and H100-hours), the compute-optimal parameters N and tokens D
    under Chinchilla, Epoch AI's refit, Kaplan and the 20 tokens/parameter rule, the recommended
    law, GPU-hours over an MFU band, wall clock, dollars, training memory with the fewest GPUs it
    fits on, a transformer shape, and DeepSeek LLM batch size and learning rate.

    Example: budget plan --flops 1e21 --gpu h100
    """
    from budget.wiring import calibrated_plan

    cluster = cluster_request(kw)  # pops the layout options, then the rest is the plan request
    plan = calibrated_plan(replace(build_request(kw), cluster=cluster), calibrate, tracking_uri)
    emit(plan, as_json, render_plan)


def wrap(text: str, first: str, rest: str, width: int = 100) -> str:
    """A long sentence as indented lines of at most `width` characters."""
    import textwrap

    return textwrap.fill(text, width, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False)


def render_calibration(plan: Any) -> list[str]:
    """The calibrated law's intervals, its distance from the evidence, and the side-by-side table."""
    from budget.render import human, table

    cal, mine = plan.calibration, plan.allocation("calibrated")
    lines = ["", f"Calibrated law: {cal['source']} ({cal['runs']} runs, budgets "
                 f"{min(cal['budgets_flops']):.1e}-{cal['max_budget_flops']:.1e} FLOPs)"]
    if mine.params_ci and mine.tokens_ci and mine.loss_ci:
        pct = f"{mine.interval_level:.0%}"
        lines.append(f"  N {human(mine.params)} ({pct}: {human(mine.params_ci[0])}-{human(mine.params_ci[1])}), "
                     f"D {human(mine.tokens)} ({human(mine.tokens_ci[0])}-{human(mine.tokens_ci[1])}), "
                     f"loss {mine.loss:.3f} ({mine.loss_ci[0]:.3f}-{mine.loss_ci[1]:.3f}) "
                     f"{mine.loss_unit} over {cal['bootstrap_draws']} bootstrap refits")
    else:
        lines.append("  no bootstrap draws in the fit: no intervals (fit with --bootstrap N)")
    lines.append(f"  extrapolation: {cal['extrapolation_decades']:.1f} orders of magnitude beyond "
                 f"the largest swept budget")
    if cal["warning"]:
        lines.append(wrap(f"WARNING: {cal['warning']}", "  ", "    "))
    rows = [[r["law"], f"{r['a']:.3f}", f"{r['b']:.3f}", human(r["params"]),
             "-" if r["params_ratio"] is None else f"{r['params_ratio']:.3g}"]
            for r in cal["comparison"]]
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
    if g["alias_note"]:
        lines.append(f"GPU             {g['alias_note']}")
    lines.append(f"                {g['name']}: {g['peak_flops'] / 1e12:,.1f} TFLOP/s dense "
                 f"{plan.precision}, {gib(g['memory_bytes'])} ({g['memory_basis']}); "
                 f"{m.usable_fraction:.0%} usable = {gib(g['memory_bytes'] * m.usable_fraction)}")
    lines.append(wrap(f"MFU {plan.mfu:.1%} ({plan.mfu_source})", "                ", "                  "))
    rows = []
    for a in plan.allocations:
        mark = " *" if a.law == plan.recommended else ""
        rows.append([a.law + mark, human(a.params) + ("" if a.params_count == "total" else " (non-emb)"),
                     human(a.tokens), f"{a.tokens_per_param:.1f}", loss_cell(a)])
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
    lines += ["", f"Time and cost on {g['id']} ({plan.precision}, MFU {plan.mfu:.0%}; "
                  f"band {c.mfu_band[0]:.0%}-{c.mfu_band[1]:.0%})",
              f"  FLOPs         {plan.training_flops_per_token:.4g} per token x D "
              f"{human(plan.tokens)} = {sci(plan.training_flops)} = {plan.ratio_to_6nd:.3f}x "
              f"6ND (attention {plan.attention_convention}, T = {m.seq_len:,}"
              f"{', full recomputation' if m.recompute == 'full' else ''})",
              f"  GPU-hours     {hours(c.gpu_hours)}  (range {hours(lo)} - {hours(hi)})",
              f"  wall clock    {hours(c.wall_clock_hours)} h = {c.wall_clock_days:,.1f} days "
              f"on {c.num_gpus} GPU(s)"]
    if c.cost_usd is None:
        lines.append(f"  cost          - ({c.price_source}; give --price-per-hour)")
    else:
        clo, chi = c.cost_usd_range
        lines.append(f"  cost          {money(c.cost_usd)}  (range {money(clo)} - {money(chi)}) "
                     f"at ${c.price_usd_per_hour:.2f}/GPU-hour ({c.price_source})")
    lines += energy_lines(plan)
    lines += render_interval(plan)  # P10/P50/P90 (budget.training.interval)
    lines += ["", f"Memory for the shape below ({m.precision}, {m.optimizer}, micro-batch "
                  f"{m.micro_batch} x {m.seq_len} tokens, recompute {m.recompute}, ZeRO-{m.zero_stage} "
                  f"over {m.num_gpus} GPU(s)), per GPU:",
              f"  params {gib(m.params_bytes)}, grads {gib(m.grads_bytes)}, optimizer "
              f"{gib(m.optimizer_bytes)}, activations {gib(m.activations_bytes)}: total "
              f"{gib(m.total_bytes)} of {gib(m.gpu_memory_bytes)}",
              f"  unsharded model states {gib(m.model_states_bytes_unsharded)} "
              f"({m.bytes_per_param:g} bytes/param); fewest GPUs: "
              f"{m.min_gpus if m.min_gpus is not None else 'none'} ({m.min_gpus_note})",
              "", _shape_title(plan),
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
                  f"{plan.gpu['id']} at MFU {plan.mfu:.0%})",
                  table(["law", "D", "D/N", "C = 6ND", "GPU-hours", "cost"], rows)]
    if f.note:
        lines.append(f"  note: {f.note}")
    return lines
