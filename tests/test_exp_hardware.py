"""The MFU denominator: the exact GPU model's catalog row (form factor and memory agree)."""

import pytest

from budget.hardware.catalog import load_catalog
from experiments.training.hardware import catalog_id

IDS = [a.id for a in load_catalog().accelerators]


@pytest.mark.parametrize("name, memory_gib, expected", [
    # names as torch.cuda.get_device_name prints them (nvidia-smi's product names)
    ("NVIDIA H100 80GB HBM3", 79.1, "h100-sxm-80gb"),
    ("NVIDIA H100 PCIe", 79.6, "h100-pcie-80gb"),
    ("NVIDIA H100 NVL", 93.6, "h100-nvl-94gb"),
    ("NVIDIA A100-SXM4-80GB", 79.2, "a100-sxm-80gb"),
    ("NVIDIA A100-SXM4-40GB", 39.4, "a100-sxm-40gb"),
    ("NVIDIA A100 80GB PCIe", 79.2, "a100-pcie-80gb"),
    ("Tesla V100-SXM2-32GB", 31.7, "v100-sxm2-32gb"),
    ("NVIDIA H200", 139.8, "h200-sxm-141gb"),
    ("Tesla T4", 14.6, "t4"),
    ("NVIDIA GeForce RTX 4090", 23.6, None),  # not in the catalog: the peak is measured
    ("NVIDIA H200 NVL", 139.8, None),  # no NVL row: never the SXM one
])
def test_device_names_find_their_own_row(name, memory_gib, expected):
    assert catalog_id(name, IDS, memory_gib) == expected


def test_pcie_and_nvl_peaks_differ_from_sxm():
    """H100 SXM 989.5, PCIe 756.5, NVL 835.5 dense bf16 TFLOP/s (NVIDIA H100 datasheet): a PCIe or NVL
    card divided by the SXM peak would understate its MFU by a fifth or more."""
    catalog = load_catalog()
    peaks = {k: catalog.get(catalog_id(n, IDS, m)).peak_flops("bf16") for k, n, m in (
        ("sxm", "NVIDIA H100 80GB HBM3", 79), ("pcie", "NVIDIA H100 PCIe", 79),
        ("nvl", "NVIDIA H100 NVL", 94))}
    assert peaks["pcie"] < peaks["nvl"] < peaks["sxm"]
