"""GPU reference data: memory, memory bandwidth and dense tensor throughput, each with its source.

All figures are dense (no structured sparsity) and come from shared/REFERENCE_DATA.md. Units are
SI: memory in bytes (vendors' "80 GB" is read as 80 × 10^9 bytes), bandwidth in bytes/s,
throughput in FLOP/s. NVML reports memory in MiB: an "80 GB" H100 shows 81,559 MiB ≈ 79.6 GiB,
so the catalog's vendor figure is the conservative one.

Worked example: an H100 SXM reads 3.35 × 10^12 B/s and computes 989 × 10^12 BF16 FLOP/s, so
its ridge point is 989 / 3.35 ≈ 295 FLOP per byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["GPUS", "GPUSpec", "get_gpu", "match_gpu_name"]


@dataclass(frozen=True, slots=True)
class GPUSpec:
    """One GPU model's datasheet figures.

    Attributes:
        key: the catalog key (``h100-sxm``).
        name: display name (``H100 SXM``).
        memory_bytes: device memory, bytes (vendor GB × 10^9).
        bandwidth_bytes_per_s: datasheet memory bandwidth, bytes/s.
        bf16_flops_per_s: dense BF16 tensor throughput, FLOP/s.
        fp8_flops_per_s: dense FP8 tensor throughput, FLOP/s; None where the chip has no FP8.
        sources: the source of each figure, by field name.
        nvml_patterns: regular expressions matched against NVML's device name.
        aliases: extra lookup keys.
    """

    key: str
    name: str
    memory_bytes: float
    bandwidth_bytes_per_s: float
    bf16_flops_per_s: float
    fp8_flops_per_s: float | None
    sources: dict[str, str] = field(default_factory=dict)
    nvml_patterns: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def has_fp8(self) -> bool:
        return self.fp8_flops_per_s is not None

    def flops_per_s(self, fp8: bool = False) -> float:
        """Dense tensor FLOP/s in FP8 (where the chip has it) or BF16."""
        if fp8 and self.fp8_flops_per_s is not None:
            return self.fp8_flops_per_s
        return self.bf16_flops_per_s


def _gpu(
    key: str,
    name: str,
    memory_gb: float,
    bandwidth_tb_s: float,
    bf16_tflops: float,
    fp8_tflops: float | None,
    source: str,
    nvml: tuple[str, ...],
    aliases: tuple[str, ...] = (),
    memory_source: str | None = None,
    bandwidth_source: str | None = None,
) -> GPUSpec:
    return GPUSpec(
        key=key,
        name=name,
        memory_bytes=memory_gb * 1e9,
        bandwidth_bytes_per_s=bandwidth_tb_s * 1e12,
        bf16_flops_per_s=bf16_tflops * 1e12,
        fp8_flops_per_s=None if fp8_tflops is None else fp8_tflops * 1e12,
        sources={
            "memory_bytes": memory_source or source,
            "bandwidth_bytes_per_s": bandwidth_source or source,
            "bf16_flops_per_s": source,
            "fp8_flops_per_s": source if fp8_tflops is not None else "no FP8 tensor cores",
        },
        nvml_patterns=nvml,
        aliases=aliases,
    )


_AIC = "ai-dynamo/aiconfigurator systems/"

GPUS: dict[str, GPUSpec] = {
    g.key: g
    for g in (
        _gpu(
            "a100-40gb-sxm",
            "A100 40GB SXM",
            40,
            1.555,
            312,
            None,
            "NVIDIA A100 whitepaper, as in cli99/llm-analysis gpu_configs/a100-sxm-40gb.json",
            (r"a100.*40\s*gb", r"a100-sxm4-40gb", r"a100-pcie-40gb"),
            ("a100-40gb", "a10040"),
        ),
        _gpu(
            "a100-80gb-sxm",
            "A100 80GB SXM",
            80,
            2.039,
            312,
            None,
            f"NVIDIA A100 datasheet; {_AIC}a100_sxm.yaml",
            (r"a100.*80\s*gb", r"a100-sxm4-80gb"),
            ("a100", "a100-80gb", "a100-sxm", "a10080"),
        ),
        _gpu(
            "h100-sxm",
            "H100 SXM",
            80,
            3.35,
            989,
            1979,
            f"NVIDIA H100 datasheet; {_AIC}h100_sxm.yaml",
            (r"h100.*hbm3", r"h100.*sxm", r"h100 80gb"),
            ("h100", "h100-sxm5"),
        ),
        _gpu(
            "h100-pcie",
            "H100 PCIe",
            80,
            2.0,
            756,
            1513,
            f"{_AIC}h100_pcie.yaml",
            (r"h100.*pcie",),
        ),
        _gpu(
            "h200-sxm",
            "H200 SXM",
            141,
            4.8,
            989,
            1979,
            f"NVIDIA H200 datasheet; {_AIC}h200_sxm.yaml",
            (r"h200",),
            ("h200",),
        ),
        _gpu(
            "b200",
            "B200",
            180,
            7.7,
            2250,
            4500,
            f"{_AIC}b200_sxm.yaml; jax-ml/scaling-book gpus.md",
            (r"b200",),
            ("b200-sxm",),
            bandwidth_source=(f"{_AIC}b200_sxm.yaml (7.7 TB/s); some NVIDIA sheets give 8.0 TB/s"),
        ),
        _gpu("l4", "L4", 24, 0.300, 121, 242, f"{_AIC}l4.yaml", (r"\bl4\b",)),
        _gpu("l40s", "L40S", 48, 0.864, 362, 733, "NVIDIA L40S datasheet", (r"l40s",)),
        _gpu(
            "mi300x",
            "MI300X",
            192,
            5.3,
            1307,
            2615,
            "AMD Instinct MI300X datasheet",
            (r"mi300x",),
        ),
    )
}


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


_LOOKUP: dict[str, str] = {}
for _g in GPUS.values():
    for _k in (_g.key, _g.name, *_g.aliases):
        _LOOKUP[_norm(_k)] = _g.key


def get_gpu(key: str | GPUSpec) -> GPUSpec:
    """Look up a GPU by a forgiving key: ``"h200"``, ``"H200 SXM"``, ``"h100-pcie"``.

    Raises:
        ValueError: naming ``gpu`` and the known keys.
    """
    if isinstance(key, GPUSpec):
        return key
    if isinstance(key, str):
        hit = _LOOKUP.get(_norm(key))
        if hit is not None:
            return GPUS[hit]
    known = ", ".join(GPUS)
    raise ValueError(f"gpu: unknown GPU {key!r}; known: {known}")


def match_gpu_name(nvml_name: str | bytes) -> GPUSpec | None:
    """The catalog entry for a device name as NVML reports it, or None if unrecognised.

    >>> match_gpu_name("NVIDIA H100 80GB HBM3").key
    'h100-sxm'
    >>> match_gpu_name(b"NVIDIA H200").key
    'h200-sxm'
    """
    name = nvml_name.decode() if isinstance(nvml_name, bytes) else nvml_name
    low = name.lower()
    # PCIe first: "H100 PCIe" must not fall through to the SXM entry.
    for key in ("h100-pcie", *[k for k in GPUS if k != "h100-pcie"]):
        if any(re.search(p, low) for p in GPUS[key].nvml_patterns):
            return GPUS[key]
    return None
