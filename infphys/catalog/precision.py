"""Numeric precisions for weights and for the KV cache.

A :class:`Precision` says how many bytes one element takes, including the amortised cost of
per-group scales for block-quantised formats. Weights and the KV cache take a precision each.

Worked example: INT4 weights with one FP16 scale per group of 128 elements take
0.5 + 2/128 = 0.515625 bytes per element, so Llama-3.1-8B's 8.03 B parameters need about
4.14 GB instead of 16.06 GB in BF16.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infphys._check import positive, positive_int

__all__ = [
    "BF16",
    "FP8",
    "FP16",
    "FP32",
    "INT4",
    "INT8",
    "PRECISIONS",
    "Precision",
    "get_precision",
]


@dataclass(frozen=True, slots=True)
class Precision:
    """A number format.

    Attributes:
        name: short name (``bf16``, ``fp8``, …).
        bits: bits per element, scales excluded.
        group_size: elements that share one scale (None: no per-group scale counted).
        scale_bytes: bytes of one scale (FP16 scales: 2).
        has_fp8_math: True if tensor cores compute in this format (FP8) rather than
            dequantising to BF16 first (INT4/INT8 weight-only in most serving engines).
    """

    name: str
    bits: float
    group_size: int | None = None
    scale_bytes: float = 2.0
    has_fp8_math: bool = False

    def __post_init__(self) -> None:
        positive("bits", self.bits)
        if self.group_size is not None:
            positive_int("group_size", self.group_size)
        positive("scale_bytes", self.scale_bytes)

    @property
    def bytes_per_element(self) -> float:
        """Bytes per element, including the per-group scale when one is counted."""
        b = self.bits / 8
        if self.group_size is not None:
            b += self.scale_bytes / self.group_size
        return b

    def with_group_scales(self, group_size: int, scale_bytes: float = 2.0) -> Precision:
        """The same format with one scale of ``scale_bytes`` per ``group_size`` elements."""
        return Precision(
            name=f"{self.name}-g{positive_int('group_size', group_size)}",
            bits=self.bits,
            group_size=group_size,
            scale_bytes=scale_bytes,
            has_fp8_math=self.has_fp8_math,
        )

    def __str__(self) -> str:
        return self.name


FP32 = Precision("fp32", 32)
BF16 = Precision("bf16", 16)
FP16 = Precision("fp16", 16)
FP8 = Precision("fp8", 8, has_fp8_math=True)
INT8 = Precision("int8", 8)
INT4 = Precision("int4", 4)

PRECISIONS: dict[str, Precision] = {p.name: p for p in (FP32, BF16, FP16, FP8, INT8, INT4)}

_ALIASES = {
    "float32": "fp32",
    "float": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "fp8e4m3": "fp8",
    "fp8_e4m3": "fp8",
    "e4m3": "fp8",
    "float8": "fp8",
    "w8a8": "fp8",
    "w4a16": "int4",
}


def get_precision(key: str | Precision) -> Precision:
    """Look up a precision by a forgiving name: ``"bf16"``, ``"BF16"``, ``"int4-g128"``.

    A ``-gN`` suffix adds one FP16 scale per N elements.

    Raises:
        ValueError: naming ``precision`` and the known names, for an unknown name.
    """
    if isinstance(key, Precision):
        return key
    if not isinstance(key, str):
        raise ValueError(f"precision must be a name such as 'bf16' (got {key!r})")
    k = key.strip().lower().replace(" ", "")
    group: int | None = None
    m = re.fullmatch(r"(.+?)[-_]g(\d+)", k)
    if m:
        k, group = m.group(1), int(m.group(2))
    k = _ALIASES.get(k.replace("-", "_"), _ALIASES.get(k, k))
    if k not in PRECISIONS:
        known = ", ".join(sorted(PRECISIONS))
        raise ValueError(
            f"precision: unknown name {key!r}; known: {known} (add -g128 for group scales)"
        )
    p = PRECISIONS[k]
    return p.with_group_scales(group) if group else p
