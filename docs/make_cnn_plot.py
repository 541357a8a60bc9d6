"""Draw docs/img/cnn_flops_vs_phi.png: EfficientNet-B0's forward FLOPs against phi.

Run from the repository root: python docs/make_cnn_plot.py
The realised curve is budget.models.efficientnet at each phi (channels rounded to multiples of 8,
repeats rounded up, whole pixels); the smooth lines are base x (alpha beta^2 gamma^2)^phi and
base x 2^phi, the growth Tan & Le 2019 §3.3 aim for.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from budget.models import cnn  # noqa: E402
from budget.models import efficientnet as E  # noqa: E402

OUT = Path(__file__).with_name("img") / "cnn_flops_vs_phi.png"


def main() -> None:
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
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
