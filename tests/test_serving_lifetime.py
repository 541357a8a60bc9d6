"""`plan --inference-tokens T --serving PROFILE`: lifetime inference priced as the model will be
served (simulated deployment at the stated traffic and targets), not at 2N FLOPs per token."""

import json

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.errors import BudgetError
from budget.serving.lifetime import parse_serving

PROFILE = "rate=20,input=2000,output=300,ttft-ms=500,tpot-ms=40"


def test_parse_serving():
    s = parse_serving(PROFILE + ",percentile=99,weights=fp8")
    assert (s.traffic.rate, s.traffic.input_tokens, s.traffic.output_tokens) == (20, 2000, 300)
    assert (s.targets.ttft_ms, s.targets.tpot_ms, s.targets.percentile) == (500, 40, 99)
    assert s.weights == "fp8" and s.kv == "bf16"
    for bad, match in (("rate=20,input=2000", "lacks output"), ("rate=x,input=1,output=1", "number"),
                       ("speed=3", "not one of"), ("rate=-1,input=1,output=1", "--rate")):
        with pytest.raises(BudgetError, match=match):
            parse_serving(bad)


def test_cli_bad_serving_is_one_line():
    r = CliRunner().invoke(main, ["plan", "--flops", "1e21", "--inference-tokens", "1e12",
                                  "--serving", "rate=20"])
    assert r.exit_code == 2 and "lacks input, output" in r.output
    assert "Traceback" not in r.output


def test_plan_prices_inference_as_served():
    """Each priced point's inference dollars = T x its deployment's $ per token; the served
    deployment is the simulated one (replicas of the family shape on the plan's GPU)."""
    T = 2e12
    r = CliRunner().invoke(main, ["plan", "--flops", "1e22", "--gpu", "h100", "--json",
                                  "--inference-tokens", str(T), "--serving", PROFILE])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["beyond"]["inference"]
    assert rows
    for row in rows:
        for pt in (row["reference"], row["chosen"]):
            s = pt["served"]
            assert s["gpu"] == "h100-sxm-80gb" and s["replicas"] >= 1
            assert pt["inference_usd"] == pytest.approx(T * s["usd_per_million_tokens"] / 1e6)
            assert s["usd_per_million_tokens"] == pytest.approx(
                s["replicas"] * s["tp"] * 3.49 / 3600 / (20 * 2300) * 1e6)
    plain = json.loads(CliRunner().invoke(main, ["plan", "--flops", "1e22", "--gpu", "h100",
                                                 "--json", "--inference-tokens", str(T)]).output)
    assert all(p["reference"]["served"] is None for p in plain["beyond"]["inference"])
