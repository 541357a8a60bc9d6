"""Layer-level accounting: parameters, MACs, FLOPs, output shapes and activation memory.

Conventions (DESIGN.md, "Units and conventions")
- Counts are per sample (one image, one sequence); multiply by the batch. Shapes exclude the batch:
  (C, H, W) for feature maps, (T, d) for sequences, (d,) for vectors.
- MACs are the multiply-accumulates of convolutions and matrix products only: what EfficientNet
  (Tan & Le 2019 Table 2, "FLOPs"), ResNet (He et al. 2016 Table 1, "FLOPs") and torchvision's
  "GFLOPS" report, and half of what torch's FlopCounterMode counts. Bias adds are not MACs.
- FLOPs = 2 x MACs + element-wise FLOPs (bias adds, norms, activations, pooling, residual adds,
  channel scaling), counting every add, multiply, divide, comparison, exp and tanh as one FLOP.
  Everything the toolkit prints is FLOPs; a value in MACs says so in its name.
- Batch norm while training costs NORM_TRAIN_FLOPS = 7 per element (batch statistics, normalise,
  scale and shift; Ioffe & Szegedy 2015 Alg. 1); at inference with running statistics 2 per
  element, and 0 once folded into the preceding convolution. DeepSpeed's flops profiler
  (`_batch_norm_flops_compute`) estimates 5 and 2; we count the operations of Alg. 1 one by one.
- Running mean and variance are buffers, not parameters (torch's `parameters()`, torchvision's
  published counts); weights and biases are.
- Activation memory: the elements of every layer's output, which autograd keeps for the backward
  pass when no layer works in place or is recomputed; bytes = elements x bytes per element.
- Training = 3 x forward (backward = 2 x forward), 4 x with full recomputation (budget.models.arch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from budget.errors import BudgetError
from budget.models.arch import RECOMPUTE_MULTIPLIER, TRAIN_MULTIPLIER

Shape = tuple[int, ...]

FLOPS_PER_MAC = 2  # one multiply + one add (DESIGN.md units; Kaplan et al. 2020 §2.1 "2 FLOPs per MAC")
RELU_FLOPS = 1  # max(0, x): one comparison
RELU6_FLOPS = 2  # min(max(0, x), 6): two comparisons (Howard et al. 2017, MobileNets)
SIGMOID_FLOPS = 4  # 1 / (1 + exp(-x)): negate, exp, add, divide
SILU_FLOPS = 5  # x * sigmoid(x), "swish" (Ramachandran et al. 2017; EfficientNet's activation)
GELU_FLOPS = 9  # 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))) (Hendrycks & Gimpel 2016 §2): 9 ops
SOFTMAX_FLOPS = 3  # exp, sum, divide per element, as Hoffmann et al. 2022 App. F counts (3·h·S²)
# Ioffe & Szegedy 2015 Alg. 1 per element: mean 1 (add), variance 3 (subtract, square, add),
# normalise 1 (multiply by the per-channel 1/sqrt(var + eps)), scale and shift 2.
NORM_TRAIN_FLOPS = 7
NORM_AFFINE_FLOPS = 2  # inference with running statistics: y = a x + b, a and b per channel
ADD_FLOPS = 1  # residual add, bias add, channel scaling: one FLOP per output element

ACTIVATION_FLOPS = {"relu": RELU_FLOPS, "relu6": RELU6_FLOPS, "sigmoid": SIGMOID_FLOPS,
                    "silu": SILU_FLOPS, "swish": SILU_FLOPS, "gelu": GELU_FLOPS}
BATCH_NORM_FLOPS = {"train": NORM_TRAIN_FLOPS, "inference": NORM_AFFINE_FLOPS, "folded": 0}


@dataclass(frozen=True)
class LayerCost:
    """One layer (or a block of `parts`) for one sample: output shape, params, MACs, FLOPs."""

    name: str
    kind: str
    output_shape: Shape
    params: int
    macs: int
    elementwise_flops: int
    activation_elements: int
    parts: tuple["LayerCost", ...] = ()

    @property
    def flops(self) -> int:
        """Forward FLOPs = 2 x MACs + element-wise FLOPs."""
        return FLOPS_PER_MAC * self.macs + self.elementwise_flops

    def activation_bytes(self, bytes_per_element: int = 2) -> int:
        return self.activation_elements * bytes_per_element

    def to_dict(self, bytes_per_element: int = 2, detail: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "kind": self.kind, "output_shape": list(self.output_shape),
            "params": self.params, "macs": self.macs, "flops": self.flops,
            "elementwise_flops": self.elementwise_flops,
            "activation_bytes": self.activation_bytes(bytes_per_element)}
        if detail and self.parts:
            out["parts"] = [p.to_dict(bytes_per_element, detail) for p in self.parts]
        return out


def macs_to_flops(macs: float) -> float:
    """FLOPs = 2 x MACs."""
    return FLOPS_PER_MAC * macs


def flops_to_macs(flops: float) -> float:
    """MACs = FLOPs / 2."""
    return flops / FLOPS_PER_MAC


def training_flops(forward_flops: float, *, recompute: bool = False) -> float:
    """Training FLOPs = 3 x forward (4 x with full activation recomputation)."""
    return (RECOMPUTE_MULTIPLIER if recompute else TRAIN_MULTIPLIER) * forward_flops


def block(name: str, kind: str, parts: list[LayerCost]) -> LayerCost:
    """A composite layer: sums of its parts, the last part's output shape."""
    if not parts:
        raise BudgetError(f"block {name!r} has no layers")
    return LayerCost(name, kind, parts[-1].output_shape, sum(p.params for p in parts),
                     sum(p.macs for p in parts), sum(p.elementwise_flops for p in parts),
                     sum(p.activation_elements for p in parts), tuple(parts))


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def _whole(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise BudgetError(f"{name}={value!r} must be a whole number >= {low}")
    return value


def _feature_map(in_shape: Shape, layer: str) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise BudgetError(f"{layer} needs a (channels, height, width) input, got shape {list(in_shape)}")
    c, h, w = (_whole(f"{layer} input size", v) for v in in_shape)
    return c, h, w


def conv_output_size(size: int, kernel: int, stride: int, padding: int | str = "same") -> int:
    """Output length: ceil(n / s) for TF 'same' padding, floor((n + 2p - k) / s) + 1 otherwise."""
    if padding == "same":
        return -(-size // stride)
    pad = 0 if padding == "valid" else padding
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise BudgetError(f"padding={padding!r} must be 'same', 'valid' or a whole number >= 0")
    out = (size + 2 * pad - kernel) // stride + 1
    if out < 1:
        raise BudgetError(f"kernel {kernel} with padding {pad} does not fit an input of size {size}")
    return out


def conv2d(in_shape: Shape, out_channels: int, kernel: int, stride: int = 1, groups: int = 1,
           bias: bool = False, padding: int | str = "same", name: str = "conv") -> LayerCost:
    """k x k conv: MACs = H_out W_out C_out (C_in / g) k^2 (Howard et al. 2017 eq. 1, grouped)."""
    c, h, w = _feature_map(in_shape, name)
    for label, value in (("out channels", out_channels), ("kernel", kernel), ("stride", stride),
                         ("groups", groups)):
        _whole(f"{name} {label}", value)
    if c % groups or out_channels % groups:
        raise BudgetError(f"{name}: groups={groups} must divide in channels {c} and out channels "
                          f"{out_channels}")
    out = (out_channels, conv_output_size(h, kernel, stride, padding),
           conv_output_size(w, kernel, stride, padding))
    per_output = (c // groups) * kernel * kernel
    params = out_channels * per_output + (out_channels if bias else 0)
    bias_flops = ADD_FLOPS * _numel(out) if bias else 0
    return LayerCost(name, "conv", out, params, _numel(out) * per_output, bias_flops, _numel(out))


def depthwise_conv2d(in_shape: Shape, kernel: int, stride: int = 1, bias: bool = False,
                     padding: int | str = "same", name: str = "depthwise") -> LayerCost:
    """Depthwise conv: one k x k filter per channel, MACs = H_out W_out C k^2 (Howard et al. 2017 eq. 3)."""
    cost = conv2d(in_shape, in_shape[0], kernel, stride, groups=in_shape[0], bias=bias,
                  padding=padding, name=name)
    return LayerCost(name, "depthwise_conv", cost.output_shape, cost.params, cost.macs,
                     cost.elementwise_flops, cost.activation_elements)


def pointwise_conv2d(in_shape: Shape, out_channels: int, bias: bool = False,
                     name: str = "pointwise") -> LayerCost:
    """1 x 1 conv: MACs = H W C_in C_out (Howard et al. 2017 eq. 5, second term)."""
    cost = conv2d(in_shape, out_channels, 1, 1, bias=bias, name=name)
    return LayerCost(name, "pointwise_conv", cost.output_shape, cost.params, cost.macs,
                     cost.elementwise_flops, cost.activation_elements)


def depthwise_separable_conv2d(in_shape: Shape, out_channels: int, kernel: int, stride: int = 1,
                               name: str = "separable") -> LayerCost:
    """Depthwise then pointwise: MACs = D_F^2 M k^2 + D_F^2 M N (Howard et al. 2017 eq. 5)."""
    dw = depthwise_conv2d(in_shape, kernel, stride, name=f"{name}.depthwise")
    pw = pointwise_conv2d(dw.output_shape, out_channels, name=f"{name}.pointwise")
    return block(name, "depthwise_separable", [dw, pw])


def linear(in_shape: Shape, out_features: int, bias: bool = True, name: str = "linear") -> LayerCost:
    """Dense layer on the last axis: MACs = (leading elements) x d_in x d_out; bias adds element-wise."""
    if not in_shape:
        raise BudgetError(f"{name} needs an input with at least one axis")
    _whole(f"{name} out features", out_features)
    rows, d_in = _numel(in_shape[:-1]), in_shape[-1]
    out = (*in_shape[:-1], out_features)
    params = d_in * out_features + (out_features if bias else 0)
    return LayerCost(name, "linear", out, params, rows * d_in * out_features,
                     ADD_FLOPS * _numel(out) if bias else 0, _numel(out))


def batch_norm(in_shape: Shape, mode: str = "train", name: str = "bn") -> LayerCost:
    """Batch norm over channels (axis 0): 2C parameters; 7, 2 or 0 FLOPs/element (train, inference, folded)."""
    if mode not in BATCH_NORM_FLOPS:
        raise BudgetError(f"batch norm mode {mode!r} is unknown; choose one of "
                          f"{', '.join(BATCH_NORM_FLOPS)}")
    n = _numel(in_shape)
    return LayerCost(name, "batch_norm", in_shape, 2 * in_shape[0], 0,
                     BATCH_NORM_FLOPS[mode] * n, n)


def layer_norm(in_shape: Shape, name: str = "ln") -> LayerCost:
    """LayerNorm over the last axis: 2d parameters; statistics every pass, 7 FLOPs/element (Ba et al. 2016)."""
    n = _numel(in_shape)
    return LayerCost(name, "layer_norm", in_shape, 2 * in_shape[-1], 0, NORM_TRAIN_FLOPS * n, n)


def activation(in_shape: Shape, fn: str, name: str | None = None) -> LayerCost:
    """Element-wise non-linearity: ReLU 1, ReLU6 2, sigmoid 4, SiLU/swish 5, GELU 9 FLOPs/element."""
    if fn not in ACTIVATION_FLOPS:
        raise BudgetError(f"activation {fn!r} is unknown; choose one of {', '.join(ACTIVATION_FLOPS)}")
    n = _numel(in_shape)
    return LayerCost(name or fn, "activation", in_shape, 0, 0, ACTIVATION_FLOPS[fn] * n, n)


def softmax(in_shape: Shape, name: str = "softmax") -> LayerCost:
    """Softmax over the last axis: 3 FLOPs/element (exp, sum, divide; Hoffmann et al. 2022 App. F)."""
    n = _numel(in_shape)
    return LayerCost(name, "softmax", in_shape, 0, 0, SOFTMAX_FLOPS * n, n)


def _pool(in_shape: Shape, kernel: int, stride: int | None, padding: int | str,
          name: str, kind: str, flops_per_window: int) -> LayerCost:
    c, h, w = _feature_map(in_shape, name)
    _whole(f"{name} kernel", kernel)
    step = kernel if stride is None else _whole(f"{name} stride", stride)
    out = (c, conv_output_size(h, kernel, step, padding), conv_output_size(w, kernel, step, padding))
    return LayerCost(name, kind, out, 0, 0, flops_per_window * _numel(out), _numel(out))


def max_pool2d(in_shape: Shape, kernel: int, stride: int | None = None,
               padding: int | str = "same", name: str = "maxpool") -> LayerCost:
    """Max pooling: k^2 - 1 comparisons per output element."""
    return _pool(in_shape, kernel, stride, padding, name, "max_pool", kernel * kernel - 1)


def avg_pool2d(in_shape: Shape, kernel: int, stride: int | None = None,
               padding: int | str = "same", name: str = "avgpool") -> LayerCost:
    """Average pooling: k^2 - 1 adds and one multiply by 1/k^2 per output element."""
    return _pool(in_shape, kernel, stride, padding, name, "avg_pool", kernel * kernel)


def global_avg_pool(in_shape: Shape, name: str = "gap") -> LayerCost:
    """Global average pool (C, H, W) -> (C,): H W - 1 adds and one multiply per channel = C H W."""
    c, h, w = _feature_map(in_shape, name)
    return LayerCost(name, "global_avg_pool", (c,), 0, 0, c * h * w, c)


def residual_add(shape: Shape, name: str = "add") -> LayerCost:
    """x + F(x): one add per element (He et al. 2016 §3.2: "element-wise addition")."""
    n = _numel(shape)
    return LayerCost(name, "residual_add", shape, 0, 0, ADD_FLOPS * n, n)


def channel_scale(in_shape: Shape, name: str = "scale") -> LayerCost:
    """Multiply a (C, H, W) map by a per-channel gate: one multiply per element."""
    n = _numel(in_shape)
    return LayerCost(name, "channel_scale", in_shape, 0, 0, ADD_FLOPS * n, n)


def attention(in_shape: Shape, n_head: int, bias: bool = True, name: str = "attention") -> LayerCost:
    """Self-attention on (T, d): QKV 3Td^2, QK^T T^2 d, softmax 3hT^2, AV T^2 d, output Td^2.

    MACs as in Hoffmann et al. 2022 App. F (full context, not halved for a causal mask); the
    1/sqrt(d_head) scaling is not counted, as there.
    """
    if len(in_shape) != 2:
        raise BudgetError(f"{name} needs a (tokens, d_model) input, got shape {list(in_shape)}")
    t, d = in_shape
    _whole(f"{name} heads", n_head)
    if d % n_head:
        raise BudgetError(f"{name}: n_head={n_head} must divide d_model={d}")
    qkv = linear(in_shape, 3 * d, bias, name=f"{name}.qkv")
    scores = LayerCost(f"{name}.scores", "matmul", (n_head, t, t), 0, t * t * d, 0, n_head * t * t)
    probs = softmax((n_head, t, t), name=f"{name}.softmax")
    context = LayerCost(f"{name}.context", "matmul", (t, d), 0, t * t * d, 0, t * d)
    proj = linear((t, d), d, bias, name=f"{name}.proj")
    return block(name, "attention", [qkv, scores, probs, context, proj])


def squeeze_excite(in_shape: Shape, reduced_channels: int, fn: str = "silu",
                   name: str = "se") -> LayerCost:
    """Squeeze-and-excitation (Hu et al. 2018): pool, 1x1 C->r (bias), act, 1x1 r->C (bias), sigmoid, scale."""
    c, _, _ = _feature_map(in_shape, name)
    _whole(f"{name} reduced channels", reduced_channels)
    pool = global_avg_pool(in_shape, name=f"{name}.pool")
    reduce = conv2d((c, 1, 1), reduced_channels, 1, bias=True, name=f"{name}.reduce")
    act = activation(reduce.output_shape, fn, name=f"{name}.{fn}")
    expand = conv2d(act.output_shape, c, 1, bias=True, name=f"{name}.expand")
    gate = activation(expand.output_shape, "sigmoid", name=f"{name}.sigmoid")
    scale = channel_scale(in_shape, name=f"{name}.scale")
    return block(name, "squeeze_excite", [pool, reduce, act, expand, gate, scale])


def _conv_bn_act(in_shape: Shape, out_channels: int, kernel: int, stride: int, bn: str,
                 fn: str | None, name: str, groups: int = 1) -> list[LayerCost]:
    conv = conv2d(in_shape, out_channels, kernel, stride, groups=groups, name=name)
    if groups > 1 and groups == in_shape[0] == out_channels:
        conv = LayerCost(name, "depthwise_conv", conv.output_shape, conv.params, conv.macs,
                         conv.elementwise_flops, conv.activation_elements)
    parts = [conv, batch_norm(conv.output_shape, bn, name=f"{name}.bn")]
    if fn is not None:
        parts.append(activation(conv.output_shape, fn, name=f"{name}.{fn}"))
    return parts


def mbconv(in_shape: Shape, out_channels: int, kernel: int, stride: int = 1, expand_ratio: int = 6,
           se_ratio: float | None = 0.25, fn: str = "silu", bn: str = "train", skip: bool = True,
           name: str = "mbconv") -> LayerCost:
    """MBConv (Sandler et al. 2018; Tan & Le 2019): 1x1 expand, k x k depthwise, SE, 1x1 project, skip.

    As the reference implementation (tensorflow/tpu efficientnet_model.py MBConvBlock): no
    expansion conv when the ratio is 1, SE width max(1, int(C_in x se_ratio)) of the block's
    input channels, no activation after the projection, identity skip only when stride is 1 and
    C_in == C_out.
    """
    c_in = _feature_map(in_shape, name)[0]
    _whole(f"{name} expand ratio", expand_ratio)
    parts: list[LayerCost] = []
    x: Shape = in_shape
    if expand_ratio != 1:
        parts += _conv_bn_act(x, c_in * expand_ratio, 1, 1, bn, fn, f"{name}.expand")
        x = parts[-1].output_shape
    parts += _conv_bn_act(x, x[0], kernel, stride, bn, fn, f"{name}.depthwise", groups=x[0])
    x = parts[-1].output_shape
    if se_ratio:
        if not 0 < se_ratio <= 1:
            raise BudgetError(f"{name} se_ratio={se_ratio!r} must be in (0, 1]")
        parts.append(squeeze_excite(x, max(1, int(c_in * se_ratio)), fn, name=f"{name}.se"))
    parts += _conv_bn_act(x, out_channels, 1, 1, bn, None, f"{name}.project")
    if skip and stride == 1 and c_in == out_channels:
        parts.append(residual_add(parts[-1].output_shape, name=f"{name}.add"))
    return block(name, "mbconv", parts)


def bottleneck(in_shape: Shape, width: int, stride: int = 1, expansion: int = 4, bn: str = "train",
               fn: str = "relu", name: str = "bottleneck") -> LayerCost:
    """ResNet bottleneck (He et al. 2016 Fig. 5; stride on the 3x3 as torchvision's v1.5).

    1x1 C->w, 3x3 w->w (stride), 1x1 w->e w, each with BN; a 1x1 projection shortcut with BN when
    the stride or the width changes; add; ReLU.
    """
    c_in = _feature_map(in_shape, name)[0]
    parts = _conv_bn_act(in_shape, width, 1, 1, bn, fn, f"{name}.conv1")
    parts += _conv_bn_act(parts[-1].output_shape, width, 3, stride, bn, fn, f"{name}.conv2")
    parts += _conv_bn_act(parts[-1].output_shape, width * expansion, 1, 1, bn, None, f"{name}.conv3")
    return _residual_tail(in_shape, c_in, stride, parts, bn, fn, name, "bottleneck")


def basic_block(in_shape: Shape, width: int, stride: int = 1, bn: str = "train", fn: str = "relu",
                name: str = "basic") -> LayerCost:
    """ResNet basic block (He et al. 2016 Fig. 5 left): two 3x3 convs with BN, shortcut, add, ReLU."""
    c_in = _feature_map(in_shape, name)[0]
    parts = _conv_bn_act(in_shape, width, 3, stride, bn, fn, f"{name}.conv1")
    parts += _conv_bn_act(parts[-1].output_shape, width, 3, 1, bn, None, f"{name}.conv2")
    return _residual_tail(in_shape, c_in, stride, parts, bn, fn, name, "basic_block")


def _residual_tail(in_shape: Shape, c_in: int, stride: int, parts: list[LayerCost], bn: str,
                   fn: str, name: str, kind: str) -> LayerCost:
    out = parts[-1].output_shape
    if stride != 1 or c_in != out[0]:
        parts += _conv_bn_act(in_shape, out[0], 1, stride, bn, None, f"{name}.downsample")
    parts.append(residual_add(out, name=f"{name}.add"))
    parts.append(activation(out, fn, name=f"{name}.{fn}"))
    return block(name, kind, parts)
