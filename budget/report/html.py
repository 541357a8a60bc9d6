"""The proposal's text: one list of sections, rendered to Markdown and to self-contained HTML.

`sections(report)` says what the proposal contains; `render_markdown` and `render_html` only format
it, so the two documents carry the same numbers. The HTML embeds every figure as a base64 data URI
and the plan JSON in a <script type="application/json" id="plan-json">; a small inline script
writes each image's natural size into <pre id="check"> on load (the browser test reads it).
"""

from __future__ import annotations

import base64
import html
import re
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

from budget import __version__
from budget.models.arch import Architecture
from budget.planner import Plan, PlanRequest
from budget.render import gib, hours, human, loss_cell, loss_units_line, money, sci
from budget.report.sections import BeyondSection, Figure, Report
from budget.text import printable


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class FigureRef:
    name: str


@dataclass(frozen=True)
class Code:
    text: str


Block = Union[str, Table, Bullets, FigureRef, Code]


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


def _range(lo: float, hi: float, fmt: Callable[[float | None], str] = hours) -> str:
    return f"{fmt(lo)} - {fmt(hi)}"


def plan_command(req: PlanRequest, plan: Plan) -> str:
    """The `budget plan` line that reproduces the plan's numbers (the budget given as its C), built
    as an argument list and joined with `shlex.join`: a catalog path with a space stays one
    argument, and nothing in a name or path can become a second command when pasted."""
    argv = ["budget", "plan"]
    if plan.fixed is not None:  # a plan for a given N: the same N and D
        from budget.models.named import model_names

        model = plan.shape.name if req.model is not None and \
            plan.shape.name in model_names() else ""  # a config's or a given shape: by its N
        argv += ["--model", model] if model else ["--params", repr(plan.fixed.params)]
        argv += ["--tokens", repr(plan.fixed.tokens)]
    else:
        argv += ["--flops", repr(plan.compute_flops)]
    argv += ["--gpu", plan.gpu.id, "--precision", req.precision]
    if not req.mfu_from_catalog:
        argv += ["--mfu", repr(req.mfu)]
    argv += ["--mfu-band", f"{req.mfu_band[0]!r},{req.mfu_band[1]!r}", "--num-gpus", str(req.num_gpus),
             "--seq-len", str(req.seq_len), "--family", req.family]
    if req.vocab_size:
        argv += ["--vocab", str(req.vocab_size)]
    argv += ["--micro-batch", str(req.micro_batch), "--zero", str(req.zero_stage),
             "--recompute", req.recompute, "--optimizer", req.optimizer]
    if req.law:
        argv += ["--law", req.law]
    if req.price_per_hour is not None:
        argv += ["--price-per-hour", repr(req.price_per_hour)]
    for name in ("inference_tokens", "target_loss", "unique_tokens"):
        if getattr(req, name, None) is not None:
            argv += [f"--{name.replace('_', '-')}", repr(getattr(req, name))]
    for path in req.catalog_paths:
        argv += ["--catalog", str(path)]
    return shlex.join(argv)


def shape_line(shape: Architecture) -> str:
    return (f"n_layer {shape.n_layer}, d_model {shape.d_model}, n_heads {shape.n_head}, "
            f"d_ff {shape.d_ff}, n_ctx {shape.n_ctx}, vocab {shape.vocab_size}")


def summary(report: Report) -> str:
    """The one-paragraph answer at the top."""
    p, c = report.plan, report.plan.cost
    rec = p.allocation(p.recommended)
    cost = "no catalog price" if c.cost_usd is None or c.cost_usd_range is None else \
        f"{money(c.cost_usd)} ({_range(*c.cost_usd_range, money)})"
    what = (f"Train {p.fixed.name} ({human(p.fixed.params)} parameters) on "
            f"{human(p.fixed.tokens)} tokens ({p.fixed.tokens_per_param:.1f} tokens/parameter). "
            if p.fixed else
            f"Train a {human(rec.params)}-parameter model on {human(rec.tokens)} tokens "
            f"({rec.tokens_per_param:.1f} tokens/parameter, law '{p.recommended}'). ")
    return (f"{what}C = {sci(p.compute_flops)} FLOPs ({p.ratio_to_6nd:.3f}x in the shape's real "
            f"training FLOPs) takes {hours(c.gpu_hours)} GPU-hours on "
            f"{p.gpu.name} at MFU {p.mfu:.0%}: {hours(c.wall_clock_hours)} h "
            f"({c.wall_clock_days:,.1f} days) on {c.num_gpus} GPU(s), costing {cost}.")


def question_section(report: Report) -> Section:
    p, req, m = report.plan, report.request, report.plan.memory
    g = p.gpu
    rows = (("compute budget C", f"{sci(p.compute_flops)} FLOPs = {p.compute_pf_days:,.3g} PF-days "
                                 f"= {hours(p.h100_hours)} H100-hours"),
            ("how C was derived", p.budget.formula),
            ("accelerator", f"{g.name} ({g.id}): {g.peak_flops / 1e12:,.1f} TFLOP/s dense "
                            f"{p.precision}, {g.memory_bytes / 1e9:g} GB"),
            ("MFU", f"{p.mfu:.0%} (band {p.cost.mfu_band[0]:.0%} - {p.cost.mfu_band[1]:.0%})"),
            ("GPUs in parallel", str(req.num_gpus)),
            ("training setup", f"{m.precision} {m.optimizer}, ZeRO-{m.zero_stage}, micro-batch "
                               f"{m.micro_batch} x {m.seq_len} tokens, recompute {m.recompute}"))
    text = [f"How large a model, trained on how many tokens, fits this budget, and what will it "
            f"cost in time and money on {g.id}" +
            (f" and {', '.join(r.gpu.id for r in report.compare[1:])}" if report.compare[1:]
             else "") + "?"]
    if g.alias_note:
        text.append(g.alias_note + ".")
    return Section("The question", (*text, Table(("assumption", "value"), rows),
                                    "The planner's numbers can be re-checked with:",
                                    Code(plan_command(req, p))))


def laws_section(report: Report) -> Section:
    p = report.plan
    rows = tuple((a.law + (" (recommended)" if a.law == p.recommended else ""),
                  human(a.params) + ("" if a.params_count == "total" else " (non-embedding)"),
                  human(a.tokens), f"{a.tokens_per_param:.1f}",
                  loss_cell(a), a.source) for a in p.allocations)
    return Section("Compute-optimal allocation under each law", (
        f"Every row spends the whole budget: 6 N D = {sci(p.compute_flops)} FLOPs.",
        Table(("law", "params N", "tokens D", "D/N", "predicted loss", "source"), rows),
        loss_units_line(p),
        FigureRef("loss_vs_compute"), FigureRef("allocation")))


def recommendation_section(report: Report) -> Section:
    p, hp = report.plan, report.plan.hyperparameters
    rec = p.allocation(p.recommended)
    return Section("Recommendation and why", (
        f"Parameters N = {human(rec.params)} ({rec.params:.4g}), tokens D = {human(rec.tokens)} "
        f"({rec.tokens:.4g}), law '{p.recommended}'.",
        f"Why {p.recommended}: {p.recommended_reason.removeprefix(p.recommended + ': ')}.",
        f"Shape ({p.shape_params_count.replace('_', '-')} parameters {human(p.shape_params)}, "
        f"{p.shape_error:+.1%} from N): {shape_line(p.shape)}.",
        f"Starting batch size {human(hp.batch_tokens)} tokens (~{hp.batch_sequences:,.0f} "
        f"sequences) and learning rate {hp.learning_rate:.2e} (DeepSeek LLM eq. 1).",
        "Notes from the planner:", Bullets(tuple(p.notes))))


def cost_section(report: Report) -> Section:
    rows = []
    for r in report.compare:
        c, m = r.cost, r.memory
        cost = "-" if c.cost_usd is None or c.cost_usd_range is None else \
            f"{money(c.cost_usd)} ({_range(*c.cost_usd_range, money)})"
        rows.append((r.gpu.id, f"{r.num_gpus} ({r.count_reason})",
                     f"{hours(c.gpu_hours)} ({_range(*c.gpu_hours_range)})",
                     f"{hours(c.wall_clock_hours)} h = {c.wall_clock_days:,.1f} d "
                     f"({_range(*c.wall_clock_hours_range)} h)", cost,
                     "-" if c.price_usd_per_hour is None else f"${c.price_usd_per_hour:.2f}",
                     f"{gib(m.total_bytes)} of {gib((m.gpu_memory_bytes or 0) * m.usable_fraction)}"
                     f" usable: {'fits' if r.fits else 'does not fit'}",
                     f"{c.mfu:.1%} ({c.mfu_band[0]:.0%}-{c.mfu_band[1]:.0%})"))
    p = report.plan
    mfus = {r.cost.mfu for r in report.compare}
    at = (f"MFU {p.mfu:.0%} on every accelerator; ranges over MFU {p.cost.mfu_band[0]:.0%} - "
          f"{p.cost.mfu_band[1]:.0%}" if len(mfus) == 1 else
          ("each accelerator at its own MFU (column MFU: the step-time model of its own layout, "
           "x goodput; see Sources); ranges over each one's MFU band" if p.time_source == "layout" else
           "each accelerator at its own MFU (column MFU, from the catalog's published training "
           "runs; see Sources); ranges over each one's MFU band"))
    return Section("Cost and time", (
        f"The same run (C = {sci(p.compute_flops)} FLOPs, {p.precision}, {at}) on each "
        f"accelerator. GPU count: --num-gpus, or the fewest that hold the model when that is more.",
        Table(("accelerator", "GPUs", "GPU-hours (range)", "wall clock (range)",
               "cost (range)", "$/GPU-hour", "memory per GPU", "MFU (band)"), tuple(rows)),
        FigureRef("accelerators")))


def memory_section(report: Report) -> Section:
    m = report.plan.memory
    rows = (("weights", gib(m.params_bytes)), ("gradients", gib(m.grads_bytes)),
            ("optimizer state", gib(m.optimizer_bytes)), ("activations", gib(m.activations_bytes)),
            ("total per GPU", gib(m.total_bytes)),
            (f"usable on {m.gpu} ({m.usable_fraction:.0%})",
             gib((m.gpu_memory_bytes or 0) * m.usable_fraction)),
            ("fewest GPUs", f"{m.min_gpus if m.min_gpus is not None else 'none'} "
                            f"({m.min_gpus_note})"))
    return Section("Memory", (
        f"Per GPU for the proposed shape ({human(m.params)} parameters, {m.bytes_per_param:g} "
        f"bytes/parameter of model state, {gib(m.model_states_bytes_unsharded)} unsharded) with "
        f"ZeRO-{m.zero_stage} over {m.num_gpus} GPU(s):",
        Table(("part", "per GPU"), rows), FigureRef("memory")))


def calibration_section(report: Report) -> Section | None:
    cal = report.calibration
    if cal is None:
        return None
    blocks: list[Block] = list(cal.paragraphs)
    if cal.table:
        blocks.append(Table(tuple(cal.table[0]), tuple(tuple(r) for r in cal.table[1:])))
    blocks += [FigureRef(f.name) for f in cal.figures]
    return Section(cal.title, tuple(blocks))


def beyond_section(b: BeyondSection) -> Section:
    """A beyond-compute-optimal part (budget.report.beyond) as blocks."""
    def block(kind: str, value: Any) -> Block:
        if kind == "table":
            return Table(tuple(value[0]), tuple(tuple(r) for r in value[1:]))
        if kind == "bullets":
            return Bullets(tuple(value))
        return FigureRef(value) if kind == "figure" else str(value)
    return Section(b.title, tuple(block(kind, value) for kind, value in b.parts
                                  if not (kind == "bullets" and not value)))


def sections(report: Report) -> list[Section]:
    """The proposal, in reading order."""
    out = [question_section(report), recommendation_section(report), laws_section(report),
           cost_section(report), *[beyond_section(b) for b in report.interval],
           memory_section(report)]
    cal = calibration_section(report)
    if cal is not None:
        out.insert(3, cal)
    out += [beyond_section(b) for b in report.beyond]
    out.append(Section("Risks", (Bullets(report.risks),)))
    out.append(Section("Sources", (Table(("constant", "source"), report.sources),)))
    return out


def _footer() -> str:
    return f"Generated by compute-budget {__version__} with 'budget report'."


def render_markdown(report: Report, figures: Sequence[Figure], figure_dir: str) -> str:
    """GitHub-flavoured Markdown; figures referenced as `figure_dir/name.png`. Every text is
    escaped (`md_escape`), as the HTML escapes it: a title or catalog name shows as typed."""
    by_name = {f.name: f for f in figures}
    lines = [f"# {md_escape(report.title)}", "", md_escape(summary(report)), ""]
    for sec in sections(report):
        lines += [f"## {md_escape(sec.title)}", ""]
        for block in sec.blocks:
            lines += _md_block(block, by_name, figure_dir) + [""]
    lines.append(md_escape(_footer()))
    return "\n".join(lines) + "\n"


# Characters Markdown (CommonMark + GFM, with $ for math) may read as markup; backslash-escaped.
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|$~&#!{}])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_escape(text: str) -> str:
    """Plain text as Markdown that renders as typed: markup characters backslash-escaped, one line."""
    flat = printable(" ".join(str(text).split("\n")))
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), flat)


def _md_cell(text: str) -> str:
    return md_escape(text)


def _md_block(block: Block, figures: dict[str, Figure], figure_dir: str) -> list[str]:
    if isinstance(block, Table):
        return ["| " + " | ".join(_md_cell(h) for h in block.headers) + " |",
                "|" + "---|" * len(block.headers)] + \
               ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
    if isinstance(block, Bullets):
        return [f"- {md_escape(item)}" for item in block.items]
    if isinstance(block, Code):
        fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", block.text)), default=0))
        return [fence, printable(block.text), fence]
    if isinstance(block, FigureRef):
        fig = figures.get(block.name)
        if fig is None:
            return []
        return [f"![{md_escape(fig.title)}]({figure_dir}/{fig.name}.png)", "", f"*{md_escape(fig.caption)}*"]
    return [md_escape(block)]


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
.summary { background: #eef4fb; border-left: 4px solid #1f77b4; padding: .6em 1em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; }
pre.code { background: #f6f6f6; padding: .6em; white-space: pre-wrap; font-size: .85em; }
footer { font-size: .75em; color: #888; }
#check { display: none; }
"""

CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var lines = Array.prototype.map.call(document.images, function (img) {
    return img.getAttribute("data-name") + " " + img.naturalWidth + "x" + img.naturalHeight;
  });
  var check = document.getElementById("check");
  check.textContent = "images " + document.images.length + "\\n" + lines.join("\\n");
  check.setAttribute("data-ready", "yes");
});
"""


def _esc(text: str) -> str:
    """HTML text: control characters made visible (`printable`), then markup escaped."""
    return html.escape(printable(text))


def render_html(report: Report, figures: Sequence[Figure], plan_json: str) -> str:
    """One self-contained HTML page: inline CSS, figures as data URIs, the plan JSON embedded."""
    by_name = {f.name: f for f in figures}
    esc = _esc
    body = [f"<h1>{esc(report.title)}</h1>", f'<p class="summary">{esc(summary(report))}</p>']
    for sec in sections(report):
        body.append(f"<section><h2>{esc(sec.title)}</h2>")
        body += [_html_block(block, by_name) for block in sec.blocks]
        body.append("</section>")
    safe_json = plan_json.replace("</", "<\\/")
    body += [f"<footer><p>{esc(_footer())}</p></footer>",
             '<pre id="check" data-ready="no"></pre>',
             f'<script type="application/json" id="plan-json">{safe_json}</script>',
             f"<script>{CHECK_SCRIPT}</script>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{esc(report.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _html_block(block: Block, figures: dict[str, Figure]) -> str:
    esc = _esc
    if isinstance(block, Table):
        head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
        rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                       for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Code):
        return f"<pre class=\"code\">{esc(block.text)}</pre>"
    if isinstance(block, FigureRef):
        fig = figures.get(block.name)
        if fig is None:
            return ""
        data = base64.b64encode(fig.png).decode("ascii")
        return (f'<figure><img data-name="{esc(fig.name)}" alt="{esc(fig.title)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{esc(fig.caption)}'
                f"</figcaption></figure>")
    return f"<p>{esc(block)}</p>"
