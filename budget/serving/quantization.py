"""Weight sizes per precision, with the group-wise scale and zero-point overhead stated.

size = N x bits per weight / 8, bits per weight = bits + (scale bits + zero bits) / group size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from budget.errors import BudgetError


@dataclass(frozen=True)
class QuantFormat:
    """A weight format: `bits` per value plus one scale (and zero point) per `group_size` values."""

    name: str
    bits: float
    group_size: int = 0  # 0: no per-group scales (per-tensor at most)
    scale_bits: int = 0
    zero_bits: int = 0
    layout: str = ""
    source: str = ""

    @property
    def bits_per_weight(self) -> float:
        if not self.group_size:
            return self.bits
        return self.bits + (self.scale_bits + self.zero_bits) / self.group_size

    @property
    def bytes_per_weight(self) -> float:
        return self.bits_per_weight / 8.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bits_per_weight": self.bits_per_weight}


FORMATS: dict[str, QuantFormat] = {f.name: f for f in (
    QuantFormat("fp32", 32, layout="IEEE 754 single", source="IEEE 754"),
    QuantFormat("bf16", 16, layout="bfloat16", source="Kalamkar et al. 2019 (arXiv:1905.12322)"),
    QuantFormat("fp16", 16, layout="IEEE 754 half", source="IEEE 754"),
    QuantFormat("fp8", 8, layout="E4M3, one fp32 scale per tensor (~0 bits/weight)",
                source="Micikevicius et al. 2022 FP8 formats (arXiv:2209.05433); vLLM docs "
                       "'Quantized KV Cache' (per-tensor scale)"),
    QuantFormat("int8", 8, 32, 16, 0, layout="blocks of 32, fp16 scale, symmetric "
                "(llama.cpp q8_0: 34 bytes per 32 weights = 8.5 bits)",
                source="llama.cpp ggml-quants.h block_q8_0"),
    QuantFormat("int4", 4, 128, 16, 4, layout="groups of 128, fp16 scale + packed 4-bit zero "
                "(AutoAWQ/AutoGPTQ qweight/qzeros/scales): 4.156 bits",
                source="Lin et al. 2023 AWQ (arXiv:2306.00978); AutoAWQ WQLinear_GEMM buffers"),
)}
PRECISIONS = tuple(FORMATS)


def quant_format(name: str, group_size: int | None = None) -> QuantFormat:
    """The named format, with `group_size` overriding its group (0 drops the scales)."""
    if name not in FORMATS:
        raise BudgetError(f"precision {name!r} is unknown; choose one of {', '.join(PRECISIONS)}")
    fmt = FORMATS[name]
    if group_size is None:
        return fmt
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 0:
        raise BudgetError(f"group size {group_size!r} must be a whole number >= 0 (0: no scales)")
    if fmt.bits >= 16 and group_size:
        raise BudgetError(f"{name} has no group-wise scales; --group-size applies to int8/int4")
    scale = fmt.scale_bits or 16  # fp16 scale per group (AWQ/GPTQ/llama.cpp)
    zero = fmt.zero_bits if group_size else 0
    layout = (f"groups of {group_size}, fp16 scale" + (f" + {zero}-bit zero" if zero else "")
              if group_size else "no scales (raw values)")
    return replace(fmt, group_size=group_size, scale_bits=scale if group_size else 0,
                   zero_bits=zero, layout=layout + " (--group-size)")


def weight_bytes(params: float, name: str, group_size: int | None = None) -> float:
    """N x bits per weight / 8 (every parameter stored in the format, embeddings included)."""
    return params * quant_format(name, group_size).bytes_per_weight


@dataclass(frozen=True)
class SizeRow:
    precision: str
    bits_per_weight: float
    weight_bytes: float
    layout: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def size_table(params: float, group_size: int | None = None) -> tuple[SizeRow, ...]:
    """Weight bytes of `params` parameters in every format (`group_size` applies to int8/int4)."""
    rows = []
    for name, fmt in FORMATS.items():
        f = quant_format(name, group_size) if fmt.bits < 16 else fmt
        rows.append(SizeRow(name, f.bits_per_weight, params * f.bytes_per_weight, f.layout,
                            f.source))
    return tuple(rows)
