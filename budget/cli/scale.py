"""`budget scale`: EfficientNet compound scaling of a base CNN, with training compute and cost."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from budget.cli.common import ACCELERATOR, FINITE, POSITIVE, POSITIVE_INT, emit, json_option
from budget.cli.flops import BN_MODES, si

PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")  # budget.hardware.catalog.PRECISIONS
VARIANTS = ("b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7")  # budget.models.efficientnet.VARIANTS


@click.command(name="scale")
@click.argument("network", required=False)
@click.option("--base", "base_file", metavar="FILE", help="Any TOML layer list as the base network.")
@click.option("--phi", type=FINITE, help="Compound coefficient: d = alpha^phi, w = beta^phi, r = gamma^phi.")
@click.option("--flops", "target_flops", type=POSITIVE,
              help="Find the largest phi whose forward FLOPs per sample stay within this.")
@click.option("--macs", "target_macs", type=POSITIVE,
              help="Same, for a forward multiply-add (MAC) target, as papers quote them.")
@click.option("--alpha", type=POSITIVE, help="Depth base [default: 1.2, Tan & Le 2019].")
@click.option("--beta", type=POSITIVE, help="Width base [default: 1.1].")
@click.option("--gamma", type=POSITIVE, help="Resolution base [default: 1.15].")
@click.option("--fit-coefficients", "fit_csv", metavar="CSV",
              help="Fit alpha, beta, gamma from measured variants (columns width, depth, "
                   "resolution, accuracy or loss) and scale with them [default phi: 1].")
@click.option("--width", type=POSITIVE, help="Explicit width coefficient w.")
@click.option("--depth", type=POSITIVE, help="Explicit depth coefficient d.")
@click.option("--resolution", type=POSITIVE, help="Explicit resolution coefficient r.")
@click.option("--image-size", type=POSITIVE_INT, help="Explicit input height in pixels (instead of r).")
@click.option("--variant", type=click.Choice(VARIANTS),
              help="A released EfficientNet's (w, d, pixels), from the reference implementation.")
@click.option("--batch", type=POSITIVE_INT, default=1, show_default=True,
              help="Batch size for the activation memory.")
@click.option("--bytes-per-element", type=POSITIVE_INT, default=2, show_default=True,
              help="Activation bytes per element (2 for bf16/fp16, 4 for fp32).")
@click.option("--batch-norm", type=click.Choice(BN_MODES), default="train", show_default=True,
              help="Batch norm FLOPs: 7/element training, 2 inference, 0 folded.")
@click.option("--samples", type=POSITIVE, help="Training samples per epoch (e.g. 1.28e6 for ImageNet).")
@click.option("--epochs", type=POSITIVE, help="Training epochs.")
@click.option("--recompute", is_flag=True, help="Full activation recomputation: 4 x forward, not 3 x.")
@click.option("--gpu", type=ACCELERATOR, help="Accelerator for GPU-hours and cost (see budget gpus).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="bf16", show_default=True)
@click.option("--mfu", type=POSITIVE, help="Model FLOPs utilisation in (0, 1] [default: 0.4].")
@click.option("--num-gpus", type=POSITIVE_INT, default=1, show_default=True)
@click.option("--catalog", "catalogs", multiple=True, metavar="FILE",
              help="Extra accelerator catalog file(s) with the built-in schema.")
@json_option
def command(network: str | None, base_file: str | None, phi: float | None,
            target_flops: float | None, target_macs: float | None, alpha: float | None,
            beta: float | None, gamma: float | None, fit_csv: str | None, width: float | None,
            depth: float | None,
            resolution: float | None, image_size: int | None, variant: str | None, batch: int,
            bytes_per_element: int, batch_norm: str, samples: float | None,
            epochs: float | None, recompute: bool, gpu: str | None, precision: str,
            mfu: float | None, num_gpus: int, catalogs: tuple[str, ...], as_json: bool) -> None:
    """Scale a base CNN with EfficientNet compound scaling (Tan & Le 2019).

    NETWORK is a built-in base (efficientnet, resnet-18, resnet-50); --base FILE takes any layer
    list. Give one of: --phi PHI (d = alpha^phi, w = beta^phi, r = gamma^phi, alpha 1.2, beta
    1.1, gamma 1.15 by default), --flops/--macs TARGET (the largest phi within a forward target,
    with the rounding effects), explicit --width/--depth/--resolution (or --image-size), or
    --variant b0..b7. Prints the per-stage layout, params, forward MACs and FLOPs per sample,
    activation memory for --batch, and with --samples --epochs [--gpu] the training compute
    (3 x forward x samples x epochs) and its GPU-hours and cost.

    Example: budget scale efficientnet --phi 2 --samples 1.28e6 --epochs 350 --gpu h100
    """
    from budget.models import cnn
    from budget.models import efficientnet as E
    from budget.models.scale_mode import ScaleOptions, choose_scale_mode

    if (network is None) == (base_file is None):
        raise click.UsageError("give a base network: NETWORK (efficientnet, resnet-18, resnet-50) "
                               "or --base FILE, not both and not neither")
    spec = cnn.load_network(network or base_file)  # type: ignore[arg-type]
    mode = choose_scale_mode(ScaleOptions(
        phi=phi, flops=target_flops, macs=target_macs, variant=variant, width=width, depth=depth,
        resolution=resolution, image_size=image_size, alpha=alpha, beta=beta, gamma=gamma,
        fit_coefficients=fit_csv, samples=samples, epochs=epochs, gpu=gpu))
    bases = {k: v for k, v in dict(alpha=alpha, beta=beta, gamma=gamma).items() if v is not None}
    opts: dict[str, Any] = dict(bn=batch_norm, batch=batch, bytes_per_element=bytes_per_element)
    coefficients, fit = E.Coefficients(**bases), None
    if fit_csv is not None:
        observations, metric = E.read_observations(fit_csv)
        fit = E.fit_coefficients(observations, metric=metric)
        coefficients = fit.coefficients
        phi = 1.0 if phi is None and mode == "phi" else phi
    if phi is not None:
        result = E.scale_phi(spec, phi, coefficients, **opts)
    elif target_flops is not None or target_macs is not None:
        metric = "forward_flops" if target_flops is not None else "forward_macs"
        result = E.scale_to_target(spec, target_flops or target_macs,  # type: ignore[arg-type]
                                   coefficients, metric=metric, **opts)
    else:
        if variant is not None:
            if not spec.name.lower().startswith("efficientnet"):
                raise click.UsageError(f"--variant is EfficientNet's; the base is {spec.name}")
            width, depth, image_size = E.VARIANTS[variant]
        scaling = cnn.Scaling(width=width or 1.0, depth=depth or 1.0,
                              resolution=resolution or 1.0, image_size=image_size)
        result = replace(E.scale(spec, scaling, **opts), variant=variant)
    if fit is not None:
        result = replace(result, fit=fit)
    if samples is not None:
        result = E.with_training(result, samples, epochs,  # type: ignore[arg-type]
                                 recompute=recompute, gpu=gpu, precision=precision, mfu=mfu,
                                 num_gpus=num_gpus, catalogs=catalogs or None)
    emit(result, as_json, render)


def render(result: Any) -> str:
    d = result.to_dict()
    lines = [_title(d)]
    lines.append(f"  width w = {d['width']:.4f}   depth d = {d['depth']:.4f}   resolution r = "
                 f"{d['resolution']:.4f} -> input {'x'.join(map(str, d['input_shape']))}")
    lines.append(f"  {'stage':<18} {'repeats':>7} {'output':>14} {'params':>9} {'MACs':>9} "
                 f"{'FLOPs':>9} {'act/sample':>10}")
    for st in d["stages"]:
        reps = f"{st['base_repeats']}->{st['repeats']}" if st["repeats"] != st["base_repeats"] \
            else str(st["repeats"])
        lines.append(f"  {st['name'][:18]:<18} {reps:>7} {'x'.join(map(str, st['output_shape'])):>14} "
                     f"{si(st['params']):>9} {si(st['forward_macs']):>9} "
                     f"{si(st['forward_flops']):>9} {si(st['activation_bytes'], 'B'):>10}")
    base, rnd = d["base"], d["rounding"]
    lines += [
        f"  params {d['params']:,} ({d['params'] / base['params']:.2f}x base)   forward "
        f"{d['forward_macs']:,} MACs, {d['forward_flops']:,} FLOPs per sample",
        f"  FLOP growth over the base: ideal d·w²·r² = {rnd['ideal_flops_ratio']:.3f}x, realised "
        f"{rnd['realised_flops_ratio']:.3f}x after rounding (channels to multiples of the divisor, "
        f"repeats up, whole pixels)",
        f"  activations {si(d['activation_bytes'], 'B')} for batch {d['batch']} at "
        f"{d['bytes_per_element']} bytes/element (batch norm counted as '{d['batch_norm']}')"]
    if d["coefficient_fit"]:
        f = d["coefficient_fit"]
        lines.append(f"  coefficients fitted to {f['n_points']} measured variants ({f['metric']}, "
                     f"surrogate R² {f['r_squared']:.3f}): alpha {f['alpha']:.3f}, beta "
                     f"{f['beta']:.3f}, gamma {f['gamma']:.3f}; {f['message']}")
    if d["target"]:
        lines.append(_target_line(d))
    if d["training"]:
        lines += _training_lines(d["training"])
    return "\n".join(lines)


def _title(d: dict[str, Any]) -> str:
    if d["variant"]:
        return f"{d['label']}: the released variant, {d['image_size'][0]} px (scaled from {d['network']})"
    if d["phi"] is None:
        return f"{d['network']} at explicit coefficients"
    c = d["coefficients"]
    return (f"{d['network']} compound-scaled: phi = {d['phi']:g} (alpha {c['alpha']:g}, beta "
            f"{c['beta']:g}, gamma {c['gamma']:g}; alpha·beta²·gamma² = {c['product']:.3f})")


def _target_line(d: dict[str, Any]) -> str:
    t = d["target"]
    unit = "FLOPs" if t["metric"] == "forward_flops" else "MACs"
    return (f"  target {t['value']:.4g} forward {unit}: phi {d['phi']:g} gives {t['achieved']:,} "
            f"({t['achieved_over_target']:.1%} of target); without rounding phi would be "
            f"{t['phi_ideal']:.3f}; above phi {t['next_phi']:.4f} the network jumps to "
            f"{t['next_value']:,}")


def _training_lines(t: dict[str, Any]) -> list[str]:
    lines = [f"  training {t['multiplier']} x forward x {t['samples']:.4g} samples x "
             f"{t['epochs']:g} epochs = {t['training_flops']:.4g} FLOPs"]
    if "gpu_hours" in t:
        cost = "no price in the catalog" if t["cost_usd"] is None else f"${t['cost_usd']:,.0f}"
        lines.append(f"  on {t['gpu']} ({t['precision']}, MFU {t['mfu']:g}): "
                     f"{t['gpu_hours']:,.1f} GPU-hours, {t['wall_clock_hours']:,.1f} h wall clock on "
                     f"{t['num_gpus']} GPU(s), {cost}")
    return lines
