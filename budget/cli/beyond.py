"""The beyond-compute-optimal options of `budget plan` / `budget report` and their text sections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from budget.cli.common import FINITE, POSITIVE


class _Serving(click.ParamType):
    name = "serving"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from budget.errors import BudgetError
        from budget.serving.lifetime import parse_serving

        if not isinstance(value, str):
            return value
        try:
            return parse_serving(value)
        except BudgetError as exc:
            self.fail(str(exc), param, ctx)


SERVING = _Serving()


def beyond_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--inference-tokens, --target-loss, --unique-tokens (each optional; none = today's plan)."""
    options = [
        click.option("--inference-tokens", type=FINITE, default=None, metavar="T",
                     help="Lifetime tokens the model will serve: size it to minimise training + "
                          "inference FLOPs at the same loss (Sardana & Frankle 2023)."),
        click.option("--target-loss", type=POSITIVE, default=None, metavar="L",
                     help="Cheapest (N, D) reaching this loss under each parametric law; alone, "
                          "it also sets the budget (C of the compute-optimal model at L)."),
        click.option("--serving", type=SERVING, default=None, metavar="PROFILE",
                     help="Price --inference-tokens as served: traffic and targets, e.g. "
                          "rate=20,input=2000,output=300,ttft-ms=500,tpot-ms=40 "
                          "(optional percentile=, weights=, kv=); simulated like "
                          "`budget serve --rate`."),
        click.option("--unique-tokens", type=POSITIVE, default=None, metavar="U",
                     help="Cap on unique training tokens: epochs, loss lost to repetition and the "
                          "capped optimum (Muennighoff et al. 2023)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


BEYOND_OPTION_NAMES = ("inference_tokens", "target_loss", "unique_tokens", "serving")


def render_beyond(plan: Any) -> list[str]:
    """The plan's beyond sections (empty when none was asked)."""
    b = getattr(plan, "beyond", None)
    if b is None:
        return []
    lines: list[str] = []
    if b.inference or (b.notes and not b.data and not b.bought):
        lines += render_inference(b)
    if b.data is not None:
        lines += render_data(b.data)
    if b.bought:
        lines += render_bought(b.bought)
    from budget.cli.plan import wrap

    if b.assumptions:
        lines += ["  Assumptions:"] + [wrap(f"- {a}", "    ", "      ") for a in b.assumptions]
    return lines


def _usd(x: float | None) -> str:
    from budget.render import money

    return "-" if x is None else money(x)


def render_inference(b: Any) -> list[str]:
    from budget.cli.plan import wrap
    from budget.render import human, sci, table

    first = b.inference[0] if b.inference else None
    head = "Inference-aware sizing (Sardana & Frankle 2023): the same loss for less lifetime compute"
    lines = ["", head]
    if first is not None:
        lines.append(f"  {human(first.inference_tokens)} tokens served; loss held at "
                     f"{first.loss_from}")
    rows = []
    for p in b.inference:
        for label, pt in (("compute-optimal", p.reference), ("inference-aware", p.chosen)):
            rows.append([p.law if label == "compute-optimal" else "", label, f"{pt.loss:.4f}",
                         human(pt.params), human(pt.tokens), f"{pt.tokens_per_param:.1f}",
                         sci(pt.train_flops), sci(pt.inference_flops), sci(pt.total_flops),
                         _usd(pt.train_usd), _usd(pt.inference_usd), _usd(pt.total_usd)])
    if rows:
        lines.append(table(["law", "model", "loss", "N", "D", "D/N", "train FLOPs", "infer FLOPs",
                            "total FLOPs", "train $", "infer $", "total $"], rows))
    served = {(human(pt.params), pt.served["tp"], pt.served["replicas"], pt.served["gpu"],
               pt.served["usd_per_million_tokens"]) for p in b.inference
              for pt in (p.reference, p.chosen) if pt.served}
    lines += [f"  served: {n} params as {r} replica(s) of tp{tp} {g}, ${usd:,.4f} per 1M tokens"
              for n, tp, r, g, usd in sorted(served)]
    for p in b.inference:
        usd = "" if p.reference.total_usd is None or p.chosen.total_usd is None else \
            f" = {_usd(p.reference.total_usd - p.chosen.total_usd)}"
        lines.append(wrap(f"{p.law}: the inference-aware model saves {sci(p.saving_flops)} FLOPs "
                          f"({p.saving_fraction:.1%}){usd} over its life: "
                          f"{human(p.chosen.params)} params on {human(p.chosen.tokens)} tokens "
                          f"instead of {human(p.reference.params)} on {human(p.reference.tokens)}",
                          "  ", "    "))
    lines += [wrap(f"- {n}", "  ", "    ") for n in b.notes]
    return lines


def render_data(d: Any) -> list[str]:
    from budget.cli.plan import wrap
    from budget.render import human, table

    rows = [[r.law, human(r.params), human(r.tokens), f"{r.epochs:.2f}", f"{r.effective_epochs:.2f}"]
            for r in d.repetitions + (d.capped_optimum, d.unconstrained_optimum)]
    lines = ["", (f"Unique tokens capped at {human(d.unique_tokens)} (Muennighoff et al. 2023, C4 fit: "
                 f"R_D* {d.r_d_star:.2f}, R_N* {d.r_n_star:.2f})"),
             table(["allocation", "N", "D", "epochs", "worth (fresh epochs)"], rows),
             wrap(f"{d.at_plan_law}'s allocation on the data-constrained law: loss "
                  f"{d.at_plan_loss_capped:.4f} with the cap against {d.at_plan_loss_unique:.4f} on "
                  f"unique data: {d.loss_lost_to_repetition:+.4f} lost to repetition", "  ", "    "),
             wrap(f"compute-optimal under the cap: {human(d.capped_optimum.params)} params on "
                  f"{human(d.capped_optimum.tokens)} tokens ({d.capped_optimum.epochs:.2f} epochs), "
                  f"loss {d.capped_optimum_loss:.4f}; without the cap "
                  f"{human(d.unconstrained_optimum.params)} on {human(d.unconstrained_optimum.tokens)}, "
                  f"loss {d.unconstrained_optimum_loss:.4f}", "  ", "    ")]
    lines += [wrap(f"WARNING: {w}", "  ", "    ") for w in d.warnings]
    lines += [wrap(f"note: {n}", "  ", "    ") for n in d.notes]
    return lines


def render_bought(bought: Any) -> list[str]:
    from budget.render import human, sci, table

    first = bought[0]
    rows = [[x.law, f"{x.loss:.4f}", f"{x.optimal_loss:.4f}", f"{x.loss_gap:+.4f}",
             human(x.optimal_params), human(x.optimal_tokens), sci(x.same_loss_compute_flops),
             f"{x.extra_compute_fraction:+.1%}"] for x in bought]
    return ["", (f"The loss you buy with N = {human(first.params)}, D = {human(first.tokens)} "
                f"(D/N {first.tokens / first.params:.1f}, C = {sci(first.compute_flops)})"),
            table(["law", "loss", "optimum at C", "gap", "optimum N", "optimum D",
                   "C for this loss", "extra compute"], rows)]
