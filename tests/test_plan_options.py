"""Defaults declared once: the plan options live in one table (budget.plan_options) whose
defaults are the PlanRequest fields', the click options and the Python API are generated from it,
and PlanRequest.from_options is the one place options become a request."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from click.testing import CliRunner

import budget
from budget.cli import main
from budget.plan_options import BUDGET_OPTIONS, TRAINING_OPTIONS
from budget.planner import PlanRequest

ROOT = Path(__file__).resolve().parent.parent
# a literal default restated outside its one declaration: the 2048 context, Llama 3's 0.41 MFU,
# 8 GPUs (`default=8`, `num_gpus=8`, `num_gpus: int = 8`)
LITERALS = re.compile(r"(?<![\w.])(2048|0\.41)(?![\w.])|default=8\b|num_gpus(: int)? ?= ?8\b")


def test_no_literal_default_in_the_commands_or_the_api():
    hits = []
    for path in [*sorted((ROOT / "budget" / "cli").glob("*.py")), ROOT / "budget" / "api.py"]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if LITERALS.search(code):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "literal defaults outside their declaration:\n" + "\n".join(hits)


def test_the_literal_check_can_fail():
    assert LITERALS.search('click.option("--seq-len", default=2048)')
    assert LITERALS.search("num_gpus: int = 8") and LITERALS.search("mfu = 0.41")
    assert not LITERALS.search("seq_len = 20480") and not LITERALS.search("default=80")


def test_every_plan_option_is_generated_from_the_table_with_the_requests_default():
    command = main.commands["plan"]
    params = {p.name: p for p in command.params}
    request_fields = {f.name: f for f in fields(PlanRequest)}
    for spec in BUDGET_OPTIONS + TRAINING_OPTIONS:
        param = params[spec.name]
        assert spec.flag in param.opts and param.help == spec.help
        assert param.default == (spec.shown_default() if not spec.multiple else ()), spec.name
        if spec.name in request_fields and request_fields[spec.name].default is not None \
                and spec.kind != "band":
            if spec.default_value() is not None:
                assert spec.default_value() == request_fields[spec.name].default


def test_command_and_api_build_the_same_request():
    """The command's defaults and the API's are the request's: the same plan, key for key."""
    import json

    cli = json.loads(CliRunner().invoke(main, ["plan", "--flops", "1e21", "--json"]).stdout)
    api = budget.plan(flops=1e21).to_dict()
    assert json.loads(json.dumps(api)) == cli
    assert cli["num_gpus"] == PlanRequest.__dataclass_fields__["num_gpus"].default


def test_from_options_is_the_one_place():
    """Neither the command nor the API constructs PlanRequest(...) itself."""
    for path in (ROOT / "budget" / "cli" / "plan.py", ROOT / "budget" / "api.py",
                 ROOT / "budget" / "cli" / "report.py"):
        assert not re.search(r"PlanRequest\(", path.read_text(encoding="utf-8")), path
