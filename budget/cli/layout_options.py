"""Layout options shared by `budget plan` and `budget memory`, and the layout section's rendering."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from budget.cli.common import FRACTION, POSITIVE, POSITIVE_INT

LAYOUT_OPTION_KEYS = ("layout", "global_batch", "nodes", "gpus_per_node", "days", "goodput",
                      "flash_attention", "overlap")


MEMORY_OPTION_KEYS = ("layout", "global_batch", "nodes", "gpus_per_node", "flash_attention")


def layout_options(func: Callable[..., Any], keys: tuple[str, ...] = LAYOUT_OPTION_KEYS) -> Callable[..., Any]:
    """--layout, --global-batch, --nodes, --gpus-per-node, --days, --goodput, --flash-attention, --overlap."""
    options = [
        click.option("--layout", metavar="tp=8,pp=4,...",
                     help="Fix the layout: tp, pp, vp, dp, cp, ep, sp=on|off, zero=0-3, mb, ga, "
                          "recompute, flash=on|off (dp defaults to the GPUs left, ga to the batch)."),
        click.option("--global-batch", type=POSITIVE_INT,
                     help="Sequences per step (default: the plan's DeepSeek useful batch)."),
        click.option("--nodes", type=POSITIVE_INT,
                     help="Nodes; --num-gpus becomes nodes x --gpus-per-node (or the catalog's)."),
        click.option("--gpus-per-node", type=POSITIVE_INT,
                     help="GPUs per node / scale-up domain (default: the catalog's)."),
        click.option("--days", type=POSITIVE,
                     help="With --num-gpus (or --nodes): the budget is the GPU-hours that fit in "
                          "these days at --goodput (0.90 when not given: the model is not known yet)."),
        click.option("--goodput", type=FRACTION, default=None,
                     help="Share of billed hours spent training [default: the failure and "
                          "checkpoint model: --mtbf-hours, --checkpoint-gbps, --restart-minutes]."),
        click.option("--flash-attention/--no-flash-attention", default=True, show_default=True,
                     help="FlashAttention: no s x s scores stored, causal half computed."),
        click.option("--overlap", default="tp=0,cp=1,ep=0,dp=1", show_default=True,
                     help="Share of each communication hidden behind compute (0-1)."),
    ]
    for key, option in reversed(list(zip(LAYOUT_OPTION_KEYS, options))):
        if key in keys:
            func = option(func)
    return func


def memory_layout_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The layout options `budget memory` shares with `budget plan` (same names and defaults)."""
    return layout_options(func, MEMORY_OPTION_KEYS)


def parse_overlap(text: str) -> Any:
    from budget.training.communication import Overlap

    values: dict[str, float] = {}
    for item in (x.strip() for x in text.split(",") if x.strip()):
        key, _, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if key not in ("tp", "cp", "ep", "dp") or not 0 <= number <= 1:
            raise click.BadParameter(f"{item!r} must be KIND=FRACTION with KIND tp, cp, ep or dp "
                                     "and FRACTION in [0, 1]", param_hint="'--overlap'")
        values[key] = number
    return Overlap(**values)


def given(name: str) -> bool:
    """Whether option `name` (its parameter name) was given on the command line or in the
    environment, not left at its default."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source(name) if ctx is not None else None
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def check_layout_options(kw: dict[str, Any], needs: str | None = None) -> int | None:
    """Read --layout now, whether or not a GPU will use it (a bad one is an error, never ignored),
    and settle --num-gpus with it: a layout with dp= fixes the GPU count (tp x pp x cp x dp, which
    it returns), so a --num-gpus (or --nodes) too small for it is a contradiction (a larger one
    leaves GPUs idle, as the layout section says), and --num-gpus left at its default becomes the
    layout's count. `needs`: the option without which the layout options
    do nothing (memory's --gpu), refused when it is absent."""
    from budget.training.parallel import parse_layout

    text = kw.get("layout")
    if needs is not None and not kw.get(needs):
        dropped = [f"--{k.replace('_', '-')}" for k in MEMORY_OPTION_KEYS if k in kw and given(k)]
        if dropped:
            raise click.UsageError(f"{', '.join(dropped)} {'lays' if len(dropped) == 1 else 'lay'} "
                                   f"the model out on --{needs}; give --{needs} too, or drop "
                                   f"{dropped[0]}")
    if not text:
        return None
    layout = parse_layout(text)
    if "dp" not in (item.partition("=")[0].strip().lower() for item in text.split(",")):
        return None
    count = layout.num_gpus
    if given("num_gpus"):
        if kw["num_gpus"] < count:
            raise click.UsageError(f"--num-gpus {kw['num_gpus']} contradicts --layout {text} "
                                   f"(tp x pp x cp x dp = {count} GPUs); give one of them")
        return count  # fewer than given: the layout section says how many stay idle
    kw["num_gpus"] = count
    return count


DAYS_GOODPUT = 0.90


def cluster_request(kw: dict[str, Any]) -> Any:
    """Pop the layout options from `kw` (adjusting num_gpus / gpu_hours) into a ClusterRequest."""
    from budget.training.cluster_plan import ClusterRequest, check_goodput

    layout_gpus = check_layout_options(kw)
    defaults: dict[str, Any] = {"days": None, "goodput": None, "overlap": "tp=0,cp=1,ep=0,dp=1"}
    opts: dict[str, Any] = {k: kw.pop(k) if k in kw else defaults[k] for k in LAYOUT_OPTION_KEYS}
    goodput_given = None if opts["goodput"] is None else check_goodput(opts["goodput"])
    # --days turns the deadline into GPU-hours before the model (hence its goodput) is known:
    # Llama 3's > 90% effective time (arXiv:2407.21783 §3.3.4) unless --goodput is given
    goodput = DAYS_GOODPUT if goodput_given is None else goodput_given
    if opts["nodes"] is not None:
        per_node = opts["gpus_per_node"]
        if per_node is None:
            from budget.hardware.catalog import load_catalog

            per_node = load_catalog(kw.get("catalog_paths") or ()).get(kw["gpu"]).gpus_per_node or 8
        kw["num_gpus"] = opts["nodes"] * per_node
        if layout_gpus is not None and kw["num_gpus"] < layout_gpus:
            raise click.UsageError(f"--nodes {opts['nodes']} x {per_node} GPUs per node contradicts "
                                   f"--layout {opts['layout']} ({layout_gpus} GPUs); give one of them")
    if opts["days"] is not None and kw.get("budget_usd") is not None:
        kw["num_gpus"] = _gpus_for_money_in_days({**kw, "gpus_per_node": opts["gpus_per_node"]},
                                                 opts["days"], goodput)
    elif opts["days"] is not None:
        given = [k for k in ("flops", "pf_days", "gpu_hours", "budget_usd", "params", "tokens",
                             "forward_flops") if kw.get(k) is not None]
        if given:
            raise click.UsageError(f"--days with --num-gpus sets the budget; drop --{given[0].replace('_', '-')}")
        kw["gpu_hours"] = opts["days"] * 24.0 * kw["num_gpus"] * goodput
    recompute = kw.get("recompute", "auto")
    return ClusterRequest(num_gpus=kw["num_gpus"], layout=opts["layout"],
                          global_batch=opts["global_batch"], gpus_per_node=opts["gpus_per_node"],
                          goodput=goodput_given, flash=opts["flash_attention"], days=opts["days"],
                          recompute="auto" if recompute in (None, "auto") else recompute,
                          overlap=parse_overlap(opts["overlap"]))


def _gpus_for_money_in_days(kw: dict[str, Any], days: float, goodput: float) -> int:
    """--budget-usd with --days: the GPUs that spend the money in that many days (billed hours)."""
    import math

    from budget.hardware.catalog import load_catalog
    from budget.training.time import resolve_price

    gpu = load_catalog(kw.get("catalog_paths") or ()).get(kw["gpu"])
    price, _ = resolve_price(gpu, kw.get("price_per_hour"))
    if price is None:
        raise click.UsageError(f"--budget-usd with --days needs a price: {gpu.id} has none in the "
                               "catalog's tier; give --price-per-hour")
    gpus = math.floor(kw["budget_usd"] / (price * 24.0 * days))
    per_node = kw.get("gpus_per_node") or gpu.gpus_per_node or 1
    return max(1, gpus - gpus % per_node if gpus >= per_node else gpus)  # whole nodes


def render_cluster(cp: Any, plan: Any = None) -> list[str]:
    """The layout section: layout, memory per GPU, step time by part, MFU, wall clock, warnings."""
    from budget.render import gib, hours, money

    s = cp.search
    lines = ["", f"Layout on {cp.num_gpus} x {cp.gpu} "
                 f"({cp.cluster.gpus_per_node} per node, {cp.cluster.scale_up_gbs_per_dir:g} GB/s/dir "
                 f"inside, {cp.cluster.scale_out_gbs_per_dir:g} GB/s/dir per GPU between nodes)"]
    if s.fewest_gpus is not None:
        lines.append(f"  fewest GPUs that hold it: {s.fewest_gpus} ({s.fewest_layout.describe()})")
    else:
        from budget.training.layout_search import MAX_DP

        lines.append(f"  fewest GPUs that hold it: none found (the search stops at dp = {MAX_DP:,} "
                     "per tp x pp x cp)")
    b = s.best
    if b is None:
        lines.append(f"  no layout: {s.reason}")
    else:
        m, st, lay = b.memory, b.step, b.layout
        lines += [f"  layout        {lay.describe()}  ({s.reason}; global batch {lay.global_batch} "
                  f"sequences, useful {cp.global_batch_sequences} from {cp.global_batch_source})",
                  *([f"  why           {s.why}"] if s.why else []),
                  f"  memory/GPU    weights {gib(m.weights_bytes)}, grads {gib(m.grads_bytes)}, "
                  f"optimizer {gib(m.optimizer_bytes)}, activations {gib(m.activations_bytes)}, "
                  f"buffers {gib(m.buffers_bytes)}: {gib(m.total_bytes)} of {gib(m.usable_bytes)} usable",
                  f"  step          {st.step_time_s:,.3g} s = compute {st.compute_s:,.3g} + exposed "
                  f"communication {st.communication_s:,.3g} + bubble {st.bubble_s:,.3g} + optimizer "
                  f"{st.optimizer_s:,.3g}",
                  "  exposed comm  " + (", ".join(f"{k} {v:.3g} s" for k, v in st.exposed_by_kind_s.items()
                                                  if v) or "none (all hidden behind compute under the --overlap assumption)"),
                  f"  MFU           predicted {st.predicted_mfu:.1%} (HFU {st.predicted_hfu:.1%} as computed: "
                  f"causal half with FlashAttention, + recompute; "
                  f"{st.tflops_per_gpu:,.0f} model TFLOP/s/GPU)"
                  + ("" if cp.assumed_mfu is None else f" vs assumed {cp.assumed_mfu:.1%}")]
        if cp.wall_clock_hours is not None:
            price = plan.cost.price_usd_per_hour if plan else None
            cost = "" if price is None else f", {money(cp.billed_gpu_hours * price)} at ${price:.2f}/h"
            lines.append(f"  wall clock    {cp.steps:,.0f} steps: {hours(cp.wall_clock_hours)} h = "
                         f"{cp.wall_clock_hours / 24:,.1f} days at goodput {cp.goodput:.0%}; "
                         f"billed {hours(cp.billed_gpu_hours)} GPU-hours{cost}")
    lines += [f"  warning: {w}" for w in cp.warnings]
    return lines
