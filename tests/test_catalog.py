"""The accelerator catalog: integrity, datasheet values, aliases, overrides and malformed files."""

import math

import pytest

from budget.errors import BudgetError, CatalogError
from budget.hardware.catalog import PRECISIONS, load_catalog, read_catalog_file

# Every accelerator of the shared fact sheet (its planner-ready appendix), by catalog id.
REFERENCE_IDS = {
    "v100-sxm2-32gb", "a100-sxm-40gb", "a100-sxm-80gb", "a100-pcie-80gb", "h100-sxm-80gb",
    "h100-pcie-80gb", "h100-nvl-94gb", "h200-sxm-141gb", "b200-hgx-180gb", "gb200-per-gpu-186gb",
    "l4", "l40s", "a10g", "a10", "t4", "rtx-4090", "rtx-3090", "mi250x-oam", "mi300x", "mi325x",
    "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "gaudi2", "gaudi3", "jetson-agx-orin-64gb",
    "jetson-orin-nano-8gb"}
SOURCE_OF = {"memory_gb": "memory", "memory_bandwidth_gbs": "bandwidth", "tdp_w": "tdp",
             "interconnect_gbs_bidir": "interconnect", "price_usd_per_hour": "price",
             "memory_mib": "memory_mib", "gpus_per_node": "scale_up", "scale_up_gbs_per_dir": "scale_up",
             "scale_out_gbs_per_dir": "scale_out", "default_mfu": "mfu", "matmul_efficiency": "matmul"}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(use_env=False)


def test_catalog_holds_every_reference_accelerator(catalog):
    assert {a.id for a in catalog.accelerators} >= REFERENCE_IDS


def test_every_number_is_positive_and_sourced(catalog):
    for acc in catalog.accelerators:
        assert acc.peak_tflops and acc.sources["peak"].strip(), acc.id
        for prec, value in acc.peak_tflops.items():
            assert prec in PRECISIONS and math.isfinite(value) and value > 0, (acc.id, prec)
        for field, source_key in SOURCE_OF.items():
            value = getattr(acc, field)
            if value is not None:
                assert value > 0, (acc.id, field)
                assert acc.sources.get(source_key, "").strip(), (acc.id, source_key)
        if acc.price_usd_per_hour is not None:
            assert acc.price_provider and acc.price_date and acc.price_tier, acc.id


@pytest.mark.parametrize("name,precision,tflops", [
    ("h100", "bf16", 989.5),   # H100 SXM datasheet: 1,979 TFLOPS BF16 with sparsity -> 989.5 dense
    ("h100", "fp8", 1979.0),   # 3,958 sparse -> 1,979 dense
    ("a100", "bf16", 312.0),   # A100 datasheet: 312 dense (624 sparse)
    ("a100", "tf32", 156.0),
    ("h100-pcie", "bf16", 756.5),
    ("h100-nvl", "bf16", 835.5),  # per GPU (2024 product brief), not the 2-GPU pair
    ("mi300x", "bf16", 1307.4),   # AMD prints dense separately
    ("tpu-v5e", "bf16", 197.0),   # Google Cloud TPU v5e docs
    ("t4", "fp16", 65.0),         # Turing has no sparsity
    ("rtx-4090", "bf16", 165.2),  # FP32 accumulate, half the FP16-accumulate figure
])
def test_dense_peaks_from_datasheets(catalog, name, precision, tflops):
    """Dense peaks per the vendors' datasheets: NVIDIA H100/A100 tensor figures are printed with
    2:4 sparsity and halved here; AMD and Google print dense figures."""
    assert catalog.get(name).peak_flops(precision) == pytest.approx(tflops * 1e12)


def test_alias_resolution_is_case_insensitive(catalog):
    assert catalog.get("H100").id == "h100-sxm-80gb"
    assert catalog.get("a100").id == "a100-sxm-80gb"
    assert catalog.get("h100-sxm-80gb").memory_bytes == 81559 * 2**20  # nvidia-smi: 81559MiB


def test_unknown_accelerator_lists_close_matches(catalog):
    with pytest.raises(BudgetError, match="unknown accelerator 'h10'.*close matches: .*h100"):
        catalog.get("h10")


def test_missing_precision_names_what_exists(catalog):
    with pytest.raises(BudgetError, match="v100-sxm2-32gb has no bf16 peak.*fp16"):
        catalog.get("v100").peak_flops("bf16")


GOOD_ROW = """
[[accelerator]]
id = "{id}"
name = "Example GPU"
vendor = "Example"
memory_gb = 96
memory_bandwidth_gbs = 4000
price_usd_per_hour = 2.0
price_provider = "Example cloud"
price_date = "2026-11-01"
[accelerator.peak_tflops]
bf16 = 1000
[accelerator.sources]
peak = "vendor sheet"
memory = "vendor sheet"
bandwidth = "vendor sheet"
price = "price page"
"""


def test_extra_catalog_adds_and_overrides(tmp_path, monkeypatch):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD_ROW.format(id="my-gpu") + GOOD_ROW.format(id="h100-sxm-80gb"))
    catalog = load_catalog([path], use_env=False)
    assert catalog.get("my-gpu").peak_flops("bf16") == 1e15
    assert catalog.get("h100-sxm-80gb").memory_gb == 96  # overridden by the later file
    monkeypatch.setenv("BUDGET_CATALOG", str(path))
    assert load_catalog().get("my-gpu").price_usd_per_hour == 2.0


@pytest.mark.parametrize("mutate,message", [
    (lambda t: t.replace("memory_gb = 96", "memory_gb = -96"), r"#1 \(bad\): field 'memory_gb' = -96"),
    (lambda t: t.replace('memory = "vendor sheet"\n', ""), r"field 'sources.memory' is missing"),
    (lambda t: t.replace("bf16 = 1000", "bf17 = 1000"), r"field 'peak_tflops.bf17' is not a precision"),
    (lambda t: t.replace('vendor = "Example"\n', ""), r"missing field 'vendor'"),
    (lambda t: t.replace("memory_gb = 96", 'memory_gb = "lots"'), r"field 'memory_gb'"),
    (lambda t: t + "\n[[[", r"not valid TOML"),
    (lambda t: t.replace("memory_gb = 96", "memory_gb = 96\ndefault_mfu = 1.5"),
     r"field 'default_mfu' = 1.5 must be a fraction"),
    (lambda t: t.replace("memory_gb = 96", "memory_gb = 96\ndefault_mfu = 0.4"),
     r"field 'sources.mfu' is missing"),
    (lambda t: t.replace("memory_gb = 96", "memory_gb = 96\ngpus_per_node = 8.5")
     .replace('price = "price page"', 'price = "price page"\nscale_up = "sheet"'),
     r"field 'gpus_per_node' = 8.5 must be a whole number"),
    (lambda t: t.replace("memory_gb = 96", "memory_gb = 96\nscale_out_gbs_per_dir = 50"),
     r"field 'sources.scale_out' is missing"),
])
def test_malformed_catalog_names_file_row_and_field(tmp_path, mutate, message):
    path = tmp_path / "bad.toml"
    path.write_text(mutate(GOOD_ROW.format(id="bad")))
    with pytest.raises(CatalogError, match=message) as info:
        read_catalog_file(path)
    assert str(path) in str(info.value)


def test_missing_catalog_file(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog([tmp_path / "nope.toml"], use_env=False)


# --- catalog files a user can write first time (issue 17 items 2, 7 and 9) ---

def _write(tmp_path, text, name="mine.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_missing_field_is_named_in_one_error(tmp_path):
    text = GOOD_ROW.format(id="x").replace('vendor = "Example"\n', "").replace("memory_gb = 96\n", "")
    with pytest.raises(CatalogError, match=r"missing fields 'vendor', 'memory_gb'"):
        read_catalog_file(_write(tmp_path, text))


def test_misspelt_field_gets_a_did_you_mean(tmp_path):
    text = GOOD_ROW.format(id="x").replace("price_usd_per_hour", "price_usd_per_hr")
    with pytest.raises(CatalogError, match=r"unknown field 'price_usd_per_hr' \(did you mean 'price_usd_per_hour'\?\)"):
        read_catalog_file(_write(tmp_path, text))
    text = GOOD_ROW.format(id="x").replace("memory_gb", "memory_gib")
    with pytest.raises(CatalogError, match=r"missing field 'memory_gb'; unknown field 'memory_gib' \(did you mean 'memory_gb'\?\)"):
        read_catalog_file(_write(tmp_path, text))


def test_known_fields_follow_the_dataclass():
    from dataclasses import fields

    from budget.hardware.catalog import Accelerator, known_fields, required_fields

    assert set(known_fields()) == {f.name for f in fields(Accelerator)} - {"origin"}
    assert set(required_fields()) == {"id", "name", "vendor", "memory_gb", "memory_bandwidth_gbs",
                                      "peak_tflops", "sources"}


def test_two_rows_with_one_id_are_an_error(tmp_path):
    path = _write(tmp_path, GOOD_ROW.format(id="twin") + GOOD_ROW.format(id="Twin"))
    with pytest.raises(CatalogError, match=r"accelerators #1 and #2 both have id 'Twin'"):
        load_catalog([path], use_env=False)


def test_override_is_said_and_keeps_builtin_aliases(tmp_path):
    path = _write(tmp_path, GOOD_ROW.format(id="h100-sxm-80gb"))
    with pytest.warns(UserWarning, match="'h100-sxm-80gb' overrides the row from the built-in catalog"):
        catalog = load_catalog([path], use_env=False)
    assert catalog.get("h100").memory_gb == 96  # the alias still finds the (new) row
    assert "h100" in catalog.get("h100-sxm-80gb").aliases
    with_aliases = GOOD_ROW.format(id="h100-sxm-80gb").replace('vendor =', 'aliases = ["mine"]\nvendor =')
    with pytest.warns(UserWarning):
        catalog = load_catalog([_write(tmp_path, with_aliases)], use_env=False)
    assert catalog.get("h100-sxm-80gb").aliases == ("mine",)


def test_id_equal_to_an_alias_is_said(tmp_path):
    path = _write(tmp_path, GOOD_ROW.format(id="h100"))
    with pytest.warns(UserWarning, match="id 'h100' is also an alias of 'h100-sxm-80gb'"):
        catalog = load_catalog([path], use_env=False)
    assert catalog.get("h100").name == "Example GPU"
    assert catalog.get("h100-sxm-80gb").memory_gb == 80
    assert any("alias" in note for note in catalog.to_dict()["notes"])


@pytest.mark.parametrize("peak", ["1e-30", "1e30"])
def test_implausible_peak_is_an_error_not_inf(tmp_path, peak):
    """A peak of 1e-30 TFLOP/s made GPU-hours inf and `--json` died; now the row is refused."""
    path = _write(tmp_path, GOOD_ROW.format(id="x").replace("bf16 = 1000", f"bf16 = {peak}"))
    with pytest.raises(CatalogError, match=r"'peak_tflops.bf16' = .* outside the plausible range"):
        read_catalog_file(path)


def test_cli_prints_the_override_as_one_warning_line(tmp_path):
    from click.testing import CliRunner

    from budget.cli import main

    path = _write(tmp_path, GOOD_ROW.format(id="h100-sxm-80gb"))
    result = CliRunner().invoke(main, ["gpus", "--json", "--catalog", str(path)])
    assert result.exit_code == 0
    warning_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Warning:")]
    assert len(warning_lines) == 1 and "overrides" in warning_lines[0]
    import json

    assert json.loads(result.stdout)["notes"]
