"""Layer-list networks: loading, errors, the EfficientNet-B0 and ResNet-50 known answers."""

import pytest

from budget.errors import BudgetError
from budget.models import cnn


def test_efficientnet_b0_known_answer():
    """Tan & Le 2019 Table 2: EfficientNet-B0 at 224x224 has 5.3M parameters and 0.39B "FLOPs",
    which are multiply-adds (the same table lists ResNet-50 at 4.1B, its MAC count). Within 3%.
    We count 5,288,548 params and 385,814,752 MACs."""
    net = cnn.evaluate(cnn.load_network("efficientnet-b0"))
    assert net.params == pytest.approx(5.3e6, rel=0.03)
    assert net.macs == pytest.approx(0.39e9, rel=0.03)
    assert net.input_shape == (3, 224, 224)
    assert net.output_shape == (1000,)
    assert net.flops > 2 * net.macs  # element-wise work on top of the multiply-adds


def test_efficientnet_b0_layout_follows_table_1():
    """Tan & Le 2019 Table 1: resolutions 112, 112, 56, 28, 14, 14, 7, 7 and channels
    32, 16, 24, 40, 80, 112, 192, 320, 1280 with 1, 2, 2, 3, 3, 4, 1 MBConv layers."""
    net = cnn.evaluate(cnn.load_network("efficientnet"))
    shapes = [s.output_shape for s in net.stages[:-1]]
    assert shapes == [(32, 112, 112), (16, 112, 112), (24, 56, 56), (40, 28, 28), (80, 14, 14),
                      (112, 14, 14), (192, 7, 7), (320, 7, 7)]
    assert [s.repeats for s in net.stages[1:-1]] == [1, 2, 2, 3, 3, 4, 1]
    assert net.stages[-1].layers[0].output_shape == (1280, 7, 7)


def test_resnet50_known_answer():
    """torchvision.models.resnet50 (v1.5, stride on the 3x3), IMAGENET1K_V1 metadata in its docs:
    num_params 25,557,032 and 4.09 GFLOPS (multiply-adds; He et al. 2016 Table 1 lists v1 at
    3.8e9). We count exactly 25,557,032 params and 4,089,184,256 MACs."""
    net = cnn.evaluate(cnn.load_network("resnet-50"))
    assert net.params == 25_557_032
    assert net.macs == pytest.approx(4.09e9, rel=0.002)


def test_round_channels_follows_the_reference():
    """tensorflow/tpu efficientnet_model.round_filters: nearest multiple of 8 (at least 8), plus 8
    if that lost more than 10%. B4 (w=1.4): 32 -> 48 (44.8 rounds up), 16 -> 24 (22.4 -> 24),
    B7 (w=2.0): 1280 -> 2560; w=0.3: 16 -> 8 (4.8 -> at least 8); w=1.1: 24 -> 24 (26.4 -> 24)."""
    assert cnn.round_channels(32, 1.4) == 48
    assert cnn.round_channels(16, 1.4) == 24
    assert cnn.round_channels(1280, 2.0) == 2560
    assert cnn.round_channels(16, 0.3) == 8
    assert cnn.round_channels(24, 1.1) == 24
    assert cnn.round_channels(27, 1.0) == 27  # width 1 keeps the file as written
    assert cnn.round_channels(27, 1.01) == 32  # 24 would lose 11%: one more divisor
    assert cnn.round_channels(33, 1.01, divisor=1) == 33


def test_round_repeats_up():
    """round_repeats = ceil(d · repeats): B7's d = 3.1 turns 4 layers into 13, 1 into 4."""
    assert cnn.round_repeats(4, 3.1) == 13
    assert cnn.round_repeats(1, 3.1) == 4
    assert cnn.round_repeats(3, 1.0) == 3


def test_scaling_resolution_and_depth():
    spec = cnn.load_network("efficientnet")
    net = cnn.evaluate(spec, cnn.Scaling(width=1.0, depth=1.1, image_size=240))
    assert net.input_shape == (3, 240, 240)
    assert [s.repeats for s in net.stages[1:-1]] == [2, 3, 3, 4, 4, 5, 2]  # ceil(1.1 r)
    assert cnn.evaluate(spec, cnn.Scaling(resolution=0.5)).input_shape == (3, 112, 112)
    head = cnn.evaluate(spec, cnn.Scaling(width=2.0)).stages[-1]
    assert head.layers[-1].output_shape == (1000,)  # the classifier is never width-scaled


@pytest.mark.parametrize("bad", [dict(width=0.0), dict(depth=-1.0), dict(resolution=float("nan")),
                                 dict(width=float("inf")), dict(image_size=0)])
def test_scaling_rejects_bad_coefficients(bad):
    with pytest.raises(BudgetError, match="must be"):
        cnn.Scaling(**bad)


def _write(tmp_path, text):
    path = tmp_path / "net.toml"
    path.write_text(text)
    return path


def test_custom_layer_list(tmp_path):
    """A small custom CNN: conv 3x3 8 on 3x32x32 (216 params, 221,184 MACs), BN, ReLU, GAP, FC 10."""
    path = _write(tmp_path, """
name = "tiny"
input = [3, 32, 32]
[[stage]]
name = "body"
repeats = 2
layers = [{ type = "conv", out = 8, kernel = 3 }, { type = "batch_norm" },
          { type = "activation", fn = "relu" }]
[[stage]]
name = "head"
layers = [{ type = "global_avg_pool" }, { type = "linear", out = 10, scale_width = false }]
""")
    net = cnn.evaluate(cnn.load_network(str(path)))
    assert net.stages[0].layers[0].macs == 32 * 32 * 8 * 27 == 221_184
    assert net.params == 216 + 16 + (8 * 8 * 9 + 16) + 90
    assert [layer.name for _, layer in net.rows()][:3] == ["body.conv.0", "body.batch_norm.0", "body.relu.0"]
    assert len(net.rows(detail=True)) == len(net.rows())  # no blocks to open here


@pytest.mark.parametrize("text, message", [
    ("input = [3, 32, 32]\n[[stage]]\nlayers = [{ type = 'convv', out = 8, kernel = 3 }]",
     "type 'convv' is unknown"),
    ("input = [3, 32, 32]\n[[stage]]\nlayers = [{ type = 'conv', out = 8 }]", "missing kernel"),
    ("input = [3, 32, 32]\n[[stage]]\nlayers = [{ type = 'conv', out = 8, kernel = 3, strid = 2 }]",
     "unknown key"),
    ("input = [3, 32, 32]\n[[stage]]\nlayers = [{ type = 'conv', out = -8, kernel = 3 }]",
     "out=-8 must be a whole number"),
    ("input = [3, 32, 32]\n[[stage]]\nrepeats = 0\nlayers = [{ type = 'batch_norm' }]",
     "repeats=0"),
    ("input = 'big'\n[[stage]]\nlayers = [{ type = 'batch_norm' }]", "input must be a list"),
    ("input = [3, 32, 32]\n", "at least one"),
    ("input = [3, 32, 32\n", "cannot read the layer list"),
])
def test_malformed_layer_lists_name_file_and_field(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(BudgetError, match=message) as err:
        cnn.load_network(str(path))
    assert str(path) in str(err.value)


def test_shape_errors_name_the_layer(tmp_path):
    path = _write(tmp_path, "input = [3, 8, 8]\n[[stage]]\nname = 's'\nlayers = ["
                            "{ type = 'conv', out = 4, kernel = 9, padding = 'valid' }]")
    with pytest.raises(BudgetError, match="layer s: .*does not fit"):
        cnn.evaluate(cnn.load_network(str(path)))


def test_unknown_network_lists_builtins():
    with pytest.raises(BudgetError, match="efficientnet-b0, resnet-18, resnet-50"):
        cnn.load_network("vgg")
