"""The analytic CNN counts against the same networks built in torch and counted by FlopCounterMode."""

import pytest

torch = pytest.importorskip("torch")

from budget.models import cnn  # noqa: E402
from budget.models import efficientnet as E  # noqa: E402
from experiments.training import cnn as X  # noqa: E402


@pytest.mark.parametrize("network, scaling", [
    ("efficientnet-b0", cnn.Scaling()),
    ("efficientnet-b0", E.Coefficients().scaling(1.0)),
    ("resnet-50", cnn.Scaling()),
])
def test_flop_counter_matches_analytic_macs(network, scaling):
    """torch.utils.flop_counter.FlopCounterMode counts 2 FLOPs per MAC of convs and matmuls
    (peers survey: it sees every aten conv/mm, not element-wise ops), so FlopCounterMode / 2 must
    equal our MACs (issue 6: within 2%), and the torch parameter count must equal ours."""
    spec = cnn.load_network(network)
    analytic = cnn.evaluate(spec, scaling)
    model = X.build(spec, scaling)
    assert X.count_params(model) == analytic.params
    counted = X.count_flops(model, analytic.input_shape) / 2
    assert counted == pytest.approx(analytic.macs, rel=0.02)


def test_real_forward_shapes_match_every_stage():
    """A real CPU forward pass of EfficientNet-B0 at 64x64 (batch 2): every stage's output shape
    is the analytic one."""
    spec = cnn.load_network("efficientnet-b0")
    scaling = cnn.Scaling(image_size=64)
    analytic = cnn.evaluate(spec, scaling)
    model = X.build(spec, scaling).eval()
    x = torch.randn(2, *analytic.input_shape)
    with torch.no_grad():
        for stage, expected in zip(model, analytic.stages):
            x = stage(x)
            assert tuple(x.shape[1:]) == expected.output_shape
    assert tuple(x.shape) == (2, 1000)


def test_training_step_is_three_forwards():
    """Training = 3 x forward (backward = 2 x forward; Kaplan et al. 2020 §2.1; Epoch AI,
    "What's the backward-forward FLOP ratio for neural networks?", 2021: ~2:1 for CNNs, 1:1 for
    the first layer, whose input needs no gradient). ResNet-18 at 64x64, forward + backward
    counted by FlopCounterMode: just under 3x the forward."""
    spec = cnn.load_network("resnet-18")
    scaling = cnn.Scaling(image_size=64)
    shape = cnn.evaluate(spec, scaling).input_shape
    forward = X.count_flops(X.build(spec, scaling), shape)
    step = X.count_flops(X.build(spec, scaling), shape, backward=True)
    assert 2.85 < step / forward <= 3.0


def test_custom_layer_list_with_every_layer_type(tmp_path):
    """Every layer type the format accepts builds in torch with the analytic params and MACs."""
    path = tmp_path / "mixed.toml"
    path.write_text("""
name = "mixed"
input = [3, 32, 32]
[[stage]]
name = "a"
layers = [
  { type = "conv", out = 16, kernel = 3, stride = 2, bias = true },
  { type = "batch_norm" }, { type = "activation", fn = "relu6" },
  { type = "depthwise_conv", kernel = 5 }, { type = "pointwise_conv", out = 24 },
  { type = "separable", out = 32, kernel = 3, stride = 1 },
  { type = "conv", out = 32, kernel = 3, groups = 4 },
  { type = "max_pool", kernel = 3, stride = 1 }, { type = "avg_pool", kernel = 2, padding = 0 },
  { type = "mbconv", out = 32, kernel = 3, expand = 4, se_ratio = 0.25 },
  { type = "basic", out = 40, stride = 2 }, { type = "bottleneck", out = 16, stride = 1 },
  { type = "activation", fn = "gelu" },
  { type = "global_avg_pool" }, { type = "linear", out = 10 },
  { type = "layer_norm" }, { type = "softmax" },
]
""")
    spec = cnn.load_network(str(path))
    analytic = cnn.evaluate(spec)
    model = X.build(spec)
    assert X.count_params(model) == analytic.params
    assert X.count_flops(model, analytic.input_shape) == 2 * analytic.macs
    assert tuple(X.build(spec).eval()(torch.randn(1, 3, 32, 32)).shape) == (1, 10)
