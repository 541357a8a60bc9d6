"""Parallel layouts: Korthikanti's activation formulas, memory fits, collectives and the layout
search. Published runs are scored by `budget validate` (tests/test_validate.py)."""

import time

import pytest

from budget.errors import BudgetError
from budget.hardware.catalog import load_catalog
from budget.models.arch import Architecture
from budget.training.communication import cluster_for, ring_time, step_time
from budget.training.layout_search import Setting, candidates, fastest, fewest_gpus
from budget.training.parallel import (
    Layout,
    first_stage_activation_bytes,
    layer_activation_bytes,
    layout_memory,
    parse_layout,
)

CAT = load_catalog(use_env=False)
A100, H100 = CAT.get("a100-sxm-80gb"), CAT.get("h100-sxm-80gb")


def gpt(L, h, a, s=2048, V=51200):
    """Megatron GPT: 4h GeLU MLP, LayerNorm, learned positions, tied embeddings, biases."""
    return Architecture(n_layer=L, d_model=h, n_head=a, n_kv_head=a, head_dim=h // a, d_ff=4 * h,
                        vocab_size=V, n_ctx=s, mlp="plain", activation="gelu", norm="layernorm",
                        positions="learned", tied_embeddings=True, bias="all")


GPT3 = gpt(96, 12288, 96)


@pytest.mark.parametrize("tp,sp,recompute,flash,coeff", [
    (1, False, "none", False, 34 + 5 * 96 * 2048 / 12288),         # Eq. 1: sbh(34 + 5as/h)
    (8, False, "none", False, 10 + 24 / 8 + 5 * 96 * 2048 / (12288 * 8)),  # Eq. 2
    (8, True, "none", False, 34 / 8 + 5 * 96 * 2048 / (12288 * 8)),  # Eq. 4
    (8, False, "selective", False, 10 + 24 / 8),                    # Table 2, TP + selective
    (8, True, "selective", False, 34 / 8),                          # Table 2, TP + SP + selective
    (8, True, "none", True, 34 / 8),                                # FlashAttention stores no scores
])
def test_korthikanti_per_layer_activations(tp, sp, recompute, flash, coeff):
    """Korthikanti et al. 2022 (arXiv:2205.05198) Table 2 / Eq. 1, 2, 4 on GPT-3 175B
    (a 96, h 12288, s 2048: 5as/h = 80, §5), bytes per layer in units of sbh."""
    lay = Layout(tp=tp, sp=sp, recompute=recompute, flash=flash, mb=1)
    sbh = 2048 * 1 * 12288
    assert layer_activation_bytes(GPT3, lay, 2048) / sbh == pytest.approx(coeff)


def test_first_stage_holds_L_layers_regardless_of_p():
    """Korthikanti Eq. 5/6: with 1F1B and m >= p the first stage holds p x L/p = L layers' worth
    (34 sbhL/t with SP + selective), whatever p; interleaving multiplies by 1 + (p-1)/(p v)."""
    arch = gpt(96, 12288, 96)
    def lay(p: int, v: int = 1) -> Layout:
        return Layout(tp=8, pp=p, vp=v, ga=64, recompute="selective", sp=True)

    layers = [first_stage_activation_bytes(arch, lay(p), 2048) - 2048 * 12288 * p / 8 for p in (2, 4, 8)]
    want = 34 * 2048 * 12288 * 96 / 8
    assert layers == pytest.approx([want] * 3, rel=1e-9)
    inter = first_stage_activation_bytes(arch, lay(8, 3), 2048) - 2048 * 12288 * 8 / 8
    assert inter == pytest.approx(want * (1 + 7 / 24))


# Published runs (Narayanan Table 1, Korthikanti Table 5, Llama 3 Table 4, PaLM) and ZeRO Fig. 1
# are rows of budget/validation/runs.toml, scored with bounds by tests/test_validate.py.


def test_ring_all_reduce_is_twice_all_gather():
    """nccl-tests PERFORMANCE.md: all-reduce moves 2(n-1)/n S, all-gather (n-1)/n S."""
    c = cluster_for(H100, "bf16")
    ar, ag = ring_time("all_reduce", 8, 1e9, 450, c), ring_time("all_gather", 8, 1e9, 450, c)
    assert ar - 14 * c.latency_s == pytest.approx(2 * (ag - 7 * c.latency_s))
    assert ag - 7 * c.latency_s == pytest.approx(7 / 8 * 1e9 / (450e9 * 0.8))


def test_bubble_is_p_minus_1_over_v_m():
    """Narayanan §2.2.2: bubble / compute = (p - 1) / (v m)."""
    arch = gpt(48, 8192, 64)
    st = step_time(arch, Layout(tp=8, pp=4, vp=2, dp=2, ga=16), 2048, cluster_for(A100, "bf16"))
    assert st.bubble_s / st.compute_s == pytest.approx(3 / (2 * 16))


def test_parse_layout_and_errors():
    lay = parse_layout("tp=8,pp=4,dp=2,sp=off,zero=3,recompute=full")
    assert (lay.tp, lay.pp, lay.dp, lay.sp, lay.zero, lay.recompute, lay.num_gpus) == (8, 4, 2, False, 3, "full", 64)
    for bad, msg in [("tp=x", "whole number"), ("foo=1", "KEY=VALUE"), ("zero=4", "0, 1, 2 or 3"),
                     ("vp=2", "needs pp > 1"), ("ep=3,dp=2", "must divide dp x cp")]:
        with pytest.raises(BudgetError, match=msg):
            parse_layout(bad)


def test_moe_goes_through_and_ep_shards_experts():
    """Mixtral-like MoE (8 experts, top-2, GQA, SwiGLU): ep=8 divides the expert weights by 8."""
    mix = Architecture(n_layer=32, d_model=4096, n_head=32, n_kv_head=8, head_dim=128, d_ff=14336,
                       vocab_size=32000, n_ctx=4096, n_experts=8, experts_per_token=2)
    one = layout_memory(mix, Layout(tp=1, dp=8, ep=1, zero=1), 4096, H100.memory_bytes)
    eight = layout_memory(mix, Layout(tp=1, dp=8, ep=8, zero=1), 4096, H100.memory_bytes)
    assert eight.weights_bytes < one.weights_bytes / 4
    st = step_time(mix, Layout(tp=1, dp=8, ep=8, zero=1), 4096, cluster_for(H100, "bf16"))
    assert st.bytes_per_gpu["ep"] > 0 and st.exposed_by_kind_s["ep"] > 0


def test_search_thousands_of_candidates_fast():
    """A 70B on 16,384 H100 at 8K context: thousands of candidates, searched in under 0.5 s
    (measured on a shared 2-core machine)."""
    from budget.models.families import shape_for_params

    arch = shape_for_params(70e9, "gpt2", n_ctx=8192)
    st = Setting(arch=arch, seq_len=8192, gpu_memory_bytes=H100.memory_bytes,
                 cluster=cluster_for(H100, "bf16"))
    n = sum(1 for _ in candidates(st, 16384, 4096))
    assert n >= 1500
    start = time.perf_counter()
    best, tried, _fitting, _why = fastest(st, 16384, 4096)
    fewest_gpus(st)
    elapsed = time.perf_counter() - start
    assert best is not None and tried == n and best.layout.num_gpus == 16384
    assert best.layout.global_batch <= 4096
    assert elapsed < 0.5, elapsed


def test_fewest_gpus_falls_with_memory():
    arch = gpt(80, 8192, 64)
    small = Setting(arch=arch, seq_len=2048, gpu_memory_bytes=CAT.get("a100-40gb").memory_bytes,
                    cluster=cluster_for(A100, "bf16"))
    big = Setting(arch=arch, seq_len=2048, gpu_memory_bytes=H100.memory_bytes * 2,
                  cluster=cluster_for(H100, "bf16"))
    assert fewest_gpus(big)[0] < fewest_gpus(small)[0]


@pytest.mark.parametrize("tp,pp,dp", [(1, 1, 8), (2, 4, 4), (8, 2, 2)])
def test_memory_orderings(tp, pp, dp):
    """ZeRO stage k never needs more memory than k - 1; memory grows with micro-batch, context
    and parameters (layers); recompute full <= selective <= none."""
    arch = gpt(32, 4096, 32)
    def mem(**kw):
        base = dict(tp=tp, pp=pp, dp=dp, ga=pp)
        base.update(kw)
        seq = base.pop("seq", 2048)
        model = base.pop("arch", arch)
        return layout_memory(model, Layout(**base), seq, H100.memory_bytes).total_bytes
    zeros = [mem(zero=z) for z in (0, 1, 2, 3)]
    assert zeros == sorted(zeros, reverse=True)
    assert mem(mb=1) < mem(mb=2) < mem(mb=4)
    assert mem(seq=2048) < mem(seq=4096)
    assert mem() < mem(arch=gpt(48, 4096, 32))
    assert mem(recompute="full") < mem(recompute="selective") < mem(recompute="none", flash=False)
