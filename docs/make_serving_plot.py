"""Draw docs/img/serving_latency_load.png: TTFT and TPOT percentiles against load for the
deployment `budget serve` sizes in docs/guide/serving.md's worked example.

Run from the repository root: python docs/make_serving_plot.py
It runs the documented command itself, with --plot, so the figure is that command's figure.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from budget.cli import main as budget

OUT = Path(__file__).with_name("img") / "serving_latency_load.png"
COMMAND = ["serve", "--model", "llama-3-8b", "--gpu", "h100", "--rate", "20", "--input-tokens",
           "2000", "--output-tokens", "300", "--ttft-ms", "500", "--tpot-ms", "40"]


def main() -> None:
    result = CliRunner().invoke(budget, [*COMMAND, "--plot", str(OUT)])
    if result.exit_code != 0:
        raise SystemExit(result.output)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
