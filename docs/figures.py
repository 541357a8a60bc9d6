"""Draw the docs' figures that no output block writes. Run from anywhere: python docs/figures.py

`python docs/regen.py` calls this after regenerating the blocks; the blocks themselves write the
figures their commands draw (`budget roofline --plot docs/img/roofline.png`, `budget frontier --png
docs/img/frontier.png`). What this draws:

- docs/img/cnn_flops_vs_phi.png: EfficientNet-B0's forward FLOPs against phi. The realised curve is
  budget.models.efficientnet at each phi (channels rounded to multiples of 8, repeats rounded up,
  whole pixels); the smooth lines are base x (alpha beta^2 gamma^2)^phi and base x 2^phi, the
  growth Tan & Le 2019 §3.3 aim for.
- docs/img/fit_isoflop.png, fit_frontier.png, fit_residuals.png: `budget fit` on the Chinchilla
  points shipped in tests/data (the command in docs/guide/fit.md).
- docs/img/validate.png: `budget validate --plot docs/img/validate.png` (README and
  docs/guide/validate.md): predicted against measured step time, one point per published run.
- docs/img/serving_latency_load.png: docs/make_serving_plot.py (docs/guide/serving.md).

Figures of real torch sweeps (docs/img/sweep_*.png) and screenshots (report_screenshot.png,
sweep_mlflow_ui.png, drawn by docs/img/sweep_screenshot.py) are measured on a machine and kept as
they were made; the pages that show them say when and how.
"""

from __future__ import annotations

import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
FIT_COMMAND = ("budget fit --csv tests/data/chinchilla_svg_extracted_data.csv --drop-highest-loss 5 "
               "--approach 2 --approach 3 --bootstrap 4000 --seed 42 --target-flops 5.76e23 "
               "--plot docs/img --json")


def cnn_flops_vs_phi(out: Path = IMG / "cnn_flops_vs_phi.png") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from budget.models import cnn
    from budget.models import efficientnet as E

    spec = cnn.load_network("efficientnet-b0")
    coefficients = E.Coefficients()
    phis = np.arange(0.0, 7.001, 0.02)
    realised = [cnn.evaluate(spec, coefficients.scaling(float(p))).flops for p in phis]
    base = realised[0]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.step(phis, realised, where="post", label="rounded network (what you would train)")
    ax.plot(phis, base * coefficients.product ** phis, "--",
            label=f"base x (alpha·beta²·gamma²)^phi = base x {coefficients.product:.3f}^phi")
    ax.plot(phis, base * 2.0 ** phis, ":", label="base x 2^phi")
    for phi in range(0, 8):
        flops = cnn.evaluate(spec, coefficients.scaling(float(phi))).flops
        ax.annotate(f"{flops / 1e9:.2g} G", (phi, flops), textcoords="offset points",
                    xytext=(-8, 8), fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("compound coefficient phi (alpha 1.2, beta 1.1, gamma 1.15)")
    ax.set_ylabel("forward FLOPs per 224·r px image")
    ax.set_title("EfficientNet-B0 compound scaling: forward FLOPs vs phi")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def fit_figures() -> None:
    """The fit guide's figures, from the very command the guide shows (run in the repository)."""
    from click.testing import CliRunner

    from budget.cli import main

    result = CliRunner().invoke(main, shlex.split(FIT_COMMAND)[1:], prog_name="budget")
    if result.exit_code != 0:
        raise SystemExit(f"figures: {FIT_COMMAND!r} failed: {result.output}")


def validate_figure() -> None:
    """The scoreboard's figure, from `budget validate --plot` (exit 1 only when a bound fails)."""
    from click.testing import CliRunner

    from budget.cli import main

    result = CliRunner().invoke(main, ["validate", "--plot", "docs/img/validate.png"], prog_name="budget")
    if result.exit_code not in (0, 1):
        raise SystemExit(f"figures: budget validate --plot failed: {result.output}")


def serving_figure() -> None:
    """The serving guide's latency-against-load figure (docs/make_serving_plot.py)."""
    import runpy

    runpy.run_path(str(ROOT / "docs" / "make_serving_plot.py"), run_name="__main__")


def make_figures() -> None:
    import os

    here = Path.cwd()
    os.chdir(ROOT)
    try:
        print(f"wrote {cnn_flops_vs_phi()}")
        fit_figures()
        print("wrote docs/img/fit_*.png")
        validate_figure()
        print("wrote docs/img/validate.png")
        serving_figure()
        print("wrote docs/img/serving_latency_load.png")
    finally:
        os.chdir(here)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))
    make_figures()
