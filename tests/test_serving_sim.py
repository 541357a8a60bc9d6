"""The continuous-batching simulator: step times against the roofline, Little's law, the low-load
limit, the roofline ceiling, the M/D/1 closed form, and `budget serve --rate`."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import budget.serving.simulate as SIM
from budget.cli import main
from budget.errors import BudgetError
from budget.hardware import roofline as R
from budget.hardware.catalog import load_catalog
from budget.models.named import get_model
from budget.serving import cost as S
from budget.serving.deploy import Config, replica
from budget.serving.simulate import Scheduler, mean_concurrency, simulate
from budget.serving.steps import step_model
from budget.serving.traffic import Traffic, read_trace


@pytest.fixture(scope="module")
def h100():
    return load_catalog(use_env=False).get("h100")


@pytest.fixture(scope="module")
def rep8(h100):
    return replica(get_model("llama-3-8b").arch, Config(h100))


def test_step_model_is_the_roofline_of_the_ops(h100):
    """One whole prompt, or one batch of decodes, costs exactly `cost.step` of the roofline ops
    (Llama-3-8B on one H100; Llama-2-70B tp 4 with its all-reduces; Mixtral-8x7B tp 2, whose
    experts' weights read grow with the experts the batch touches)."""
    for name, tp in (("llama-3-8b", 1), ("llama-2-70b", 4), ("mixtral-8x7b", 2)):
        arch = get_model(name).arch
        sm = step_model(arch, h100, "bf16", 2.0, 2.0, tp, 0.7, 0.9, 2048, 256)
        pre = S.step(R.transformer_ops(arch, "prefill", 1, 2000, "bf16", 2.0, 2.0), h100, "bf16",
                     arch, tp, 2000, 0.7, 0.9)
        dec = S.step(R.transformer_ops(arch, "decode", 64, 2150, "bf16", 2.0, 2.0), h100, "bf16",
                     arch, tp, 64, 0.7, 0.9)
        assert sm.prefill_s(2000) == pytest.approx(pre.time_s, rel=1e-12)
        assert sm.decode_s(64, 2150) == pytest.approx(dec.time_s, rel=1e-12)


def test_decode_fast_forward_changes_nothing(rep8, monkeypatch):
    """Summing decode-only stretches in closed form gives the step-by-step event loop's times."""
    a, i, o = Traffic(3, 2000, 300, 500, 100).sample(2000, 1)
    fast = simulate(rep8.step, rep8.scheduler, a, i, o)
    monkeypatch.setattr(SIM, "FAST_FORWARD", 10**9)
    slow = simulate(rep8.step, rep8.scheduler, a, i, o)
    assert fast.iterations == slow.iterations
    np.testing.assert_allclose(fast.finish, slow.finish, rtol=1e-12)
    np.testing.assert_allclose(fast.first_token, slow.first_token, rtol=1e-12)


def test_littles_law(rep8):
    """L = lambda W (Little 1961): time-averaged requests in the system = rate x mean latency,
    within 2%, 10,000 requests at 8 requests/s (stable, 2000 +- 500 in, 300 +- 100 out)."""
    a, i, o = Traffic(8, 2000, 300, 500, 100).sample(10_000, 0)
    tr = simulate(rep8.step, rep8.scheduler, a, i, o)
    assert mean_concurrency(tr.arrival, tr.finish) == pytest.approx(
        8 * float(np.mean(tr.finish - tr.arrival)), rel=0.02)


def test_low_load_ttft_is_the_prefill_and_tpot_the_decode_step(rep8):
    """Alone in the replica, TTFT is one prefill step of the whole prompt (2,000 tokens < the
    2,048-token iteration budget) and TPOT the batch-1 decode step at the mean context."""
    a, i, o = np.arange(50) * 100.0, np.full(50, 2000), np.full(50, 300)  # 100 s apart
    tr = simulate(rep8.step, rep8.scheduler, a, i, o)
    np.testing.assert_allclose(tr.ttft, rep8.step.prefill_s(2000), rtol=1e-9)
    np.testing.assert_allclose(tr.tpot, rep8.step.decode_s(1, 2000 + 300 / 2), rtol=1e-6)


def test_throughput_never_exceeds_the_roofline(rep8):
    """Overloaded (60 requests/s, about 5x capacity), tokens through the model per second stay
    under the roofline ceiling (token-linear FLOPs at peak x 0.7) yet reach a fair part of it."""
    a, i, o = Traffic(60, 2000, 300).sample(3000, 0)
    tr = simulate(rep8.step, rep8.scheduler, a, i, o)
    tokens_per_s = float((i.sum() + o.sum()) / (tr.finish.max() - a.min()))
    bound = rep8.step.tokens_per_s_bound()
    assert tokens_per_s <= bound
    assert tokens_per_s > 0.3 * bound


def test_md1_closed_form(rep8):
    """One request at a time (max_seqs 1), fixed 1,000-token prompts, one output token: an M/D/1
    queue with service D = the prefill step. Pollaczek-Khinchine: mean wait = rho D / (2 (1 -
    rho)); at rho = 0.5 the mean TTFT is 1.5 D (50,000 requests, within 2%)."""
    sched = Scheduler(rep8.scheduler.kv_blocks, max_seqs=1)
    D = rep8.step.prefill_s(1000)
    rho = 0.5
    a, i, o = Traffic(rho / D, 1000, 1).sample(50_000, 3)
    tr = simulate(rep8.step, sched, a, i, o)
    assert float(np.mean(tr.ttft)) == pytest.approx(D + rho * D / (2 * (1 - rho)), rel=0.02)


def test_kv_capacity_limits_concurrency(rep8):
    """With 400 KV blocks of 16 tokens, requests of 2,000 + 300 tokens (144 blocks) run two at a
    time: the reserved share never passes 2 x 144 / 400."""
    sched = Scheduler(400)
    a, i, o = Traffic(50, 2000, 300).sample(300, 0)
    tr = simulate(rep8.step, sched, a, i, o)
    assert tr.kv_reserved_peak == pytest.approx(2 * 144 / 400)
    with pytest.raises(BudgetError, match="needs 144 KV blocks"):
        simulate(rep8.step, Scheduler(100), a, i, o)


def test_trace_file(tmp_path):
    good = tmp_path / "t.csv"
    good.write_text("input_tokens,output_tokens\n100,20\n300,40\n")
    assert read_trace(good) == ((100, 20), (300, 40))
    bad = tmp_path / "b.csv"
    bad.write_text("100,-3\n")
    with pytest.raises(BudgetError, match="line 1"):
        read_trace(bad)
    r = CliRunner().invoke(main, ["serve", "--model", "llama-3-8b", "--rate", "2", "--trace",
                                  str(bad)])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1


DONE_WHEN = ["serve", "--model", "llama-3-8b", "--gpu", "h100", "--rate", "20", "--input-tokens",
             "2000", "--output-tokens", "300", "--ttft-ms", "500", "--tpot-ms", "40"]


def test_cli_under_load_prints_percentiles_replicas_and_price(tmp_path):
    r = CliRunner().invoke(main, [*DONE_WHEN, "--plot", str(tmp_path / "l.png")])
    assert r.exit_code == 0, r.output
    for text in ("TTFT p50 / p95 / p99", "TPOT p50 / p95 / p99", "replicas of 1 x h100-sxm-80gb",
                 "$ per 1M tokens", "throughput"):
        assert text in r.output
    assert (tmp_path / "l.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    j = json.loads(CliRunner().invoke(main, [*DONE_WHEN, "--json"]).output)
    d = j["deployment"]
    assert d["meets"] and d["ttft_ms"]["p95"] <= 500 and d["tpot_ms"]["p95"] <= 40
    assert d["usd_per_million_tokens"] == pytest.approx(
        d["gpus"] * 3.49 / 3600 / (20 * 2300) * 1e6)
    fewer = json.loads(CliRunner().invoke(main, [*DONE_WHEN, "--json", "--replicas",
                                                 str(d["replicas"] - 1)]).output)
    assert d["replicas"] == 1 or not fewer["deployment"]["meets"]


def test_cli_search_never_prices_what_cannot_hold_the_model():
    """Llama-2-70B: every 1-GPU bf16 configuration on an 80 GB device is refused, not priced;
    the winner is no dearer than the runner-up."""
    r = CliRunner().invoke(main, ["serve", "--model", "llama-2-70b", "--rate", "2",
                                  "--input-tokens", "1000", "--output-tokens", "200",
                                  "--ttft-ms", "2000", "--tpot-ms", "100", "--search", "--json",
                                  "--requests", "300"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)["search"]
    refused = {x["config"]: x["reason"] for x in s["refused"]}
    assert "does not fit" in refused["h100-sxm-80gb tp1 bf16 weights, bf16 KV, aggregated"]
    assert s["best"]["usd_per_hour"] <= s["runner_up"]["usd_per_hour"]
    assert s["best"]["meets"] and s["runner_up"]["meets"]
    assert not math.isnan(s["best"]["ttft_ms"]["p99"])


def test_cli_disaggregated_prices_the_kv_transfer_on_nvlink():
    """Llama-3-8B's prompt KV cache (128 KiB/token x 2,000 tokens = 262 MB, bf16) crosses the
    H100's 450 GB/s-per-direction NVLink (catalog scale_up_gbs_per_dir) in 0.58 ms."""
    r = CliRunner().invoke(main, [*DONE_WHEN, "--mode", "disaggregated", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)["deployment"]
    assert d["kv_transfer_ms"] == pytest.approx(131072 * 2000 / 450e9 * 1e3)
    assert d["prefill_replicas"] >= 1 and d["decode_replicas"] >= 1 and d["meets"]
    assert d["gpus"] == d["prefill_replicas"] + d["decode_replicas"]


def test_cli_edges_one_line_exit_2_or_vacuous():
    """A rate no fleet we size can carry is refused on one line; a TPOT target over one-token
    outputs has nothing to measure and does not block (TPOT printed as '-')."""
    r = CliRunner().invoke(main, ["serve", "--model", "llama-3-8b", "--rate", "1e7",
                                  "--ttft-ms", "100"])
    assert r.exit_code == 2 and "replicas needed" in r.output
    assert len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(main, ["serve", "--model", "llama-3-8b", "--rate", "5",
                                  "--output-tokens", "1", "--tpot-ms", "10"])
    assert r.exit_code == 0 and "TPOT p50 / p95 / p99: - / - / - ms" in r.output
    r = CliRunner().invoke(main, ["serve", "--model", "llama-3-8b", "--ttft-ms", "100"])
    assert r.exit_code == 2 and "need --rate" in r.output
