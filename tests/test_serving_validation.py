"""Serving predictions against published TensorRT-LLM measurements: each row's error is pinned
to the band it reaches today (rounded up to the next 5%), so a change that moves a prediction
further from the measurement fails here. Sources: TensorRT-LLM perf-overview.md at 00f37686
(Llama 3.1 8B and Llama 3.3 70B tables) and performance.md at 138f96d4 (v0.6.1 peak throughput,
v0.5 first-token latency); the rows name theirs."""

import dataclasses

import pytest

from budget.serving.validation import ValidationRow, rows

# |predicted / measured - 1| at most (today's error in the comment)
BANDS = {
    "serve offline Llama 3.1 8B FP8 H100 TP1 128/128": 0.10,  # +6%
    "serve offline Llama 3.1 8B FP8 H100 TP1 1000/1000": 0.30,  # -27%
    "serve offline Llama 3.1 8B FP8 H100 TP1 2048/128": 0.05,  # -3%
    "serve offline Llama 3.1 8B FP8 H100 TP1 2048/2048": 0.40,  # -36%
    "serve offline Llama 3.1 8B FP8 H200 TP1 1000/1000": 0.20,  # -19%
    "serve offline Llama 3.3 70B FP8 H100 TP2 128/128": 0.15,  # +10%
    "serve offline Llama 3.3 70B FP8 H100 TP2 2048/2048": 0.30,  # -27%
    "serve static batch LLaMA 7B FP8 H100 bs768 128/128": 0.30,  # +28%
    "serve static batch LLaMA 7B FP8 H100 bs48 2048/2048": 0.15,  # +11%
    "serve static batch LLaMA 7B FP16 A100 bs384 128/128": 0.05,  # -2%
    "serve first token LLaMA 7B FP8 H100 TP1 128 in": 0.65,  # -64%: launch overheads at 128 tokens
    "serve first token LLaMA 7B FP8 H100 TP1 2048 in": 0.35,  # -31%
    "serve first token LLaMA 7B FP16 A100 TP1 2048 in": 0.05,  # +4%
    "serve first token LLaMA 70B (Llama-2-70B shape) FP8 H100 TP4 2048 in": 0.20,  # -16%
    "serve first token LLaMA 70B (Llama-2-70B shape) FP16 A100 TP4 2048 in": 0.05,  # +5%
}


@pytest.fixture(scope="module")
def table():
    return rows()


def test_every_row_within_its_band(table):
    assert {r.name for r in table} == set(BANDS)
    for r in table:
        assert abs(r.error) <= BANDS[r.name], (r.name, r.error)


def test_rows_are_frozen_sourced_and_serialisable(table):
    for r in table:
        assert isinstance(r, ValidationRow) and r.measured > 0 and r.predicted > 0
        assert "TensorRT-LLM" in r.source and r.unit
        d = r.to_dict()
        assert set(d) == {"name", "unit", "measured", "predicted", "source", "error"}
        assert d["error"] == pytest.approx(r.predicted / r.measured - 1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.predicted = 0.0  # type: ignore[misc]
