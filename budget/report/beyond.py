"""The proposal's beyond-compute-optimal sections, when asked: inference-aware sizing
(`--inference-tokens`, `--target-loss`), capped unique data (`--unique-tokens`), the loss an explicit
(N, D) buys (a `--params/--tokens` budget) and the tokens-per-parameter frontier (`--frontier`).
Numbers are those of `budget plan` (`Plan.beyond`) and `budget frontier` for the same options."""

from __future__ import annotations

from typing import Any

from budget.planner import Plan
from budget.render import human, money, sci
from budget.report.sections import BeyondSection, Figure
from budget.scaling import data_constrained, inference
from budget.scaling.frontier import Frontier, frontier, frontier_png

SOURCES = (
    ("inference-aware sizing: minimise 6 N D_train + 2 N T at fixed loss", inference.SOURCE),
    ((f"data-constrained law: C4 fit, R_D* = {data_constrained.R_D_STAR}, R_N* = "
     f"{data_constrained.R_N_STAR}"), data_constrained.SOURCE),
    ("'up to 4 epochs ... negligible changes to loss'", "Muennighoff et al. 2023, arXiv:2305.16264, abstract"),
)


def _usd(x: float | None) -> str:
    return "-" if x is None else money(x)


def beyond_sections(plan: Plan, *, with_frontier: bool = False,
                    usd_per_flop: float | None = None) -> tuple[BeyondSection, ...]:
    """The sections the plan's options asked for (none: an empty tuple)."""
    out: list[BeyondSection] = []
    b = plan.beyond
    if b is not None and (b.inference or (b.notes and b.data is None and not b.bought)):
        out.append(inference_section(b))
    if b is not None and b.data is not None:
        out.append(data_section(b.data, b.assumptions))
    if b is not None and b.bought:
        out.append(bought_section(b.bought))
    if with_frontier:
        inference_tokens = plan.beyond.inference[0].inference_tokens \
            if plan.beyond is not None and plan.beyond.inference else 0.0
        out.append(frontier_section(frontier(
            plan.compute_flops, inference_tokens=inference_tokens,
            context_tokens=plan.shape.n_ctx / 2, usd_per_flop=usd_per_flop)))
    return tuple(out)


def inference_section(b: Any) -> BeyondSection:
    rows: list[tuple[str, ...]] = [("law", "model", "loss", "N", "D", "D/N", "training FLOPs",
                                    "inference FLOPs", "training $", "inference $", "total $")]
    for p in b.inference:
        for label, pt in (("compute-optimal", p.reference), ("inference-aware", p.chosen)):
            rows.append((p.law, label, f"{pt.loss:.4f}", human(pt.params), human(pt.tokens),
                         f"{pt.tokens_per_param:.1f}", sci(pt.train_flops), sci(pt.inference_flops),
                         _usd(pt.train_usd), _usd(pt.inference_usd), _usd(pt.total_usd)))
    parts: list[tuple[str, Any]] = []
    if b.inference:
        p0 = b.inference[0]
        parts.append(("text", (f"A model that will serve {human(p0.inference_tokens)} tokens costs "
                              f"2 N FLOPs per served token on top of 6 N D to train. At the same "
                              f"loss ({p0.loss_from}), a smaller model trained on more tokens "
                              f"costs less over its life (Sardana & Frankle 2023).")))
    parts.append(("table", tuple(rows)))
    parts += [("text", (f"{p.law}: {human(p.chosen.params)} parameters on {human(p.chosen.tokens)} "
                       f"tokens instead of {human(p.reference.params)} on "
                       f"{human(p.reference.tokens)} saves {sci(p.saving_flops)} FLOPs "
                       f"({p.saving_fraction:.1%}) of training plus inference."))
              for p in b.inference]
    parts.append(("bullets", tuple(b.notes) + tuple(a for a in b.assumptions
                                                    if not a.startswith("repetition"))))
    return BeyondSection("Inference-aware sizing", tuple(parts), sources=SOURCES[:1])


def data_section(d: Any, assumptions: tuple[str, ...]) -> BeyondSection:
    rows: list[tuple[str, ...]] = [("allocation", "N", "D", "epochs over the unique data",
                                    "worth (fresh epochs)")]
    rows += [(r.law, human(r.params), human(r.tokens), f"{r.epochs:.2f}", f"{r.effective_epochs:.2f}")
             for r in d.repetitions + (d.capped_optimum, d.unconstrained_optimum)]
    parts: tuple[tuple[str, Any], ...] = (
        ("text", (f"With {human(d.unique_tokens)} unique tokens, each allocation repeats its data "
                 f"D / U times; an epoch after the first is worth exp(-R_D / R_D*) of fresh data "
                 f"(Muennighoff et al. 2023), so repeated data is worth at most "
                 f"{1 + d.r_d_star:.1f} epochs.")),
        ("table", tuple(rows)),
        ("text", (f"On the data-constrained law, {d.at_plan_law}'s allocation reaches loss "
                 f"{d.at_plan_loss_capped:.4f} under the cap against {d.at_plan_loss_unique:.4f} "
                 f"on unique data ({d.loss_lost_to_repetition:+.4f} lost to repetition). The "
                 f"compute-optimal allocation under the cap is {human(d.capped_optimum.params)} "
                 f"parameters on {human(d.capped_optimum.tokens)} tokens "
                 f"({d.capped_optimum.epochs:.2f} epochs, loss {d.capped_optimum_loss:.4f}).")),
        ("bullets", tuple(f"WARNING: {w}" for w in d.warnings) + tuple(d.notes)
         + tuple(a for a in assumptions if a.startswith("repetition"))),
    )
    return BeyondSection("Capped unique data", parts, sources=SOURCES[1:])


def bought_section(bought: Any) -> BeyondSection:
    first = bought[0]
    rows: list[tuple[str, ...]] = [("law", "loss", "optimal loss at the same C", "optimal N",
                                    "optimal D", "least C for this loss", "extra compute")]
    rows += [(x.law, f"{x.loss:.4f}", f"{x.optimal_loss:.4f}", human(x.optimal_params),
              human(x.optimal_tokens), sci(x.same_loss_compute_flops),
              f"{x.extra_compute_fraction:+.1%}") for x in bought]
    return BeyondSection("The loss you buy", (
        ("text", (f"N = {human(first.params)} parameters on D = {human(first.tokens)} tokens "
                 f"({first.tokens / first.params:.1f} tokens/parameter) against each law's "
                 f"compute-optimal frontier at C = {sci(first.compute_flops)} FLOPs.")),
        ("table", tuple(rows))))


def frontier_section(fr: Frontier) -> BeyondSection:
    names = list(fr.optimal_ratio)
    header = ["D/N", "N", "D"] + [f"{n} {what}" for n in names for what in ("loss", "extra C")]
    header += ["inference FLOPs/token", "$ per 1M tokens"]
    rows: list[tuple[str, ...]] = [tuple(header)]
    for r in fr.rows:
        cells = [f"{r.tokens_per_param:g}", human(r.params), human(r.tokens)]
        for x in r.by_law:
            cells += [f"{x.loss:.4f}", f"{x.extra_compute_fraction:+.1%}"]
        cells += [sci(r.inference_flops_per_token),
                  "-" if r.inference_usd_per_million_tokens is None
                  else f"${r.inference_usd_per_million_tokens:.4f}"]
        rows.append(tuple(cells))
    figure = Figure("frontier", "The loss you buy", f"Loss and extra compute over tokens per "
                    f"parameter at C = {fr.compute_flops:.2e} FLOPs (dotted: each law's optimum).",
                    frontier_png(fr))
    optimum = ", ".join(f"{n} {fr.optimal_ratio[n]:.1f}" for n in names)
    return BeyondSection("Tokens per parameter at this budget", (
        ("text", (f"The same C spent at other tokens-per-parameter ratios; compute-optimal D/N: "
                 f"{optimum}. 'extra C' is the compute over the cheapest (N, D) reaching the "
                 f"same loss; smaller models cost less per served token.")),
        ("table", tuple(rows)), ("figure", "frontier")), figures=(figure,))
