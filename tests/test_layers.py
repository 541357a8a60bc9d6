"""Layer formulas against hand-worked examples (sources in each docstring)."""

import math

import pytest

from budget.errors import BudgetError
from budget.models import layers as L
from budget.models.families import build


def test_conv_resnet_stem():
    """He et al. 2016 Table 1 conv1: 7x7, 64, stride 2 on 224x224x3 -> 112x112.

    By hand: params 64·3·7·7 = 9,408; MACs 112·112·64·3·49 = 118,013,952; FLOPs = 2 x MACs.
    """
    c = L.conv2d((3, 224, 224), 64, 7, stride=2, padding=3)
    assert c.output_shape == (64, 112, 112)
    assert c.params == 9_408
    assert c.macs == 118_013_952
    assert c.flops == 2 * 118_013_952
    assert c.activation_elements == 64 * 112 * 112


def test_conv_bias_adds_are_elementwise_flops_not_macs():
    """A biased 3x3 conv 8->16 on 10x10: params 16·8·9 + 16; MACs 100·16·72; one bias add per output."""
    c = L.conv2d((8, 10, 10), 16, 3, bias=True)
    assert (c.params, c.macs, c.elementwise_flops) == (1_168, 115_200, 1_600)
    assert c.flops == 2 * 115_200 + 1_600


def test_grouped_conv_divides_by_groups():
    """ResNeXt (Xie et al. 2017 §3.3) grouped 3x3, 128->128 in 32 groups on 56x56.

    Each output sees 128/32 = 4 input channels: params 128·4·9 = 4,608; MACs 56·56·128·36.
    """
    c = L.conv2d((128, 56, 56), 128, 3, groups=32)
    assert c.params == 4_608
    assert c.macs == 56 * 56 * 128 * 36 == 14_450_688


def test_depthwise_and_pointwise_mobilenet_layers():
    """Howard et al. 2017 (MobileNets) eq. 3 and eq. 5, Table 1 rows 2-3 on 112x112x32.

    Conv dw 3x3x32: D_K²·M·D_F² = 9·32·112² = 3,612,672 MACs, 288 params.
    Conv 1x1x32x64: M·N·D_F² = 32·64·112² = 25,690,112 MACs, 2,048 params.
    """
    dw = L.depthwise_conv2d((32, 112, 112), 3)
    pw = L.pointwise_conv2d((32, 112, 112), 64)
    assert (dw.macs, dw.params, dw.output_shape) == (3_612_672, 288, (32, 112, 112))
    assert (pw.macs, pw.params, pw.output_shape) == (25_690_112, 2_048, (64, 112, 112))


def test_depthwise_separable_reduction_ratio():
    """Howard et al. 2017 §3.1: separable / standard cost = 1/N + 1/D_K² (eq. 5 over eq. 2)."""
    sep = L.depthwise_separable_conv2d((32, 112, 112), 64, 3)
    std = L.conv2d((32, 112, 112), 64, 3)
    assert sep.macs / std.macs == pytest.approx(1 / 64 + 1 / 9, rel=1e-12)
    assert [p.kind for p in sep.parts] == ["depthwise_conv", "pointwise_conv"]


def test_mobilenet_v1_totals_match_the_paper():
    """Howard et al. 2017 Table 1 body (Table 8: 1.0 MobileNet-224 = 569M mult-adds, 4.2M params).

    Built from our primitives: conv 3x3/2 32, then 13 depthwise-separable pairs, average pool,
    FC 1000 (batch norm and ReLU add no MACs and are left out, as the paper's counts leave out
    BN parameters). We count 568,740,352 MACs and 4,210,088 params. (Table 1's second-to-last
    'dw / s2' on 7x7 is a known typo: that layer has stride 1, as the table's sizes show.)
    """
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 \
        + [(1024, 2), (1024, 1)]
    x = (3, 224, 224)
    parts = [L.conv2d(x, 32, 3, 2)]
    for out, stride in plan:
        parts.append(L.depthwise_separable_conv2d(parts[-1].output_shape, out, 3, stride))
    parts.append(L.global_avg_pool(parts[-1].output_shape))
    parts.append(L.linear(parts[-1].output_shape, 1000))
    net = L.block("mobilenet", "network", parts)
    assert net.macs == pytest.approx(569e6, rel=0.005)
    assert net.params == pytest.approx(4.2e6, rel=0.01)


def test_linear_and_attention_match_the_transformer_module():
    """One GPT-2 block (Radford et al. 2019; the gpt2 family of budget.models.families): the per-layer parameter count
    and the forward FLOPs per token, rebuilt from linear, layer norm and attention layers."""
    shape = build("gpt2", 1, 768, n_head=12, d_ff=3072, n_ctx=1024)
    seq = (1024, 768)
    parts = [L.layer_norm(seq), L.attention(seq, 12), L.layer_norm(seq),
             L.linear(seq, 3072), L.activation((1024, 3072), "gelu"), L.linear((1024, 3072), 768)]
    blk = L.block("gpt2_block", "transformer_block", parts)
    assert blk.params == shape.layer_params(moe=False)
    per_token = 2 * blk.macs / 1024
    assert per_token == shape.forward_flops_per_token() - 2 * 768 * shape.vocab_size


def test_attention_terms():
    """Hoffmann et al. 2022 App. F, one layer, S tokens, width d, h heads: QKV 2·3·S·d², QK^T
    2·S²·d, softmax 3·h·S², AV 2·S²·d, output 2·S·d² (biases counted separately here)."""
    s, d, h = 128, 64, 4
    att = L.attention((s, d), h, bias=False)
    assert 2 * att.macs == 2 * 3 * s * d * d + 2 * s * s * d + 2 * s * s * d + 2 * s * d * d
    assert att.elementwise_flops == 3 * h * s * s
    assert att.params == 4 * d * d
    with pytest.raises(BudgetError, match="n_head=5"):
        L.attention((s, d), 5)


def test_batch_norm_modes():
    """Ioffe & Szegedy 2015 Alg. 1, per element: training 7 (mean 1, variance 3, normalise 1,
    scale and shift 2); inference with running statistics 2; folded into the conv 0. Params 2C."""
    x = (32, 112, 112)
    n = 32 * 112 * 112
    assert L.batch_norm(x, "train").flops == 7 * n == 2_809_856
    assert L.batch_norm(x, "inference").flops == 2 * n
    assert L.batch_norm(x, "folded").flops == 0
    assert L.batch_norm(x).params == 64
    with pytest.raises(BudgetError, match="choose one of train, inference, folded"):
        L.batch_norm(x, "eval")


def test_layer_norm_activations_softmax():
    """LayerNorm (Ba et al. 2016) 2d params, 7 FLOPs/element; ReLU 1, SiLU 5 (x·sigmoid),
    sigmoid 4, GELU tanh form 9 (Hendrycks & Gimpel 2016); softmax 3 (Hoffmann et al. App. F)."""
    assert L.layer_norm((10, 768)).params == 1536
    assert L.layer_norm((10, 768)).flops == 7 * 7680
    counts = {fn: L.activation((2, 3, 5), fn).flops for fn in ("relu", "silu", "sigmoid", "gelu")}
    assert counts == {"relu": 30, "silu": 150, "sigmoid": 120, "gelu": 270}
    assert L.softmax((12, 16, 16)).flops == 3 * 12 * 16 * 16
    with pytest.raises(BudgetError, match="activation 'tanhh' is unknown"):
        L.activation((3,), "tanhh")


def test_pooling_and_residual():
    """ResNet stem max pool 3x3/2 (He et al. Table 1): 112 -> 56, 8 comparisons per output;
    2x2 average pool: 3 adds + 1 multiply per output; global average pool over 7x7x1280: C·H·W;
    residual add: one FLOP per element (He et al. 2016 §3.2)."""
    mp = L.max_pool2d((64, 112, 112), 3, 2, padding=1)
    assert mp.output_shape == (64, 56, 56)
    assert mp.flops == 8 * 64 * 56 * 56
    ap = L.avg_pool2d((8, 4, 4), 2)
    assert ap.output_shape == (8, 2, 2) and ap.flops == 4 * 32
    gap = L.global_avg_pool((1280, 7, 7))
    assert gap.output_shape == (1280,) and gap.flops == 62_720
    assert L.residual_add((256, 56, 56)).flops == 256 * 56 * 56


def test_squeeze_excite_in_efficientnet_block():
    """Hu et al. 2018 SE on the 96-channel expansion of B0's first MBConv6 (16 in, ratio 0.25 of
    the block input -> 4): params 96·4+4 + 4·96+96 = 868; MACs 96·4 + 4·96 = 768."""
    se = L.squeeze_excite((96, 56, 56), 4)
    assert se.params == 868
    assert se.macs == 768
    assert se.output_shape == (96, 56, 56)


def test_mbconv_efficientnet_b0_stage3_first_block():
    """Tan & Le 2019 Table 1 stage 3 (MBConv6, k3x3, 16 -> 24, stride 2 at 112x112), by hand:

    expand 1x1 16->96 at 112²: 19,267,584 MACs, 1,536 params (+192 BN);
    depthwise 3x3/2 -> 56²: 2,709,504 MACs, 864 params (+192 BN); SE 768 MACs, 868 params;
    project 1x1 96->24 at 56²: 7,225,344 MACs, 2,304 params (+48 BN); no skip (stride 2).
    Totals: 29,203,200 MACs, 6,004 params.
    """
    b = L.mbconv((16, 112, 112), 24, 3, stride=2, expand_ratio=6)
    assert b.output_shape == (24, 56, 56)
    assert b.macs == 29_203_200
    assert b.params == 6_004
    assert "residual_add" not in [p.kind for p in b.parts]
    same = L.mbconv((24, 56, 56), 24, 3, stride=1, expand_ratio=6)
    assert same.parts[-1].kind == "residual_add"
    assert L.mbconv((32, 112, 112), 16, 3, expand_ratio=1).parts[0].kind == "depthwise_conv"


def test_bottleneck_resnet50_first_block():
    """He et al. 2016 Fig. 5 bottleneck, ResNet-50 conv2_x block 1 at 56x56, 64 in:
    1x1 64->64 (4,096), 3x3 64->64 (36,864), 1x1 64->256 (16,384), projection 64->256 (16,384),
    BN 2·(64+64+256+256) = 1,280: 75,008 params; MACs 56²·73,728 = 231,211,008."""
    b = L.bottleneck((64, 56, 56), 64)
    assert b.params == 75_008
    assert b.macs == 231_211_008
    assert b.output_shape == (256, 56, 56)
    assert L.bottleneck((256, 56, 56), 128, stride=2).output_shape == (512, 28, 28)


def test_conv_output_sizes_and_errors():
    """TF 'same': ceil(n/s); explicit padding: floor((n + 2p - k)/s) + 1."""
    assert L.conv_output_size(7, 3, 2) == 4
    assert L.conv_output_size(224, 7, 2, 3) == 112
    assert L.conv_output_size(5, 3, 1, "valid") == 3
    with pytest.raises(BudgetError, match="groups=3 must divide"):
        L.conv2d((8, 4, 4), 8, 3, groups=3)
    with pytest.raises(BudgetError, match="does not fit"):
        L.conv2d((8, 2, 2), 8, 5, padding="valid")
    with pytest.raises(BudgetError, match=r"needs a \(channels, height, width\)"):
        L.conv2d((8, 4), 8, 3)


def test_flops_macs_and_training_multipliers():
    """DESIGN.md units: 1 MAC = 2 FLOPs; training = 3 x forward, 4 x with full recomputation."""
    assert L.macs_to_flops(0.39e9) == 0.78e9
    assert L.flops_to_macs(8e9) == 4e9
    assert L.training_flops(1e9) == 3e9
    assert L.training_flops(1e9, recompute=True) == 4e9
    assert math.isclose(L.block("b", "x", [L.conv2d((3, 8, 8), 4, 3)]).flops, 2 * 3 * 9 * 4 * 64)
