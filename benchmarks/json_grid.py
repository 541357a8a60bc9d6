"""A fixed grid of `budget plan/memory/flops/serve --json` invocations, for restructurings.

Record the grid before a change and after it; the two files must be byte-identical except
where a commit names the bug fix that moved a number:

    python benchmarks/json_grid.py > before.jsonl     # on the old commit
    python benchmarks/json_grid.py > after.jsonl      # on the new one
    python benchmarks/json_grid.py --diff before.jsonl after.jsonl

Each line is {"args": [...], "exit": code, "json": ...}. Commands run in-process through
click's CliRunner, so the grid takes seconds.
"""

from __future__ import annotations

import json
import sys

GPUS = ["h100", "a100", "mi300x"]
GRID: list[list[str]] = []
for flops in ["1e19", "1e21", "1e23", "3e24"]:
    for gpu in GPUS:
        GRID.append(["plan", "--flops", flops, "--gpu", gpu])
for law in ["chinchilla", "epoch", "kaplan", "tokens-per-param"]:
    GRID.append(["plan", "--flops", "1e22", "--law", law])
for model in ["llama-2-7b", "llama-3-8b", "mixtral-8x7b", "gpt2", "llama-2-70b"]:
    GRID.append(["plan", "--model", model, "--tokens", "2e12", "--gpu", "h100", "--num-gpus", "256"])
    GRID.append(["memory", "--model", model, "--gpu", "h100"])
    GRID.append(["flops", "--model", model])
GRID += [
    ["plan", "--flops", "1e21", "--family", "gpt2"],
    ["plan", "--flops", "1e21", "--family", "llama"],
    ["plan", "--days", "30", "--num-gpus", "1024", "--gpu", "h100"],
    ["plan", "--gpu-hours", "100000", "--gpu", "a100"],
    ["plan", "--budget-usd", "1e6", "--gpu", "h100"],
    ["plan", "--params", "7e9", "--tokens", "1e12"],
    ["plan", "--flops", "1e21", "--zero", "3", "--recompute", "full"],
    ["plan", "--flops", "1e21", "--precision", "fp8", "--gpu", "h100"],
    ["plan", "--flops", "1e21", "--mfu", "0.5"],
    ["plan", "--flops", "1e23", "--gpu", "h100", "--num-gpus", "1024"],
    ["plan", "--forward-flops", "3.8e9", "--samples", "1.28e6", "--epochs", "90", "--gpu", "v100",
     "--precision", "fp16", "--mfu", "0.5"],
    ["plan", "--model", "llama-2-70b", "--tokens", "2e12", "--gpu", "a100", "--num-gpus", "2048"],
    ["plan", "--flops", "1e21", "--inference-tokens", "1e12"],
    ["plan", "--flops", "1e21", "--unique-tokens", "1e10"],
    ["memory", "--params", "7e9"],
    ["memory", "--params", "7e9", "--zero", "3", "--num-gpus", "64"],
    ["memory", "--params", "70e9", "--gpu", "h100", "--recompute", "full"],
    ["memory", "--model", "llama-2-7b", "--inference"],
    ["flops", "--n-layer", "12", "--d-model", "768"],
    ["flops", "--n-layer", "32", "--d-model", "4096", "--family", "llama"],
    ["flops", "--params", "7e9", "--tokens", "1e12"],
    ["serve", "--model", "llama-2-7b", "--gpu", "a100"],
    ["serve", "--model", "llama-3-8b", "--gpu", "h100"],
    ["serve", "--model", "mixtral-8x7b", "--gpu", "h100"],
    ["roofline", "--model", "llama-2-7b", "--gpu", "a100"],
]


def run() -> None:
    from click.testing import CliRunner

    from budget.cli import main

    runner = CliRunner()
    for args in GRID:
        result = runner.invoke(main, [*args, "--json"])
        try:
            out = json.loads(result.stdout)
        except ValueError:
            out = result.stdout.strip()[-300:]
        print(json.dumps({"args": args, "exit": result.exit_code, "json": out}, sort_keys=True))


def diff(before: str, after: str) -> int:
    old = {tuple(r["args"]): r for r in map(json.loads, open(before))}
    new = {tuple(r["args"]): r for r in map(json.loads, open(after))}
    changed = 0
    for key in old:
        if old[key] != new.get(key):
            changed += 1
            print("changed:", " ".join(key))
    print(f"{changed} of {len(old)} invocations changed")
    return 1 if changed else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--diff"]:
        sys.exit(diff(sys.argv[2], sys.argv[3]))
    run()
