"""Choosing how `budget scale` scales a base network: the one rule, in the library.

Exactly one way to scale may be given: a compound coefficient phi, a forward FLOP or MAC target,
a released EfficientNet variant, or explicit width/depth and resolution (a coefficient) or image
size (pixels), never both. `choose_scale_mode` checks the combination and names the mode; the
command line and the Python API share it.
"""

from __future__ import annotations

from dataclasses import dataclass

from budget.errors import BudgetError

# A resolution coefficient multiplies the base's input size (EfficientNet-B7: 600/224 = 2.68); one
# above this is an image size in pixels typed as a coefficient (e.g. --resolution 240).
MAX_RESOLUTION_COEFFICIENT = 8.0
MODES = ("base", "phi", "target", "variant", "explicit")


@dataclass(frozen=True)
class ScaleOptions:
    """What the user gave (None = not given); names as the command's options."""

    phi: float | None = None
    flops: float | None = None
    macs: float | None = None
    variant: str | None = None
    width: float | None = None
    depth: float | None = None
    resolution: float | None = None
    image_size: int | None = None
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    fit_coefficients: str | None = None
    samples: float | None = None
    epochs: float | None = None
    gpu: str | None = None


def choose_scale_mode(o: ScaleOptions) -> str:
    """The scaling mode (one of MODES) the options ask for; BudgetError naming the conflict."""
    explicit = [v for v in (o.width, o.depth, o.resolution, o.image_size) if v is not None]
    given = [name for name, on in (
        ("--phi", o.phi is not None), ("--flops", o.flops is not None), ("--macs", o.macs is not None),
        ("--variant", o.variant is not None), ("--width/--depth/--resolution/--image-size", bool(explicit)))
        if on]
    if len(given) > 1:
        raise BudgetError(f"choose one way to scale, not {' and '.join(given)}")
    if o.resolution is not None and o.image_size is not None:
        raise BudgetError(f"give --resolution (a coefficient, e.g. 1.15) or --image-size (pixels, e.g. "
                          f"{o.image_size}), not both")
    if o.resolution is not None and o.resolution > MAX_RESOLUTION_COEFFICIENT:
        raise BudgetError(f"--resolution {o.resolution:g} is a coefficient that multiplies the base's input "
                          f"size (at most {MAX_RESOLUTION_COEFFICIENT:g}); for {o.resolution:g} pixels give "
                          f"--image-size {o.resolution:g}")
    bases = any(v is not None for v in (o.alpha, o.beta, o.gamma))
    compound = bool(given) and given[0] in ("--phi", "--flops", "--macs")
    if (bases or o.fit_coefficients) and given and not compound:
        raise BudgetError("--alpha/--beta/--gamma and --fit-coefficients apply only with --phi, --flops or --macs")
    if bases and not given:
        raise BudgetError("--alpha/--beta/--gamma apply only with --phi, --flops or --macs")
    if bases and o.fit_coefficients:
        raise BudgetError("give --alpha/--beta/--gamma or --fit-coefficients, not both")
    if (o.samples is None) != (o.epochs is None):
        raise BudgetError("--samples and --epochs go together")
    if o.gpu is not None and o.samples is None:
        raise BudgetError("--gpu needs --samples and --epochs (the training compute to price)")
    if not given:
        return "phi" if o.fit_coefficients else "base"
    return {"--phi": "phi", "--flops": "target", "--macs": "target", "--variant": "variant"}.get(given[0], "explicit")
