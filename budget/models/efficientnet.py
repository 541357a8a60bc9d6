"""EfficientNet compound scaling (Tan & Le 2019) of any layer-list network, and its training cost.

depth d = alpha^phi, width w = beta^phi, resolution r = gamma^phi (Tan & Le 2019 eq. 3), with
alpha beta^2 gamma^2 ~ 2 so that forward FLOPs grow about 2^phi. The rounding the reference
implementation applies (channels to multiples of 8, repeats up, pixels to whole numbers) makes
the realised FLOP ratio differ from (alpha beta^2 gamma^2)^phi; results report both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

from budget.errors import BudgetError
from budget.models import cnn
from budget.models.layers import training_flops

# Tan & Le 2019 §3.3, "step 1": grid search on B0 at phi = 1 under alpha beta^2 gamma^2 ~ 2
ALPHA = 1.2  # depth
BETA = 1.1  # width
GAMMA = 1.15  # resolution
TARGET_PRODUCT = 2.0  # the paper's constraint alpha beta^2 gamma^2 ~ 2
PHI_RANGE = (-8.0, 16.0)  # phi accepted and searched (B7 is phi ~ 6.5 by FLOPs; 16 is ~5e13 FLOPs)
PHI_TOLERANCE = 1e-4  # bisection stops when the bracket is this narrow

# Published variants: (width, depth, image size) from tensorflow/tpu efficientnet_builder.py
# efficientnet_params (commit 082b2267); hand-rounded, not exact powers of (alpha, beta, gamma).
VARIANTS = {
    "b0": (1.0, 1.0, 224), "b1": (1.0, 1.1, 240), "b2": (1.1, 1.2, 260), "b3": (1.2, 1.4, 300),
    "b4": (1.4, 1.8, 380), "b5": (1.6, 2.2, 456), "b6": (1.8, 2.6, 528), "b7": (2.0, 3.1, 600),
}


@dataclass(frozen=True)
class Coefficients:
    """Compound-scaling bases: depth alpha, width beta, resolution gamma, each >= 1 (Tan & Le eq. 3)."""

    alpha: float = ALPHA
    beta: float = BETA
    gamma: float = GAMMA

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or not 1.0 <= value <= 10.0:
                raise BudgetError(f"{name}={value!r} must be a finite number in [1, 10] "
                                  f"(Tan & Le 2019 eq. 3 requires alpha, beta, gamma >= 1)")
        if self.product == 1.0:
            raise BudgetError("alpha, beta and gamma are all 1: compound scaling would not grow "
                              "the network; give at least one coefficient > 1")

    @property
    def product(self) -> float:
        """alpha beta^2 gamma^2: the FLOP growth factor per unit of phi before rounding."""
        return self.alpha * self.beta ** 2 * self.gamma ** 2

    def scaling(self, phi: float) -> cnn.Scaling:
        """d = alpha^phi, w = beta^phi, r = gamma^phi."""
        check_phi(phi)
        return cnn.Scaling(width=self.beta ** phi, depth=self.alpha ** phi,
                           resolution=self.gamma ** phi)

    def to_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma,
                "product": self.product}


def check_phi(phi: float) -> float:
    if isinstance(phi, bool) or not isinstance(phi, (int, float)) or not math.isfinite(phi) \
            or not PHI_RANGE[0] <= phi <= PHI_RANGE[1]:
        raise BudgetError(f"phi={phi!r} must be a finite number in [{PHI_RANGE[0]:g}, "
                          f"{PHI_RANGE[1]:g}]")
    return float(phi)


@dataclass(frozen=True)
class Target:
    """A forward-FLOP (or MAC) target and how the rounded network meets it."""

    metric: str  # "forward_flops" or "forward_macs"
    value: float
    phi_ideal: float  # log(target / base) / log(alpha beta^2 gamma^2): phi without rounding
    achieved: int  # the chosen network's count, <= value
    next_phi: float  # just above this phi the rounded network exceeds the target
    next_value: int  # ... with this count

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "phi_ideal": self.phi_ideal,
                "achieved": self.achieved, "achieved_over_target": self.achieved / self.value,
                "next_phi": self.next_phi, "next_value": self.next_value}


@dataclass(frozen=True)
class Training:
    """Training compute = 3 x forward x samples x epochs (4 x with recomputation), and its cost."""

    samples: float
    epochs: float
    recompute: bool
    training_flops: float
    cost: Any = None  # budget.training.time.CostEstimate when a GPU was given

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"samples": self.samples, "epochs": self.epochs,
                               "multiplier": 4 if self.recompute else 3,
                               "training_flops": self.training_flops}
        if self.cost is not None:
            cost = self.cost.to_dict()
            out.update(gpu=cost["gpu"], precision=cost["precision"], mfu=cost["mfu"],
                       num_gpus=cost["num_gpus"], gpu_hours=cost["gpu_hours"],
                       wall_clock_hours=cost["wall_clock_hours"], cost_usd=cost["cost_usd"],
                       cost=cost)
        return out


@dataclass(frozen=True)
class ScaleResult:
    """A scaled network: coefficients, layout per stage, params, MACs, FLOPs, memory, cost."""

    network: cnn.NetworkCost
    base: cnn.NetworkCost
    scaling: cnn.Scaling
    phi: float | None
    coefficients: Coefficients | None
    batch: int
    bytes_per_element: int
    target: Target | None = None
    training: Training | None = None
    fit: "CoefficientFit | None" = None
    variant: str | None = None  # a released EfficientNet (b0..b7) when scaled to one

    @property
    def resolution(self) -> float:
        """The resolution coefficient in effect: image size / base size when pixels were given."""
        s = self.scaling
        return s.resolution if s.image_size is None else s.image_size / self.base.input_shape[1]

    @property
    def label(self) -> str:
        """EfficientNet-B7 for a released variant, else the base network's name."""
        return f"EfficientNet-{self.variant.upper()}" if self.variant else self.network.name

    @property
    def ideal_flops_ratio(self) -> float:
        """d w^2 r^2: how much the FLOPs would grow without rounding."""
        s = self.scaling
        return s.depth * s.width ** 2 * self.resolution ** 2

    def to_dict(self) -> dict[str, Any]:
        net, s = self.network, self.scaling
        return {
            "network": net.name, "label": self.label, "variant": self.variant, "phi": self.phi,
            "coefficients": self.coefficients.to_dict() if self.coefficients else None,
            "width": s.width, "depth": s.depth, "resolution": self.resolution,
            "image_size": list(net.input_shape[1:]), "input_shape": list(net.input_shape),
            "params": net.params, "forward_macs": net.macs, "forward_flops": net.flops,
            "batch_norm": net.batch_norm, "batch": self.batch,
            "bytes_per_element": self.bytes_per_element,
            "activation_bytes": net.activation_elements * self.batch * self.bytes_per_element,
            "stages": [st.to_dict(self.bytes_per_element) for st in net.stages],
            "base": {"params": self.base.params, "forward_macs": self.base.macs,
                     "forward_flops": self.base.flops, "input_shape": list(self.base.input_shape)},
            "rounding": {"ideal_flops_ratio": self.ideal_flops_ratio,
                         "realised_flops_ratio": net.flops / self.base.flops,
                         "realised_macs_ratio": net.macs / self.base.macs},
            "target": self.target.to_dict() if self.target else None,
            "training": self.training.to_dict() if self.training else None,
            "coefficient_fit": self.fit.to_dict() if self.fit else None,
        }


def scale(spec: cnn.NetworkSpec, scaling: cnn.Scaling, *, phi: float | None = None,
          coefficients: Coefficients | None = None, bn: str = "train", batch: int = 1,
          bytes_per_element: int = cnn.DEFAULT_BYTES_PER_ELEMENT) -> ScaleResult:
    """Evaluate `spec` at `scaling` next to its base (scale 1)."""
    for name, value in (("batch", batch), ("bytes per element", bytes_per_element)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BudgetError(f"{name} {value!r} must be a whole number >= 1")
    base = cnn.evaluate(spec, cnn.Scaling(), bn)
    if base.params == 0 or base.macs == 0:
        raise BudgetError(f"{spec.name} has no parameters or multiply-adds to scale (params {base.params}, "
                          f"MACs {base.macs}); compound scaling grows conv and linear layers")
    return ScaleResult(cnn.evaluate(spec, scaling, bn), base, scaling, phi, coefficients, batch,
                       bytes_per_element)


def scale_phi(spec: cnn.NetworkSpec, phi: float, coefficients: Coefficients | None = None,
              **kwargs: Any) -> ScaleResult:
    """Compound scaling at `phi`: d = alpha^phi, w = beta^phi, r = gamma^phi."""
    coefficients = coefficients or Coefficients()
    return scale(spec, coefficients.scaling(phi), phi=float(phi), coefficients=coefficients,
                 **kwargs)


def scale_to_target(spec: cnn.NetworkSpec, target: float, coefficients: Coefficients | None = None,
                    *, metric: str = "forward_flops", bn: str = "train",
                    **kwargs: Any) -> ScaleResult:
    """The largest phi (to 4 decimals) whose rounded network stays within `target`.

    `metric` is "forward_flops" or "forward_macs". Rounding makes the count a non-decreasing step
    function of phi, so bisection finds the step; the result reports the next step up too.
    """
    coefficients = coefficients or Coefficients()
    if metric not in ("forward_flops", "forward_macs"):
        raise BudgetError(f"metric {metric!r} must be forward_flops or forward_macs")
    if isinstance(target, bool) or not isinstance(target, (int, float)) \
            or not math.isfinite(target) or target <= 0:
        raise BudgetError(f"target {target!r} must be a finite number > 0")

    def count(phi: float) -> int:
        net = cnn.evaluate(spec, coefficients.scaling(phi), bn)
        return net.flops if metric == "forward_flops" else net.macs

    base = count(0.0)
    guess = min(max(math.log(target / base) / math.log(coefficients.product), PHI_RANGE[0]),
                PHI_RANGE[1])
    low, high = _bracket(count, target, guess)
    while high - low > PHI_TOLERANCE:
        mid = (low + high) / 2
        low, high = (mid, high) if count(mid) <= target else (low, mid)
    phi = math.floor(low * 1e4) / 1e4  # <= low, so still within the target
    result = scale_phi(spec, phi, coefficients, bn=bn, **kwargs)
    ideal = math.log(target / base) / math.log(coefficients.product)
    return replace(result, target=Target(metric, float(target), ideal, count(phi), high,
                                         count(high)))


def _bracket(count: Callable[[float], int], target: float, guess: float) -> tuple[float, float]:
    """(low, high) within PHI_RANGE with count(low) <= target < count(high), grown from a guess."""
    low, high, step = guess - 0.5, guess + 0.5, 0.5
    while True:
        low, high = max(low, PHI_RANGE[0]), min(high, PHI_RANGE[1])
        too_small, too_big = count(low) > target, count(high) <= target
        if too_small and low == PHI_RANGE[0]:
            raise BudgetError(f"target {target:.4g} is below the smallest network this base "
                              f"scales to ({count(low):.4g} at phi={low:g})")
        if too_big and high == PHI_RANGE[1]:
            raise BudgetError(f"target {target:.4g} is above the network at phi={high:g} "
                              f"({count(high):.4g}); give a smaller target")
        if not (too_small or too_big):
            return low, high
        step *= 2
        low, high = (low - step if too_small else low), (high + step if too_big else high)


def with_training(result: ScaleResult, samples: float, epochs: float, *, recompute: bool = False,
                  gpu: str | None = None, precision: str = "bf16", mfu: float | None = None,
                  num_gpus: int = 1, catalogs: Iterable[str] | None = None) -> ScaleResult:
    """Add training compute 3 x forward x samples x epochs and, with a GPU, hours and dollars."""
    for name, value in (("samples", samples), ("epochs", epochs)):
        if not math.isfinite(value) or value <= 0:
            raise BudgetError(f"{name} {value!r} must be a finite number > 0")
    flops = training_flops(result.network.flops, recompute=recompute) * samples * epochs
    cost = None
    if gpu is not None:
        from budget.hardware.catalog import load_catalog
        from budget.training.time import DEFAULT_MFU, estimate_cost

        accelerator = load_catalog(catalogs).get(gpu)
        cost = estimate_cost(flops, accelerator, precision=precision,
                             mfu=DEFAULT_MFU if mfu is None else mfu, num_gpus=num_gpus)
    return replace(result, training=Training(float(samples), float(epochs), recompute, flops, cost))


# ---- fitting alpha, beta, gamma from measured variants (Tan & Le 2019 §3.3, step 1) ----------

SURROGATE_TERMS = ("1", "log d", "log w", "log r", "(log d)^2", "(log w)^2", "(log r)^2")
FIT_GRID_STEP = 0.002  # alpha and beta step of the grid search on the constraint surface


@dataclass(frozen=True)
class Observation:
    """One measured variant: its coefficients relative to the base and its accuracy or loss."""

    width: float
    depth: float
    resolution: float
    value: float


@dataclass(frozen=True)
class CoefficientFit:
    """alpha, beta, gamma maximising a fitted accuracy (or minimising a loss) at phi = 1.

    The paper grid-searches alpha beta^2 gamma^2 = 2 by training B0 at each candidate; we
    grid-search the same surface on a surrogate fitted to the measured variants:
    value = a + sum_i b_i u_i + c_i u_i^2 with u = (log d, log w, log r), which captures the
    diminishing returns of each dimension (Tan & Le 2019 Fig. 3).
    """

    coefficients: Coefficients
    metric: str
    target_product: float
    predicted: float  # surrogate value at (alpha, beta, gamma), phi = 1
    surrogate: tuple[float, ...]
    n_points: int
    r_squared: float
    at_boundary: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"alpha": self.coefficients.alpha, "beta": self.coefficients.beta,
                "gamma": self.coefficients.gamma, "product": self.coefficients.product,
                "metric": self.metric, "target_product": self.target_product,
                "predicted": self.predicted, "n_points": self.n_points,
                "r_squared": self.r_squared, "at_boundary": self.at_boundary,
                "message": self.message,
                "surrogate": dict(zip(SURROGATE_TERMS, self.surrogate))}


def _features(width: Any, depth: Any, resolution: Any) -> Any:
    import numpy as np

    u = np.log(np.array([depth, width, resolution], dtype=float))
    return np.vstack([np.ones_like(u[0]), u, u ** 2]).T


def fit_coefficients(observations: list[Observation], *, metric: str = "accuracy",
                     target_product: float = TARGET_PRODUCT) -> CoefficientFit:
    """Fit the surrogate by least squares, then grid-search alpha beta^2 gamma^2 = target."""
    import numpy as np

    if metric not in ("accuracy", "loss"):
        raise BudgetError(f"metric {metric!r} must be accuracy (higher is better) or loss")
    if len(observations) < len(SURROGATE_TERMS):
        raise BudgetError(f"fitting alpha, beta, gamma needs at least {len(SURROGATE_TERMS)} "
                          f"measured variants, got {len(observations)}")
    if not math.isfinite(target_product) or target_product <= 1:
        raise BudgetError(f"target product {target_product!r} must be a finite number > 1")
    obs = np.array([[o.width, o.depth, o.resolution, o.value] for o in observations], float)
    if not np.all(np.isfinite(obs)) or np.any(obs[:, :3] <= 0):
        raise BudgetError("measured variants need finite values and coefficients > 0")
    x = _features(obs[:, 0], obs[:, 1], obs[:, 2])
    theta, *_ = np.linalg.lstsq(x, obs[:, 3], rcond=None)
    residual = obs[:, 3] - x @ theta
    spread = float(np.sum((obs[:, 3] - obs[:, 3].mean()) ** 2))
    r2 = 1.0 - float(residual @ residual) / spread if spread > 0 else 0.0
    alpha, beta = np.meshgrid(np.arange(1.0, target_product + 1e-9, FIT_GRID_STEP),
                              np.arange(1.0, math.sqrt(target_product) + 1e-9, FIT_GRID_STEP))
    gamma_sq = target_product / (alpha * beta ** 2)
    ok = gamma_sq >= 1.0
    a, b, g = alpha[ok], beta[ok], np.sqrt(gamma_sq[ok])
    predicted = _features(b, a, g) @ theta
    best = int(np.argmax(predicted) if metric == "accuracy" else np.argmin(predicted))
    coefficients = Coefficients(float(a[best]), float(b[best]), float(g[best]))
    edge = min(a[best], b[best], g[best]) - 1.0 < FIT_GRID_STEP
    message = ("optimum on the boundary: one dimension should not grow (alpha, beta or gamma = 1)"
               if edge else "interior optimum on alpha·beta²·gamma² = target")
    return CoefficientFit(coefficients, metric, float(target_product), float(predicted[best]),
                          tuple(float(t) for t in theta), len(observations), r2, bool(edge),
                          message)


def read_observations(path: str) -> tuple[list[Observation], str]:
    """Measured variants from a CSV with columns width, depth, resolution and accuracy or loss."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BudgetError(f"{path}: cannot read the measured variants: {exc}") from None
    columns = set(rows[0]) if rows else set()
    metric = "accuracy" if "accuracy" in columns else "loss"
    missing = {"width", "depth", "resolution", metric} - columns
    if missing:
        raise BudgetError(f"{path}: needs columns width, depth, resolution and accuracy or loss; "
                          f"missing {', '.join(sorted(missing))}")
    out = []
    for i, row in enumerate(rows, start=2):
        try:
            out.append(Observation(float(row["width"]), float(row["depth"]),
                                   float(row["resolution"]), float(row[metric])))
        except (TypeError, ValueError):
            raise BudgetError(f"{path}: line {i} has a non-numeric value") from None
    return out, metric
