"""Scaling-law allocations against the papers' constants, tables and worked examples."""

import math

import pytest

from budget.errors import BudgetError
from budget.scaling import laws


@pytest.mark.parametrize("law", laws.LAW_IDS)
@pytest.mark.parametrize("compute", [1e15, 3.7e18, 1e21, 5.76e23, 1e27])
def test_every_allocation_spends_exactly_the_budget(law, compute):
    """Each allocation satisfies 6 N D = C (Kaplan et al. 2020 §2.1)."""
    a = laws.compute_optimal(law, compute)
    assert 6 * a.params * a.tokens == pytest.approx(compute, rel=1e-12)


def test_twenty_tokens_per_param_is_sqrt_c_over_120():
    """D = 20 N (Hoffmann et al. 2022 Table 3) with C = 6ND gives N = sqrt(C/120), not the
    classic slip N = sqrt(C/6), D = 20 N, which spends 20 C."""
    a = laws.compute_optimal("tokens-per-param", 1e21)
    assert a.params == pytest.approx(math.sqrt(1e21 / 120))
    assert a.params == pytest.approx(2.887e9, rel=1e-3)
    assert a.tokens == pytest.approx(20 * a.params)
    assert a.loss is None


def test_chinchilla_closed_form_matches_nanogpt_grid_search():
    """karpathy/nanoGPT scaling_laws.ipynb: with the printed eq. 10 constants the compute-optimal
    model nearest 400M is 399.54M params on 14.43B tokens at 3.459892e19 FLOPs, loss 2.76."""
    a = laws.compute_optimal("chinchilla", 3.459892e19)
    assert a.params == pytest.approx(399.54e6, rel=0.01)
    assert a.tokens == pytest.approx(14.43e9, rel=0.01)
    assert a.loss == pytest.approx(2.76, abs=0.005)


def test_chinchilla_exponent_from_unrounded_constants_is_table2():
    """Hoffmann et al. 2022 Table 2: Approach 3 gives a = 0.46, b = 0.54. The unrounded
    constants (epoch-research/analyzing-chinchilla notebook) give 0.4565; the printed eq. 10
    values give 0.4516 (beta/(alpha+beta) = 0.28/0.62)."""
    tex = laws.ParametricLaw(E=math.exp(0.5267228), A=math.exp(6.0073404), B=math.exp(6.0179186),
                             alpha=0.33917084, beta=0.2849083, source="TeX source values")
    assert round(tex.a, 2) == 0.46 and round(tex.b, 2) == 0.54
    assert laws.CHINCHILLA.a == pytest.approx(0.28 / 0.62)
    assert laws.CHINCHILLA.G == pytest.approx(1.3447, rel=1e-4)


def test_epoch_frontier_at_gopher_compute():
    """Besiroglu et al. 2024 constants (A 482.01, B 2085.43, E 1.817, alpha 0.3478, beta 0.3658):
    a = 0.513 (their reported share), G = 0.1196; at Gopher's 5.76e23 FLOPs N_opt ~ 72B and
    D_opt ~ 1.33T, about 18 tokens per parameter, close to Chinchilla's 70B on 1.4T."""
    assert laws.EPOCH.A == pytest.approx(482.01, rel=1e-4)
    assert laws.EPOCH.B == pytest.approx(2085.43, rel=1e-4)
    assert laws.EPOCH.E == pytest.approx(1.8169, rel=1e-4)
    assert laws.EPOCH.a == pytest.approx(0.513, abs=5e-4)
    assert laws.EPOCH.G == pytest.approx(0.1196, rel=1e-3)
    a = laws.compute_optimal("epoch", 5.76e23)
    assert a.params == pytest.approx(72e9, rel=0.01)
    assert a.tokens == pytest.approx(1.33e12, rel=0.01)
    assert a.tokens_per_param == pytest.approx(18.4, abs=0.1)


def test_kaplan_allocation_and_loss():
    """Kaplan et al. 2020 Table 6: N_opt = 1.3e9 C_min^0.73 (C_min in PF-days) non-embedding
    params, so 1.3e9 at C_min = 1 PF-day and 5.17e11 at C_min = 3,640 PF-days; eq. 1.3
    L(C_min) = (3.1e8/C_min)^0.050 gives 2.658 nats at 1 PF-day. At the critical batch a run
    spends C = 2 C_min (eq. 5.5), so those are the allocations of C = 2 and 7,280 PF-days."""
    one = laws.compute_optimal("kaplan", 2 * laws.PF_DAY_FLOPS)
    assert one.params == pytest.approx(1.3e9)
    assert one.params_count == "non_embedding"
    assert one.loss == pytest.approx(2.658, abs=1e-3)
    gpt3 = laws.compute_optimal("kaplan", 2 * 3640 * laws.PF_DAY_FLOPS)
    assert gpt3.params == pytest.approx(5.17e11, rel=1e-3)


def test_kaplan_at_1e21_is_hoffmann_app_d4():
    """Hoffmann et al. 2022 App. D.4: at 1e21 FLOPs Kaplan's law gives 4.68B parameters (against
    2.86B from Approach 1): N_opt = 1.3e9 (C_min / PF-day)^0.73 with C_min = C / 2 (Kaplan eq.
    5.5 at B = B_crit); reading C as C_min would give 7.77B."""
    a = laws.compute_optimal("kaplan", 1e21)
    assert a.params == pytest.approx(4.68e9, rel=2e-3)
    assert 1.3e9 * (1e21 / laws.PF_DAY_FLOPS) ** 0.73 == pytest.approx(7.77e9, rel=1e-3)
    assert a.tokens == pytest.approx(1e21 / (6 * a.params))


def test_kaplan_joint_loss_eq_1_5():
    """Kaplan et al. 2020 eq. 1.5 with its own joint fit, §4.2 Table 2 (alpha_N 0.076, alpha_D
    0.103, N_c 6.4e13, D_c 1.8e13; Table 5's single-variable constants belong to eq. 1.1/1.2):
    L(N = 1e9, D = 1e11) = [(6.4e13/1e9)^(0.076/0.103) + 1.8e13/1e11]^0.103 = 2.331 nats/token;
    with D -> infinity it is L(N) = (N_c/N)^alpha_N."""
    assert laws.LAWS["kaplan"].loss(1e9, 1e11) == pytest.approx(2.331, abs=5e-4)
    assert laws.LAWS["kaplan"].loss(1e9, 1e30) == pytest.approx((6.4e13 / 1e9) ** 0.076, rel=1e-6)


# Hoffmann et al. 2022 Table A3, Approach 3 column: (parameters, FLOPs). The 175B row is printed
# 1.26e+24 in some copies of the table; 6 x 175e9 x 12.0e12 tokens = 1.26e25, which we use.
TABLE_A3_APPROACH3 = [(400e6, 2.21e19), (1e9, 1.62e20), (10e9, 2.46e22), (67e9, 1.71e24),
                      (175e9, 1.26e25), (280e9, 3.52e25), (520e9, 1.36e26), (1e12, 5.65e26),
                      (10e12, 8.55e28)]


@pytest.mark.parametrize("params,flops", TABLE_A3_APPROACH3)
def test_unrounded_approach3_reproduces_table_a3(params, flops):
    """Hoffmann et al. 2022 Table A3 (Approach 3): the unrounded eq. 10 constants (log A 6.0073404,
    log B 6.0179186, log E 0.5267228, alpha 0.33917084, beta 0.2849083; the TeX-source values in
    Besiroglu et al.'s notebook) give each row's N within 7.5% (2.8% at 400M, 7.3% at 10T); the
    printed rounded constants give 18-31% less."""
    unrounded = laws.compute_optimal("chinchilla-unrounded", flops)
    rounded = laws.compute_optimal("chinchilla", flops)
    assert abs(unrounded.params / params - 1) < 0.075
    assert -0.31 < rounded.params / params - 1 < -0.18


def test_every_registered_law_says_what_it_is():
    """Adding a law is one registry entry: each has a one-line reading, which N it counts,
    sourced constants and (a, b); chinchilla and chinchilla-unrounded say which is which."""
    assert laws.LAW_IDS == ("epoch", "chinchilla", "chinchilla-unrounded", "tokens-per-param",
                            "kaplan")
    for law in laws.LAWS.values():
        assert law.title and law.source and law.params_count in ("total", "non_embedding")
        assert law.constants and all(c.source for c in law.constants)
        a, b = law.exponents
        assert a + b == pytest.approx(1.0)
        assert law.to_dict()["id"] == law.id
    assert "rounded" in laws.LAWS["chinchilla"].title
    assert "unrounded" in laws.LAWS["chinchilla-unrounded"].title
    assert laws.LAWS["tokens-per-param"].optimal_loss is None
    assert laws.compute_optimal("tokens-per-param", 1e21).loss is None


def test_pf_day():
    """Kaplan et al. 2020 §1.3: 1 PF-day = 1e15 x 24 x 3600 = 8.64e19 FLOPs."""
    assert laws.PF_DAY_FLOPS == 8.64e19


def test_gpt3_training_compute():
    """Brown et al. 2020 Table D.1: GPT-3 175B (174.6B params, 300B tokens) = 3.14e23 FLOPs =
    3.64e3 PF-days with C = 6ND."""
    c = 6 * 174.6e9 * 300e9
    assert c == pytest.approx(3.14e23, rel=2e-3)
    assert c / laws.PF_DAY_FLOPS == pytest.approx(3.64e3, rel=2e-3)


@pytest.mark.parametrize("compute,batch_seqs_used,lr_used", [(4.228e10 * 2e12, 2304, 4.2e-4),
                                                            (9.95e23, 4608, 3.2e-4)])
def test_deepseek_hyperparameters_near_what_deepseek_used(compute, batch_seqs_used, lr_used):
    """DeepSeek LLM eq. 1 (B_opt = 0.2920 C^0.3271, eta_opt = 0.3118 C^-0.1250) against Table 2:
    7B (M = 4.228e10 FLOPs/token x 2T tokens) used 2,304 x 4096-token batches at lr 4.2e-4;
    67B used 4,608 at 3.2e-4. Eq. 1 gives 2,252 / 4.25e-4 and 5,043 / 3.12e-4."""
    h = laws.deepseek_hyperparameters(compute, seq_len=4096)
    assert h.batch_sequences == pytest.approx(batch_seqs_used, rel=0.1)
    assert h.learning_rate == pytest.approx(lr_used, rel=0.03)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1e21", True])
def test_bad_budgets_raise(bad):
    with pytest.raises(BudgetError, match="compute budget"):
        laws.compute_optimal("epoch", bad)


def test_unknown_law():
    with pytest.raises(BudgetError, match="choose one of epoch, chinchilla"):
        laws.compute_optimal("hoffmann", 1e21)
