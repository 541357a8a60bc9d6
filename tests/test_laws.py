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
    """Kaplan et al. 2020 Table 6: N_opt = 1.3e9 C^0.73 (C in PF-days) non-embedding params, so
    1.3e9 at 1 PF-day and 5.17e11 at GPT-3's 3,640 PF-days; eq. 1.3 L(C_min) = (3.1e8/C)^0.050
    gives 2.658 nats at 1 PF-day."""
    one = laws.compute_optimal("kaplan", laws.PF_DAY_FLOPS)
    assert one.params == pytest.approx(1.3e9)
    assert one.params_count == "non_embedding"
    assert one.loss == pytest.approx(2.658, abs=1e-3)
    gpt3 = laws.compute_optimal("kaplan", 3640 * laws.PF_DAY_FLOPS)
    assert gpt3.params == pytest.approx(5.17e11, rel=1e-3)


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
