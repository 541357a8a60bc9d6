"""Torch CNNs built from the same layer lists as budget.models.cnn, to check the analytic counts.

`build(spec, scaling)` turns a budget.models.cnn.NetworkSpec into an nn.Module layer for layer, using
budget.models.cnn.stage_layers for the scaled channels, repeats and strides (one source of truth) and
the analytic output shapes to wire channels. `count_flops` runs torch's FlopCounterMode on the
meta device (no memory, no compute), so even EfficientNet-B7 counts in well under a second.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from budget.models import cnn
from budget.models import layers as L

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid, "silu": nn.SiLU, "swish": nn.SiLU,
    "gelu": lambda: nn.GELU(approximate="tanh")}


def _padding(padding: Any, kernel: int) -> int:
    if padding == "same":
        if kernel % 2 == 0:
            raise ValueError(f"'same' padding with an even kernel ({kernel}) has no torch equivalent")
        return kernel // 2  # odd k, padding k // 2 gives ceil(n / s) outputs, as TF 'same'
    return 0 if padding == "valid" else int(padding)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int, fn: str | None,
             groups: int = 1) -> nn.Sequential:
    mods: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups,
                                       bias=False), nn.BatchNorm2d(c_out)]
    if fn is not None:
        mods.append(ACTIVATIONS[fn]())
    return nn.Sequential(*mods)


class MBConv(nn.Module):
    """Expand 1x1, depthwise k x k, squeeze-and-excite, project 1x1, identity skip (Tan & Le 2019)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int,
                 se_ratio: float, fn: str, skip: bool):
        super().__init__()
        mid = c_in * expand
        self.expand = _conv_bn(c_in, mid, 1, 1, fn) if expand != 1 else nn.Identity()
        self.depthwise = _conv_bn(mid, mid, kernel, stride, fn, groups=mid)
        self.se: nn.Module | None = None
        if se_ratio:
            reduced = max(1, int(c_in * se_ratio))
            self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(mid, reduced, 1),
                                    ACTIVATIONS[fn](), nn.Conv2d(reduced, mid, 1), nn.Sigmoid())
        self.project = _conv_bn(mid, c_out, 1, 1, None)
        self.skip = skip and stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(self.expand(x))
        if self.se is not None:
            y = y * self.se(y)
        y = self.project(y)
        return x + y if self.skip else y


class Residual(nn.Module):
    """ResNet block: body, projection shortcut when the shape changes, add, activation."""

    def __init__(self, body: nn.Module, c_in: int, c_out: int, stride: int, fn: str):
        super().__init__()
        self.body = body
        self.shortcut = (_conv_bn(c_in, c_out, 1, stride, None)
                         if stride != 1 or c_in != c_out else nn.Identity())
        self.act = ACTIVATIONS[fn]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class Attention(nn.Module):
    """Multi-head self-attention written as matmuls (what FlopCounterMode sees on any device)."""

    def __init__(self, d: int, heads: int, bias: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d, bias=bias)
        self.proj = nn.Linear(d, d, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))


def _module(shape: L.Shape, a: dict[str, Any]) -> nn.Module:
    kind, c = a["type"], shape[0]
    stride, fn = a.get("stride", 1), a.get("fn", "relu")
    if kind in ("conv", "depthwise_conv", "pointwise_conv"):
        kernel = 1 if kind == "pointwise_conv" else a["kernel"]
        out = c if kind == "depthwise_conv" else a["out"]
        groups = c if kind == "depthwise_conv" else a.get("groups", 1)
        return nn.Conv2d(c, out, kernel, stride, _padding(a.get("padding", "same"), kernel),
                         groups=groups, bias=a.get("bias", False))
    if kind == "separable":
        return nn.Sequential(nn.Conv2d(c, c, a["kernel"], stride, a["kernel"] // 2, groups=c,
                                       bias=False), nn.Conv2d(c, a["out"], 1, bias=False))
    if kind == "batch_norm":
        return nn.BatchNorm2d(c) if len(shape) == 3 else nn.BatchNorm1d(c)
    if kind == "layer_norm":
        return nn.LayerNorm(shape[-1])
    if kind == "activation":
        return ACTIVATIONS[a["fn"]]()
    if kind == "softmax":
        return nn.Softmax(dim=-1)
    if kind in ("max_pool", "avg_pool"):
        pool = nn.MaxPool2d if kind == "max_pool" else nn.AvgPool2d
        return pool(a["kernel"], a.get("stride"), _padding(a.get("padding", "same"), a["kernel"]))
    if kind == "global_avg_pool":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if kind == "linear":
        return nn.Linear(shape[-1], a["out"], bias=a.get("bias", True))
    if kind == "attention":
        return Attention(shape[-1], a["heads"], a.get("bias", True))
    if kind == "mbconv":
        return MBConv(c, a["out"], a["kernel"], stride, a.get("expand", 6),
                      a.get("se_ratio", 0.25), a.get("fn", "silu"), a.get("skip", True))
    if kind == "bottleneck":
        w, out = a["out"], a["out"] * a.get("expansion", 4)
        body = nn.Sequential(_conv_bn(c, w, 1, 1, fn), _conv_bn(w, w, 3, stride, fn),
                             _conv_bn(w, out, 1, 1, None))
        return Residual(body, c, out, stride, fn)
    if kind == "basic":
        w = a["out"]
        return Residual(nn.Sequential(_conv_bn(c, w, 3, stride, fn), _conv_bn(w, w, 3, 1, None)),
                        c, w, stride, fn)
    raise ValueError(f"no torch builder for layer type {kind!r}")


def build(spec: cnn.NetworkSpec, scaling: cnn.Scaling | None = None) -> nn.Sequential:
    """The torch network of `spec` at `scaling`: one nn.Sequential per stage."""
    scaling = scaling or cnn.Scaling()
    shape = cnn.scaled_input(spec, scaling)
    stages = []
    for stage, _, resolved in cnn.stage_layers(spec, scaling):
        mods = []
        for name, args in resolved:
            mods.append(_module(shape, args))
            shape = cnn.layer_cost(shape, args, "train", name).output_shape
        stages.append(nn.Sequential(*mods))
    return nn.Sequential(*stages)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (batch-norm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: L.Shape, *, backward: bool = False,
                device: str = "meta") -> int:
    """FlopCounterMode FLOPs (2 per MAC; convs and matmuls only) for one sample, forward or step.

    Moves `model` to `device` (meta by default: shapes only, no memory, no arithmetic). Note:
    torch's backward formula for grouped convolutions ignores the groups (a depthwise conv's
    backward counts C times too much; pytorch PR #183405), so count steps of depthwise networks
    with care.
    """
    model = model.to(device)
    x = torch.zeros((1, *input_shape), device=device)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            out.sum().backward()
    return int(counter.get_total_flops())
