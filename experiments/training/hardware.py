"""Devices, training dtype and the peak FLOP/s that MFU divides by.

MFU = achieved model FLOP/s / peak FLOP/s (Chowdhery et al. 2022, PaLM App. B). On a GPU the
peak is the dense datasheet figure from `budget.hardware.catalog` when the device is in the catalog; on a
CPU (or an unknown GPU) it is a square-matmul throughput measured once on this machine at the
training dtype and cached under the user cache dir (`$XDG_CACHE_HOME/compute-budget/`).
bf16 autocast is used only where a measured bf16 matmul beats fp32 (on CPUs without AVX512-BF16
or AMX, bf16 matmuls are far slower than fp32).
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from experiments.errors import SweepError

MATMUL_SIZE = 1024  # square matmul used for the measured peak (large enough to saturate BLAS)
MEASURE_SECONDS = 1.0  # timing window per measurement, split into REPEATS windows
REPEATS = 3  # best of three windows: other processes on a shared CPU only ever slow it down
DTYPE_PROBE_SIZE = 256  # small matmul deciding bf16 vs fp32 (bf16 can be 100x slower on CPU)


@dataclass(frozen=True)
class Peak:
    """The FLOP/s an MFU figure is divided by, and where it came from."""

    flops_per_s: float
    dtype: str
    source: str  # "catalog:<name>" or "measured matmul"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when available; `cpu` and `cuda` are taken as given."""
    if device not in ("auto", "cpu", "cuda"):
        raise SweepError(f"--device {device!r} is not one of auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise SweepError("--device cuda was asked for but torch sees no CUDA device")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def set_threads(threads: int | None) -> None:
    """Use `threads` CPU threads (None keeps torch's default). On a CPU shared with other jobs,
    fewer threads than cores avoids OpenMP threads waiting on each other (measured: 2 threads on
    2 busy cores ran a tiny model's step 25x slower than 1 thread)."""
    if threads is None:
        return
    if threads < 1:
        raise SweepError(f"--threads {threads!r} must be a whole number >= 1")
    torch.set_num_threads(threads)


def matmul_flops_per_s(device: torch.device, dtype: torch.dtype, size: int = MATMUL_SIZE,
                       seconds: float = MEASURE_SECONDS) -> float:
    """Measured throughput of size x size matmuls: 2 size^3 FLOPs per product."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b  # warm-up
    _sync(device)
    best = 0.0
    for _ in range(REPEATS):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / REPEATS:
            a @ b
            count += 1
            if device.type == "cuda" and count % 16:
                continue
            _sync(device)
        _sync(device)
        best = max(best, 2.0 * size ** 3 * count / (time.perf_counter() - start))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "compute-budget" / "matmul_peak.json"


def _machine_key(device: torch.device, dtype: torch.dtype) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() \
        or platform.machine()
    return f"{device.type}|{name}|{os.cpu_count()}|{torch.get_num_threads()}|{torch.__version__}|{dtype}"


def cached_matmul_peak(device: torch.device, dtype: torch.dtype, refresh: bool = False,
                       size: int = MATMUL_SIZE) -> float:
    """The measured matmul FLOP/s for this machine and dtype, measured once and cached."""
    path, key = cache_path(), f"{_machine_key(device, dtype)}|{size}"
    cache: dict[str, float] = {}
    if path.exists():
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}
    if refresh or key not in cache:
        cache[key] = matmul_flops_per_s(device, dtype, size)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        tmp.replace(path)
    return float(cache[key])


def training_dtype(device: torch.device) -> torch.dtype:
    """bf16 where a measured bf16 matmul is faster than fp32 on this device, else fp32."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    fp32 = cached_matmul_peak(device, torch.float32, size=DTYPE_PROBE_SIZE)
    bf16 = cached_matmul_peak(device, torch.bfloat16, size=DTYPE_PROBE_SIZE)
    return torch.bfloat16 if bf16 > fp32 else torch.float32


FAMILY = re.compile(r"\b(gb200|b200|h200|h100|a100|v100|l40s|l4|a10g|a10|t4)\b")


def catalog_id(device_name: str, ids: list[str], memory_gib: float | None = None) -> str | None:
    """The catalog id of a CUDA device name, matched exactly: family, form factor (SXM, PCIe,
    NVL) and memory must all agree, or None (then the peak is measured, and says so).

    torch names: 'NVIDIA H100 80GB HBM3' (SXM), 'NVIDIA H100 PCIe', 'NVIDIA H100 NVL',
    'NVIDIA A100-SXM4-80GB', 'NVIDIA A100 80GB PCIe', 'Tesla V100-SXM2-32GB', 'NVIDIA H200'.
    """
    name = device_name.lower().replace("-", " ").replace("_", " ")
    found = FAMILY.search(name)
    if not found:
        return None
    family = found.group(1)
    rows = [i for i in ids if re.match(rf"{family}(\b|-|$)", i)]
    form = "pcie" if "pcie" in name else "nvl" if "nvl" in name else \
        "sxm" if ("sxm" in name or "hbm3" in name or family in ("h200", "a100", "v100")) else None
    if form is not None and any(f in i for i in rows for f in ("pcie", "nvl", "sxm")):
        rows = [i for i in rows if form in i]
    gib = re.search(r"(\d+)\s*gb", name)
    size = float(gib.group(1)) if gib else memory_gib
    if len(rows) > 1 and size:
        sized = [i for i in rows if re.search(r"(\d+)gb", i)]
        best = min(sized, key=lambda i: abs(float(re.search(r"(\d+)gb", i).group(1))  # type: ignore[union-attr]
                                         - size), default=None)
        rows = [best] if best is not None else rows
    return rows[0] if len(rows) == 1 else None


def catalog_peak(device: torch.device, dtype: torch.dtype) -> Peak | None:
    """The datasheet peak of the exact GPU model in `budget.hardware.catalog`, if it has it."""
    if device.type != "cuda":
        return None
    try:
        from budget.hardware.catalog import load_catalog
    except ImportError:
        return None
    precision = "bf16" if dtype == torch.bfloat16 else "fp32"
    catalog = load_catalog()
    memory = torch.cuda.get_device_properties(device).total_memory / 2 ** 30
    found = catalog_id(torch.cuda.get_device_name(device), [a.id for a in catalog.accelerators],
                       memory)
    if found is None:
        return None
    acc = catalog.get(found)
    return Peak(acc.peak_flops(precision), precision, f"catalog:{acc.id}")


def peak_for(device: torch.device, dtype: torch.dtype) -> Peak:
    """Catalog peak on a known GPU, else the cached measured matmul throughput."""
    found = catalog_peak(device, dtype)
    if found is not None:
        return found
    name = "bf16" if dtype == torch.bfloat16 else "fp32"
    return Peak(cached_matmul_peak(device, dtype), name, "measured matmul")
