"""The scoreboard as text, and as a log-log PNG of predicted against measured step time."""

from __future__ import annotations

from budget.validation.score import CALCULON_T5, Scoreboard


def render(sb: Scoreboard) -> str:
    """Per row predicted vs measured seconds per step, in-sample and leave-one-out error; suites."""
    lines = ["Step time: published measured runs against the planner's step-time model",
             f"{'suite':<15} {'run':<21} {'device/precision':<20} {'measured s':>10} {'predicted s':>11}"
             f" {'error':>7} {'LOO':>7}"]
    for r in sb.rows:
        lines.append(f"{r.suite:<15} {r.id:<21} {r.device + '/' + r.precision:<20} "
                     f"{r.measured_step_s:>10.3f} {r.predicted_step_s:>11.3f} {r.error_pct:>+6.1f}% "
                     f"{r.loo_error_pct:>+6.1f}%")
    lines += ["", f"{'suite':<15} {'rows':>4} {'mean':>7} {'max':>7} {'LOO mean':>9} {'LOO max':>8}  bound"]
    for s in sb.suites:
        bound = "" if s.bound is None else (
            f"{s.bound[0]} mean <= {s.bound[1]:g}%" + ("" if s.bound[2] is None else f", max <= {s.bound[2]:g}%")
            + ("  ok" if s.passes else "  FAILS"))
        lines.append(f"{s.suite:<15} {s.rows:>4} {s.mean_pct:>6.2f}% {s.max_pct:>6.2f}% "
                     f"{s.loo_mean_pct or 0:>8.2f}% {s.loo_max_pct or 0:>7.2f}%  {bound}")
    lines.append(f"Korthikanti Table 5 against Calculon ({CALCULON_T5[0]}% mean, {CALCULON_T5[1]}% max, "
                 f"in-sample): LOO mean x{sb.calculon_ratio['mean']:.2f}, LOO max x{sb.calculon_ratio['max']:.2f}")
    k = sb.constants
    factors = ", ".join(f"{g} {v:.3f}" for g, v in sorted(k.kernel_factor.items()) if g != "*")
    lines.append(f"Constants fitted on every row: kernel factor {factors} (pooled {k.kernel_factor['*']:.3f}); "
                 f"h_half {k.h_half:g}")
    lines.append("budget/hardware/efficiency.toml holds this fit" if not sb.catalog_drift else
                 "budget/hardware/efficiency.toml differs from this fit: " + "; ".join(sb.catalog_drift))
    lines += ["", "Memory: published figures against the planner's memory model",
              f"{'suite':<15} {'figure':<24} {'published GB':>12} {'predicted GB':>12} {'error':>7}"]
    for m in sb.memory:
        lines.append(f"{m.suite:<15} {m.id:<24} {m.published_bytes / 1e9:>12.3f} "
                     f"{m.predicted_bytes / 1e9:>12.3f} {m.error_pct:>+6.1f}%")
    if sb.serving:
        lines += ["", "Serving: published measured figures against budget serve's roofline steps and "
                      "continuous-batching simulator (no bound; nothing fitted to them)",
                  f"{'figure':<66} {'unit':<16} {'measured':>9} {'predicted':>9} {'error':>7}"]
        for v in sb.serving:
            lines.append(f"{v.name:<66} {v.unit:<16} {v.measured:>9,.1f} {v.predicted:>9,.1f} "
                         f"{100 * v.error:>+6.1f}%")
        mean = sum(abs(v.error) for v in sb.serving) / len(sb.serving)
        lines.append(f"serving: {len(sb.serving)} rows, mean |error| {100 * mean:.1f}%, max "
                     f"{100 * max(abs(v.error) for v in sb.serving):.1f}%")
    assumed = [r for r in sb.rows if r.assumed]
    if assumed:
        lines += ["", "Assumed where the source is silent:"]
        lines += [f"  {r.suite} {r.id}: {r.assumed}" for r in assumed]
    return "\n".join(line.rstrip() for line in lines)


def plot(sb: Scoreboard, path: str) -> None:
    """Predicted against measured seconds per step, log-log, one point per row, the y = x line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for suite in dict.fromkeys(r.suite for r in sb.rows):
        rows = [r for r in sb.rows if r.suite == suite]
        ax.scatter([r.measured_step_s for r in rows], [r.loo_step_s for r in rows], label=suite, s=28)
    lo = min(min(r.measured_step_s, r.loo_step_s) for r in sb.rows) / 1.5
    hi = max(max(r.measured_step_s, r.loo_step_s) for r in sb.rows) * 1.5
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
    ax.plot([lo, hi], [lo * 1.1, hi * 1.1], color="grey", lw=0.6, ls="--")
    ax.plot([lo, hi], [lo / 1.1, hi / 1.1], color="grey", lw=0.6, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured seconds per step")
    ax.set_ylabel("predicted seconds per step (leave-one-out)")
    ax.set_title("budget validate: step time, published runs (dashed: ±10%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
