"""The Python API returns the very objects the commands' --json prints (budget.api)."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import budget
from budget.cli import main
from budget.errors import BudgetError


def cli_json(*args):
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_plan_is_the_plan_json_prints():
    p = budget.plan(flops=1e21, gpu="h100")
    assert type(p).__name__ == "Plan" and p.recommended == "epoch"
    assert p.to_dict() == cli_json("plan", "--flops", "1e21", "--gpu", "h100")


def test_plan_options_and_budget_forms():
    p = budget.plan(params=7e9, tokens=1.4e11, gpu="a100", num_gpus=16, law="kaplan",
                    mfu_band=[0.3, 0.5])
    assert p.to_dict() == cli_json("plan", "--params", "7e9", "--tokens", "1.4e11", "--gpu",
                                   "a100", "--num-gpus", "16", "--law", "kaplan")
    assert p.compute_flops == pytest.approx(6 * 7e9 * 1.4e11)


def test_memory_and_flops_are_what_json_prints():
    assert budget.memory(params=7e9, gpu="h100", zero_stage=3).to_dict() == \
        cli_json("memory", "--params", "7e9", "--gpu", "h100", "--zero", "3")
    assert budget.flops(n_layer=12, d_model=768, tokens=3e11).to_dict() == \
        cli_json("flops", "--n-layer", "12", "--d-model", "768", "--tokens", "3e11")


def test_bad_input_is_a_budget_error_naming_it():
    with pytest.raises(BudgetError, match="unknown plan option"):
        budget.plan(flops=1e21, gpus="h100")
    with pytest.raises(BudgetError, match="unknown accelerator 'h10'"):
        budget.plan(flops=1e21, gpu="h10")
    with pytest.raises(BudgetError, match="d_model 200 is not a multiple of the llama family's head_dim 128; give n_head"):
        budget.memory(n_layer=2, d_model=200)


def test_import_budget_stays_light():
    """`import budget` loads no planner, numpy, torch, mlflow or scipy until an API name is used."""
    code = ("import sys, budget; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('budget', 'numpy', 'torch', 'mlflow', 'scipy', 'pandas', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['budget']"


def test_api_guide_example_runs_as_a_doctest():
    """The API guide's block (docs/guide/api.md) is real: it runs as a doctest."""
    import doctest
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "guide" / "api.md").read_text(encoding="utf-8")
    section = text.split("# Python API", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    test = doctest.DocTestParser().get_doctest(block, {}, "API guide", "docs/guide/api.md", 0)
    assert len(test.examples) >= 6
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0
