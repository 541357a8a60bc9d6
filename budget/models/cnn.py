"""CNNs as data: a base network is a TOML layer list, evaluated layer by layer at any scale.

File format (see budget/models/networks/*.toml)::

    name = "EfficientNet-B0"
    source = "where the architecture comes from"
    input = [3, 224, 224]            # channels, height, width (or [tokens, d_model])
    channel_divisor = 8              # width scaling rounds channels to multiples of this

    [[stage]]
    name = "stage2"
    repeats = 2                      # optional; only stages with `repeats` are depth-scaled
    layers = [{ type = "mbconv", out = 24, kernel = 3, stride = 2, expand = 6, se_ratio = 0.25 }]

A stage's layers run `repeats` times; repeats after the first use stride 1 (tensorflow/tpu
efficientnet_model.py Model._build). Compound scaling multiplies every `out` by the width
coefficient (rounded by `round_channels`, unless the layer sets `scale_width = false`), every
`repeats` by the depth coefficient (rounded up), and the input's height and width by the
resolution coefficient (rounded to whole pixels).
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from budget.errors import BudgetError
from budget.models import layers as L

NETWORKS_DIR = Path(__file__).with_name("networks")
BUILTIN_NETWORKS = {"efficientnet-b0": "efficientnet_b0.toml", "resnet-18": "resnet_18.toml",
                    "resnet-50": "resnet_50.toml"}
ALIASES = {"efficientnet": "efficientnet-b0", "b0": "efficientnet-b0", "resnet18": "resnet-18",
           "resnet50": "resnet-50"}
MAX_COEFFICIENT = 1000.0  # sanity bound on width/depth/resolution multipliers
MAX_REPEATS = 10_000  # a stage repeated more is a typo (EfficientNet-B7's longest stage repeats 10)
MAX_LAYERS = 200_000  # layers after depth scaling: beyond this the per-layer walk would not finish
DEFAULT_BYTES_PER_ELEMENT = 2  # activations in bf16/fp16 (mixed-precision training)

Spec = dict[str, Any]
_Builder = Callable[[L.Shape, Spec, str, str], L.LayerCost]

# type -> (allowed keys besides type/name/scale_width, builder(in_shape, spec, bn, name))
LAYER_TYPES: dict[str, tuple[tuple[str, ...], _Builder]] = {
    "conv": (("out", "kernel", "stride", "groups", "bias", "padding"),
             lambda x, s, bn, n: L.conv2d(x, s["out"], s["kernel"], s.get("stride", 1),
                                          s.get("groups", 1), s.get("bias", False),
                                          s.get("padding", "same"), n)),
    "depthwise_conv": (("kernel", "stride", "padding"),
                       lambda x, s, bn, n: L.depthwise_conv2d(x, s["kernel"], s.get("stride", 1),
                                                              padding=s.get("padding", "same"),
                                                              name=n)),
    "pointwise_conv": (("out",), lambda x, s, bn, n: L.pointwise_conv2d(x, s["out"], name=n)),
    "separable": (("out", "kernel", "stride"),
                  lambda x, s, bn, n: L.depthwise_separable_conv2d(x, s["out"], s["kernel"],
                                                                   s.get("stride", 1), n)),
    "batch_norm": ((), lambda x, s, bn, n: L.batch_norm(x, bn, n)),
    "layer_norm": ((), lambda x, s, bn, n: L.layer_norm(x, n)),
    "activation": (("fn",), lambda x, s, bn, n: L.activation(x, s["fn"], n)),
    "softmax": ((), lambda x, s, bn, n: L.softmax(x, n)),
    "max_pool": (("kernel", "stride", "padding"),
                 lambda x, s, bn, n: L.max_pool2d(x, s["kernel"], s.get("stride"),
                                                  s.get("padding", "same"), n)),
    "avg_pool": (("kernel", "stride", "padding"),
                 lambda x, s, bn, n: L.avg_pool2d(x, s["kernel"], s.get("stride"),
                                                  s.get("padding", "same"), n)),
    "global_avg_pool": ((), lambda x, s, bn, n: L.global_avg_pool(x, n)),
    "linear": (("out", "bias"), lambda x, s, bn, n: L.linear(x, s["out"], s.get("bias", True), n)),
    "attention": (("heads", "bias"),
                  lambda x, s, bn, n: L.attention(x, s["heads"], s.get("bias", True), n)),
    "mbconv": (("out", "kernel", "stride", "expand", "se_ratio", "fn", "skip"),
               lambda x, s, bn, n: L.mbconv(x, s["out"], s["kernel"], s.get("stride", 1),
                                            s.get("expand", 6), s.get("se_ratio", 0.25),
                                            s.get("fn", "silu"), bn, s.get("skip", True), n)),
    "bottleneck": (("out", "stride", "expansion", "fn"),
                   lambda x, s, bn, n: L.bottleneck(x, s["out"], s.get("stride", 1),
                                                    s.get("expansion", 4), bn,
                                                    s.get("fn", "relu"), n)),
    "basic": (("out", "stride", "fn"),
              lambda x, s, bn, n: L.basic_block(x, s["out"], s.get("stride", 1), bn,
                                                s.get("fn", "relu"), n)),
}
_REQUIRED_KEYS = {"conv": ("out", "kernel"), "depthwise_conv": ("kernel",), "pointwise_conv": ("out",),
                  "separable": ("out", "kernel"), "activation": ("fn",), "max_pool": ("kernel",),
                  "avg_pool": ("kernel",), "linear": ("out",), "attention": ("heads",),
                  "mbconv": ("out", "kernel"), "bottleneck": ("out",), "basic": ("out",)}


@dataclass(frozen=True)
class Stage:
    """Layers run `repeats` times; `scale_depth` when the file gave `repeats`."""

    name: str
    layers: tuple[Spec, ...]
    repeats: int = 1
    scale_depth: bool = False


@dataclass(frozen=True)
class NetworkSpec:
    """A base network: input shape, stages of layer specs, the channel rounding divisor."""

    name: str
    input_shape: L.Shape
    stages: tuple[Stage, ...]
    channel_divisor: int = 8
    source: str = ""
    path: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "input_shape": list(self.input_shape),
                "channel_divisor": self.channel_divisor, "path": self.path,
                "stages": [{"name": s.name, "repeats": s.repeats, "layers": list(s.layers)}
                           for s in self.stages]}


@dataclass(frozen=True)
class Scaling:
    """Width, depth and resolution multipliers; `image_size` (pixels) overrides resolution."""

    width: float = 1.0
    depth: float = 1.0
    resolution: float = 1.0
    image_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("width", "depth", "resolution"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or not 0 < value <= MAX_COEFFICIENT:
                raise BudgetError(f"{name} coefficient {value!r} must be a finite number in "
                                  f"(0, {MAX_COEFFICIENT:g}]")
        if self.image_size is not None and (isinstance(self.image_size, bool) or not isinstance(
                self.image_size, int) or not 1 <= self.image_size <= 100_000):
            raise BudgetError(f"image size {self.image_size!r} must be a whole number of pixels "
                              f"in [1, 100000]")


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """c·w to the nearest multiple of `divisor`, at least `divisor`, never >10% below c·w.

    The reference implementation's round_filters (tensorflow/tpu efficientnet_model.py), except
    that width 1 keeps the file's channels as written (the reference rounds them too, which
    changes nothing for EfficientNet, whose channels are multiples of 8, but would silently alter
    a base network with, say, 10 classes or 3 channels).
    """
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """ceil(d x repeats), the reference implementation's round_repeats."""
    return int(math.ceil(depth * repeats))


def scaled_input(spec: NetworkSpec, scaling: Scaling) -> L.Shape:
    """The input shape at `scaling`: height and width x resolution, rounded to whole pixels."""
    shape = spec.input_shape
    if len(shape) != 3:
        if scaling.resolution != 1.0 or scaling.image_size is not None:
            raise BudgetError(f"{spec.name}: resolution scaling needs a (channels, height, width) "
                              f"input, not {list(shape)}")
        return shape
    c, h, w = shape
    if scaling.image_size is not None:
        return c, scaling.image_size, max(1, round(w * scaling.image_size / h))
    return c, max(1, round(h * scaling.resolution)), max(1, round(w * scaling.resolution))


@dataclass(frozen=True)
class StageCost:
    name: str
    repeats: int
    base_repeats: int
    layers: tuple[L.LayerCost, ...]

    @property
    def output_shape(self) -> L.Shape:
        return self.layers[-1].output_shape

    def total(self, attr: str) -> int:
        return sum(getattr(layer, attr) for layer in self.layers)

    def to_dict(self, bytes_per_element: int = DEFAULT_BYTES_PER_ELEMENT) -> dict[str, Any]:
        return {"name": self.name, "repeats": self.repeats, "base_repeats": self.base_repeats,
                "output_shape": list(self.output_shape), "params": self.total("params"),
                "forward_macs": self.total("macs"), "forward_flops": self.total("flops"),
                "activation_bytes": self.total("activation_elements") * bytes_per_element}


@dataclass(frozen=True)
class NetworkCost:
    """A network evaluated at one scale, per sample: stages of layer costs and their totals."""

    name: str
    input_shape: L.Shape
    batch_norm: str
    stages: tuple[StageCost, ...]

    def total(self, attr: str) -> int:
        return sum(stage.total(attr) for stage in self.stages)

    @property
    def params(self) -> int:
        return self.total("params")

    @property
    def macs(self) -> int:
        return self.total("macs")

    @property
    def flops(self) -> int:
        return self.total("flops")

    @property
    def activation_elements(self) -> int:
        return self.total("activation_elements")

    @property
    def output_shape(self) -> L.Shape:
        return self.stages[-1].output_shape

    def rows(self, detail: bool = False) -> list[tuple[str, L.LayerCost]]:
        """(stage name, layer) for every layer; with `detail`, the parts of blocks instead."""
        out: list[tuple[str, L.LayerCost]] = []
        for stage in self.stages:
            for layer in stage.layers:
                out += [(stage.name, p) for p in _leaves(layer)] if detail else [(stage.name, layer)]
        return out


def _leaves(layer: L.LayerCost) -> list[L.LayerCost]:
    if not layer.parts:
        return [layer]
    return [leaf for part in layer.parts for leaf in _leaves(part)]


def evaluate(spec: NetworkSpec, scaling: Scaling | None = None, bn: str = "train") -> NetworkCost:
    """Every layer of `spec` at `scaling`: shapes flow from the input through the stages."""
    scaling = scaling or Scaling()
    shape = input_shape = scaled_input(spec, scaling)
    stages = []
    for stage, repeats, resolved in stage_layers(spec, scaling):
        costs: list[L.LayerCost] = []
        for name, args in resolved:
            costs.append(layer_cost(shape, args, bn, name))
            shape = costs[-1].output_shape
        stages.append(StageCost(stage.name, repeats, stage.repeats, tuple(costs)))
    return NetworkCost(spec.name, input_shape, bn, tuple(stages))


def stage_layers(spec: NetworkSpec, scaling: Scaling) -> list[tuple[Stage, int, list[tuple[str, Spec]]]]:
    """Per stage: its scaled repeats and the (name, layer spec) it runs, channels and strides resolved.

    Every `out` is width-scaled and rounded (unless `scale_width = false`); repeats after the
    first run with stride 1. experiments.training.cnn builds the torch network from the same list.
    """
    out = []
    total = sum(len(st.layers) * (round_repeats(st.repeats, scaling.depth) if st.scale_depth else st.repeats)
                for st in spec.stages)
    if total > MAX_LAYERS:
        raise BudgetError(f"{spec.name} at depth {scaling.depth:g} has {total:,} layers, more than "
                          f"{MAX_LAYERS:,}; give fewer repeats or a smaller depth coefficient")
    for stage in spec.stages:
        repeats = round_repeats(stage.repeats, scaling.depth) if stage.scale_depth else stage.repeats
        resolved = []
        for r in range(repeats):
            for i, layer in enumerate(stage.layers):
                args = dict(layer)
                if "out" in args and args.get("scale_width", True):
                    args["out"] = round_channels(args["out"], scaling.width, spec.channel_divisor)
                if r > 0 and "stride" in args:
                    args["stride"] = 1
                resolved.append((_layer_name(stage, r, i, repeats), args))
        out.append((stage, repeats, resolved))
    return out


def _layer_name(stage: Stage, repeat: int, index: int, repeats: int) -> str:
    layer = stage.layers[index]
    base = layer.get("name") or layer.get("fn") or layer["type"]
    name = f"{stage.name}.{base}" if len(stage.layers) > 1 else stage.name
    return f"{name}.{repeat}" if repeats > 1 else name


def layer_cost(shape: L.Shape, args: Spec, bn: str, name: str) -> L.LayerCost:
    """The cost of one resolved layer spec on an input of `shape`; errors name the layer."""
    try:
        return LAYER_TYPES[args["type"]][1](shape, args, bn, name)
    except BudgetError as exc:
        raise BudgetError(f"layer {name}: {exc}") from None


# ---- loading ---------------------------------------------------------------------------------

def builtin_names() -> list[str]:
    return sorted(BUILTIN_NETWORKS)


def load_network(source: str | os.PathLike[str]) -> NetworkSpec:
    """A built-in network by name (efficientnet-b0, resnet-18, resnet-50) or a TOML file."""
    key = ALIASES.get(str(source).lower(), str(source).lower())
    if key in BUILTIN_NETWORKS:
        return read_network(NETWORKS_DIR / BUILTIN_NETWORKS[key])
    path = Path(source)
    if not path.is_file():
        raise BudgetError(f"network {str(source)!r} is neither a file nor a built-in network "
                          f"({', '.join(builtin_names())})")
    return read_network(path)


def read_network(path: Path) -> NetworkSpec:
    """Parse and check a layer-list TOML file; errors name the file, stage and layer."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BudgetError(f"{path}: cannot read the layer list: {exc}") from None
    except RecursionError:
        raise BudgetError(f"{path}: the layer list nests tables or arrays too deeply to read") from None
    where = str(path)
    unknown = set(data) - {"name", "source", "input", "channel_divisor", "stage"}
    if unknown:
        raise BudgetError(f"{where}: unknown top-level key(s) {', '.join(sorted(unknown))}; allowed: "
                          f"name, source, input, channel_divisor, stage")
    shape = data.get("input")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise BudgetError(f"{where}: input must be a list of whole numbers >= 1 such as [3, 224, 224]")
    divisor = data.get("channel_divisor", 8)
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise BudgetError(f"{where}: channel_divisor={divisor!r} must be a whole number >= 1")
    stages = data.get("stage")
    if not isinstance(stages, list) or not stages:
        raise BudgetError(f"{where}: needs at least one [[stage]] with a list of layers")
    return NetworkSpec(str(data.get("name", path.stem)), tuple(shape),
                       tuple(_parse_stage(where, i, s) for i, s in enumerate(stages)),
                       divisor, str(data.get("source", "")), str(path))


def _parse_stage(where: str, index: int, raw: Any) -> Stage:
    label = f"{where}: stage {index + 1}"
    if not isinstance(raw, dict):
        raise BudgetError(f"{label} must be a table with name, layers and optional repeats")
    extra = set(raw) - {"name", "layers", "repeats"}
    if extra:
        raise BudgetError(f"{label}: unknown key(s) {', '.join(sorted(extra))}; allowed: name, "
                          f"layers, repeats")
    name = str(raw.get("name", f"stage{index + 1}"))
    label = f"{where}: stage {name!r}"
    repeats = raw.get("repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise BudgetError(f"{label}: repeats={repeats!r} must be a whole number from 1 to {MAX_REPEATS:,}")
    layers = raw.get("layers")
    if not isinstance(layers, list) or not layers:
        raise BudgetError(f"{label}: layers must be a non-empty list of {{ type = ... }} tables")
    return Stage(name, tuple(_parse_layer(label, j, layer) for j, layer in enumerate(layers)),
                 repeats, "repeats" in raw)


def _parse_layer(label: str, index: int, raw: Any) -> Spec:
    label = f"{label} layer {index + 1}"
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in LAYER_TYPES:
        raise BudgetError(f"{label}: type {kind!r} is unknown; choose one of "
                          f"{', '.join(LAYER_TYPES)}")
    allowed = set(LAYER_TYPES[kind][0]) | {"type", "name", "scale_width"}
    extra = set(raw) - allowed
    if extra:
        raise BudgetError(f"{label} ({kind}): unknown key(s) {', '.join(sorted(extra))}; allowed: "
                          f"{', '.join(sorted(allowed))}")
    missing = [k for k in _REQUIRED_KEYS.get(kind, ()) if k not in raw]
    if missing:
        raise BudgetError(f"{label} ({kind}): missing {', '.join(missing)}")
    for key, value in raw.items():
        problem = _check_value(key, value)
        if problem:
            raise BudgetError(f"{label} ({kind}): {key}={value!r} {problem}")
    return dict(raw)


_WHOLE = ("out", "kernel", "stride", "groups", "heads", "expand", "expansion")
_FLAGS = ("bias", "skip", "scale_width")


def _check_value(key: str, value: Any) -> str | None:
    """Why a layer field's value is wrong, or None."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    if key in _WHOLE and not (whole and value >= 1):
        return "must be a whole number >= 1"
    if key in _FLAGS and not isinstance(value, bool):
        return "must be true or false"
    if key == "se_ratio" and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not 0 <= value <= 1):
        return "must be a number in [0, 1] (0 turns squeeze-and-excitation off)"
    if key == "padding" and value not in ("same", "valid") and not (whole and value >= 0):
        return "must be 'same', 'valid' or a whole number >= 0"
    if key in ("fn", "name") and not isinstance(value, str):
        return "must be a string"
    return None


@dataclass(frozen=True)
class LayerTable:
    """`budget flops --layers`: every layer's shape, params, MACs, FLOPs, activation bytes, and totals."""

    network: NetworkCost
    bytes_per_element: int = DEFAULT_BYTES_PER_ELEMENT
    detail: bool = False

    def to_dict(self) -> dict[str, Any]:
        net, bpe = self.network, self.bytes_per_element
        return {
            "network": net.name, "input_shape": list(net.input_shape),
            "batch_norm": net.batch_norm, "bytes_per_element": bpe, "per": "sample",
            "layers": [{"stage": stage, **layer.to_dict(bpe)} for stage, layer in net.rows(self.detail)],
            "totals": {"params": net.params, "forward_macs": net.macs, "forward_flops": net.flops,
                       "elementwise_flops": net.total("elementwise_flops"),
                       "activation_bytes": net.activation_elements * bpe,
                       "training_flops": L.training_flops(net.flops),
                       "training_flops_recompute": L.training_flops(net.flops, recompute=True)},
        }
