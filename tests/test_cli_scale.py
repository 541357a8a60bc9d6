"""`budget scale` through CliRunner: JSON keys, modes, training cost, exit codes and error lines."""

import json

import pytest
from click.testing import CliRunner

from budget.cli import main
from budget.cli import scale as scale_cli
from budget.hardware.catalog import PRECISIONS
from budget.models import efficientnet as E


def run(*args):
    return CliRunner().invoke(main, ["scale", *args])


def scale_json(*args):
    res = run(*args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_base_network_json_keys():
    """No scaling option: the base network. EfficientNet-B0 (Tan & Le 2019 Table 2: 5.3M params,
    0.39B multiply-adds) within 3%; forward FLOPs exceed 2 x MACs by the element-wise work."""
    d = scale_json("efficientnet")
    assert {"width", "depth", "resolution", "params", "forward_macs", "forward_flops",
            "stages", "activation_bytes", "rounding", "training", "target"} <= set(d)
    assert (d["width"], d["depth"], d["resolution"]) == (1.0, 1.0, 1.0)
    assert d["params"] == pytest.approx(5.3e6, rel=0.03)
    assert d["forward_macs"] == pytest.approx(0.39e9, rel=0.03)
    assert d["forward_flops"] > 2 * d["forward_macs"]
    assert d["phi"] is None and d["training"] is None


def test_phi_uses_paper_coefficients_and_overrides():
    d = scale_json("efficientnet", "--phi", "2")
    assert (d["depth"], d["width"], d["resolution"]) == pytest.approx((1.44, 1.21, 1.3225))
    assert d["image_size"] == [296, 296]  # 224 · 1.3225 = 296.2
    c = scale_json("efficientnet", "--phi", "1", "--alpha", "1.4", "--beta", "1.05", "--gamma", "1.1")
    assert (c["depth"], c["width"], c["resolution"]) == pytest.approx((1.4, 1.05, 1.1))
    assert c["coefficients"]["product"] == pytest.approx(1.4 * 1.05 ** 2 * 1.1 ** 2)


def test_flops_and_macs_targets():
    d = scale_json("efficientnet", "--flops", "4e9")
    assert d["forward_flops"] <= 4e9 < d["target"]["next_value"]
    assert d["target"]["metric"] == "forward_flops"
    m = scale_json("efficientnet", "--macs", "1.8e9")
    assert m["forward_macs"] <= 1.8e9 and m["target"]["metric"] == "forward_macs"
    text = run("efficientnet", "--flops", "4e9").output
    assert "without rounding phi would be" in text


def test_explicit_coefficients_variant_and_base_file(tmp_path):
    d = scale_json("resnet-50", "--width", "1.5", "--depth", "2", "--image-size", "160")
    assert d["input_shape"] == [3, 160, 160]
    assert [s["repeats"] for s in d["stages"][1:-1]] == [6, 8, 12, 6]
    b1 = scale_json("efficientnet", "--variant", "b1")
    assert (b1["width"], b1["depth"], b1["image_size"]) == (1.0, 1.1, [240, 240])
    path = tmp_path / "tiny.toml"
    path.write_text('input = [3, 32, 32]\n[[stage]]\nname = "s"\nrepeats = 2\n'
                    'layers = [{ type = "conv", out = 16, kernel = 3 }]\n')
    t = scale_json("--base", str(path), "--phi", "1")
    assert t["stages"][0]["repeats"] == 3 and t["input_shape"] == [3, 37, 37]


def test_training_compute_and_cost():
    """Training = 3 x forward x samples x epochs; GPU-hours and cost from the catalog."""
    d = scale_json("efficientnet", "--phi", "0", "--samples", "1.28e6", "--epochs", "350",
                   "--gpu", "h100", "--mfu", "0.2", "--num-gpus", "8")
    t = d["training"]
    assert t["training_flops"] == pytest.approx(3 * d["forward_flops"] * 1.28e6 * 350)
    assert t["num_gpus"] == 8 and t["mfu"] == 0.2
    assert t["wall_clock_hours"] == pytest.approx(t["gpu_hours"] / 8)
    text = run("efficientnet", "--samples", "1e6", "--epochs", "10", "--gpu", "h100").output
    assert "GPU-hours" in text and "training 3 x forward" in text
    assert scale_json("efficientnet", "--samples", "1e6", "--epochs", "1", "--recompute")[
        "training"]["multiplier"] == 4


def test_batch_memory_and_table():
    one = scale_json("efficientnet")
    many = scale_json("efficientnet", "--batch", "64", "--bytes-per-element", "4")
    assert many["activation_bytes"] == 128 * one["activation_bytes"]
    text = run("efficientnet", "--phi", "1").output
    assert "mbconv6_k3_24" in text and "2->3" in text and "realised" in text


@pytest.mark.parametrize("args, message", [
    (("efficientnet", "--phi", "1", "--alpha", "0.9"), "alpha=0.9 must be a finite number in [1, 10]"),
    (("efficientnet", "--phi", "1", "--beta", "0"), "'0' must be > 0"),
    (("efficientnet", "--resolution", "0"), "'0' must be > 0"),
    (("efficientnet", "--resolution", "-1.2"), "'-1.2' must be > 0"),
    (("efficientnet", "--resolution", "abc"), "'abc' is not a number"),
    (("efficientnet", "--resolution", "5000"), "--resolution 5000 is a coefficient"),
    (("efficientnet", "--image-size", "0"), "'0' must be a whole number >= 1"),
    (("efficientnet", "--phi", "nan"), "'nan' is not finite"),
    (("efficientnet", "--phi", "99"), "phi=99.0 must be a finite number in [-8, 16]"),
    (("efficientnet", "--phi", "1", "--width", "2"), "choose one way to scale"),
    (("efficientnet", "--gamma", "1.2"), "apply only with --phi, --flops or --macs"),
    (("efficientnet", "--flops", "1e3"), "below the smallest network"),
    (("efficientnet", "--samples", "1e6"), "--samples and --epochs go together"),
    (("efficientnet", "--gpu", "h100"), "--gpu needs --samples and --epochs"),
    (("efficientnet", "--samples", "1", "--epochs", "1", "--gpu", "h1000"), "unknown accelerator 'h1000'"),
    (("efficientnet", "--samples", "1", "--epochs", "1", "--gpu", "h100", "--mfu", "1.5"), "MFU 1.5"),
    ((), "give a base network"),
    (("vgg",), "neither a file nor a built-in network"),
    (("resnet-50", "--variant", "b2"), "--variant is EfficientNet's"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    res = run(*args)
    assert res.exit_code == 2, res.output
    err = res.stderr
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_constants_mirror_the_library():
    assert scale_cli.PRECISIONS == PRECISIONS
    assert scale_cli.VARIANTS == tuple(E.VARIANTS)


def test_help_has_example():
    res = run("--help")
    assert res.exit_code == 0 and "Example: budget scale efficientnet --phi 2" in res.output


def test_fit_coefficients_from_csv(tmp_path):
    """--fit-coefficients CSV: alpha, beta, gamma fitted to measured variants, then phi = 1."""
    import numpy as np

    rng = np.random.default_rng(3)
    rows = []
    for _ in range(9):  # a concave accuracy surface in log d, log w, log r
        d, w, r = rng.uniform(1.0, 2.0, 3)
        u = np.log([d, w, r])
        rows.append(f"{w},{d},{r},{0.7 + 0.5 * u.sum() - u @ u}\n")
    path = tmp_path / "variants.csv"
    path.write_text("width,depth,resolution,accuracy\n" + "".join(rows))
    d = scale_json("efficientnet", "--fit-coefficients", str(path))
    fit = d["coefficient_fit"]
    assert d["phi"] == 1.0 and fit["n_points"] == 9
    assert d["coefficients"]["product"] == pytest.approx(2.0, rel=0.01)
    assert (d["depth"], d["width"], d["resolution"]) == pytest.approx(
        (fit["alpha"], fit["beta"], fit["gamma"]))
    bad = tmp_path / "bad.csv"
    bad.write_text("width,depth,accuracy\n1,1,0.7\n")
    res = run("efficientnet", "--fit-coefficients", str(bad))
    assert res.exit_code == 2 and "missing resolution" in res.stderr
    res = run("efficientnet", "--fit-coefficients", str(path), "--beta", "1.1", "--phi", "1")
    assert res.exit_code == 2 and "not both" in res.stderr


def test_variant_b7_is_labelled_b7_at_600_pixels():
    """Released B7: w 2.0, d 3.1, 600 px (tensorflow/tpu efficientnet_builder.py efficientnet_params);
    the effective resolution coefficient is 600 / 224."""
    d = scale_json("efficientnet", "--variant", "b7")
    assert d["label"] == "EfficientNet-B7" and d["variant"] == "b7"
    assert d["input_shape"] == [3, 600, 600] and d["resolution"] == pytest.approx(600 / 224)
    text = run("efficientnet", "--variant", "b7").output
    assert text.splitlines()[0].startswith("EfficientNet-B7: the released variant, 600 px")
    assert "r = 2.6786" in text


@pytest.mark.parametrize("args,message", [
    (("--resolution", "240"), "for 240 pixels give --image-size 240"),
    (("--resolution", "1.2", "--image-size", "240"), "not both"),
])
def test_resolution_in_pixels_points_to_image_size(args, message):
    res = run("efficientnet", *args)
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_scale_mode_rule_lives_in_the_library():
    from budget.errors import BudgetError
    from budget.models.scale_mode import ScaleOptions, choose_scale_mode

    assert choose_scale_mode(ScaleOptions()) == "base"
    assert choose_scale_mode(ScaleOptions(variant="b3")) == "variant"
    assert choose_scale_mode(ScaleOptions(macs=1e9)) == "target"
    assert choose_scale_mode(ScaleOptions(image_size=300)) == "explicit"
    assert choose_scale_mode(ScaleOptions(fit_coefficients="x.csv")) == "phi"
    with pytest.raises(BudgetError, match="choose one way to scale"):
        choose_scale_mode(ScaleOptions(phi=1, variant="b1"))
