"""GPU reference data: memory, bandwidth, dense tensor throughput and interconnect, with sources.

All figures are dense (no structured sparsity) and come from the vendors' datasheets and the
ai-dynamo/aiconfigurator system files (https://github.com/ai-dynamo/aiconfigurator); each entry's
``sources`` names the one behind each figure. Units are SI: memory in bytes (vendors' "80 GB"
is read as 80 × 10^9 bytes), bandwidth in bytes/s, throughput in FLOP/s. NVML reports memory in
MiB: an "80 GB" H100 shows 81,559 MiB ≈ 79.6 GiB, so the catalog's vendor figure is the
conservative one.

Worked example: an H100 SXM reads 3.35 × 10^12 B/s and computes 989 × 10^12 BF16 FLOP/s, so
its ridge point is 989 / 3.35 ≈ 295 FLOP per byte.

Interconnect figures are per GPU and per direction: the bandwidth a ring all-reduce sees between
two GPUs of a tensor-parallel group. Datasheets quote both directions together, so an H100 SXM's
"900 GB/s" NVLink 4 is 450 × 10^9 B/s each way. An H100 NVL or H100 PCIe joins only pairs with an
NVLink bridge (600 GB/s, 300 × 10^9 B/s each way); a group of four falls back to PCIe Gen5 x16
(128 GB/s, 64 × 10^9 B/s each way), about 4.7× slower than the pair link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from infphys._check import positive_int
from infphys.catalog._lookup import find_entry, name_index

__all__ = ["DEFAULT_GPU", "GPUS", "NVML_TOTAL_MIB", "GPUSpec", "get_gpu", "match_gpu_name"]

#: The course's one default GPU (H200 SXM): the fallback simulator plays it, and the home page's
#: numbers and Lab 1's theory assume it (``tests/test_labs_server.py`` checks they agree).
DEFAULT_GPU = "h200"

#: Total memory as ``nvidia-smi`` and NVML report it (MiB, 2^20 B), for cards whose report is
#: known: an "80 GB" H100 SXM shows 81,559 MiB = 85.5 × 10^9 B ≈ 79.6 GiB, more than the
#: catalog's vendor 80 × 10^9 B (which the physics uses: the conservative figure).
NVML_TOTAL_MIB: dict[str, int] = {"h100-sxm": 81_559}


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
        interconnect: the GPU-to-GPU link a tensor-parallel group uses (``NVLink 4 (NVSwitch)``).
        interconnect_bytes_per_s: per GPU, one direction, between any two GPUs of a group,
            bytes/s; 0 where not known.
        interconnect_source: the source of the interconnect figures.
        pair_link_bytes_per_s: a faster link that joins only pairs of GPUs (an NVLink bridge),
            per direction, bytes/s; None where there is none.
        architecture: the chip generation (``ampere``, ``hopper``, ``ada``, ``blackwell``,
            ``cdna3``): matrix units of one generation reach a similar share of their peak.
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
    interconnect: str = "unknown"
    interconnect_bytes_per_s: float = 0.0
    interconnect_source: str = ""
    pair_link_bytes_per_s: float | None = None
    architecture: str = ""

    @property
    def has_fp8(self) -> bool:
        return self.fp8_flops_per_s is not None

    def flops_per_s(self, fp8: bool = False) -> float:
        """Dense tensor FLOP/s in FP8 (where the chip has it) or BF16."""
        if fp8 and self.fp8_flops_per_s is not None:
            return self.fp8_flops_per_s
        return self.bf16_flops_per_s

    def all_reduce_bytes_per_s(self, tp: int) -> float:
        """Per-direction link bandwidth, bytes/s, that a tensor-parallel group of ``tp`` GPUs uses.

        The pair link where ``tp == 2`` and the GPU has one, else the interconnect. A group of
        one does no all-reduce; it gets the interconnect figure so callers may divide zero
        bytes by it.

        >>> get_gpu("h100-nvl").all_reduce_bytes_per_s(2) / 1e9  # NVLink bridge
        300.0
        >>> get_gpu("h100-nvl").all_reduce_bytes_per_s(4) / 1e9  # PCIe Gen5 x16
        64.0

        Raises:
            ValueError: naming ``tp`` if it is not a whole number >= 1, or naming ``gpu`` if
                ``tp > 1`` and the interconnect is not known.
        """
        tp = positive_int("tp", tp)
        if tp == 2 and self.pair_link_bytes_per_s is not None:
            return self.pair_link_bytes_per_s
        if tp > 1 and self.interconnect_bytes_per_s <= 0:
            raise ValueError(f"gpu: {self.key!r} has no interconnect figure (tp={tp})")
        return self.interconnect_bytes_per_s


_ARCHITECTURES = {
    "a100-40gb-sxm": "ampere",
    "a100-80gb-sxm": "ampere",
    "h100-sxm": "hopper",
    "h100-pcie": "hopper",
    "h100-nvl": "hopper",
    "h200-sxm": "hopper",
    "gh200": "hopper",
    "b200": "blackwell",
    "l4": "ada",
    "l40": "ada",
    "l40s": "ada",
    "mi300x": "cdna3",
}


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
    *,
    interconnect: tuple[str, float, str],
    pair_link_gb_s: float | None = None,
    memory_source: str | None = None,
    bandwidth_source: str | None = None,
) -> GPUSpec:
    """A spec from datasheet units; ``interconnect`` is (name, GB/s each way, source)."""
    link, link_gb_s, link_source = interconnect
    return GPUSpec(
        architecture=_ARCHITECTURES[key],
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
        interconnect=link,
        interconnect_bytes_per_s=link_gb_s * 1e9,
        interconnect_source=link_source,
        pair_link_bytes_per_s=None if pair_link_gb_s is None else pair_link_gb_s * 1e9,
    )


_AIC = "ai-dynamo/aiconfigurator systems/"


def _link(
    name: str, bidirectional_gb_s: float, source: str, note: str = ""
) -> tuple[str, float, str]:
    """``(name, GB/s each way, source)`` from a datasheet's per-GPU link figure, which counts
    both directions together: NVLink 4's "900 GB/s" is 450 GB/s each way. ``note`` ends the
    source text."""
    each_way_gb_s = bidirectional_gb_s / 2
    return (
        name,
        each_way_gb_s,
        f"{source}, {bidirectional_gb_s:g} GB/s per GPU bidirectional, "
        f"{each_way_gb_s:g} GB/s each way{note}",
    )


_NVLINK3 = _link("NVLink 3 (NVSwitch)", 600, "NVIDIA A100 datasheet: NVLink 3")
_NVLINK4 = _link("NVLink 4 (NVSwitch)", 900, "NVIDIA H100 SXM / H200 SXM datasheets: NVLink 4")
_NVLINK4_GH200 = _link(
    "NVLink 4 (NVLink Switch System)",
    900,
    "NVIDIA GH200 Grace Hopper Superchip datasheet: NVLink 4",
)
_NVLINK5 = _link("NVLink 5 (NVSwitch)", 1800, "NVIDIA B200 (HGX/DGX B200) datasheet: NVLink 5")
_INFINITY_FABRIC = _link(
    "Infinity Fabric (7 links, fully connected)",
    896,
    "AMD Instinct MI300X datasheet: Infinity Fabric, 7 links × 128 GB/s",
)


def _pcie5_pairs(sheet: str) -> tuple[str, float, str]:
    return _link(
        "NVLink bridge (pairs) + PCIe Gen5",
        128,
        f"NVIDIA {sheet} datasheet: PCIe Gen5 x16 for groups of more than two",
        "; an NVLink bridge, 600 GB/s bidirectional (300 GB/s each way), joins pairs",
    )


def _pcie4(sheet: str) -> tuple[str, float, str]:
    return _link("PCIe Gen4 x16", 64, f"NVIDIA {sheet} datasheet: PCIe Gen4 x16", "; no NVLink")


_GH200_SOURCE = (
    "NVIDIA GH200 Grace Hopper Superchip datasheet, 96 GB HBM3 version. The measured data set's "
    "'GH200 120GB' is mapped to this entry: its largest gpu_peak_memory_gb on GH200 is 96.82 GB, "
    "which fits the 96 GB HBM3 part (other GPUs' peaks reach about 6% above their vendor GB "
    "figure) and is far below the 144 GB HBM3e part"
)

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
            interconnect=_NVLINK3,
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
            interconnect=_NVLINK3,
        ),
        _gpu(
            "h100-sxm",
            "H100 SXM",
            80,
            3.35,
            989,
            1979,
            f"NVIDIA H100 datasheet; {_AIC}h100_sxm.yaml",
            (r"h100.*hbm3", r"h100.*sxm", r"h100[ _]80gb"),
            ("h100", "h100-sxm5"),
            interconnect=_NVLINK4,
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
            interconnect=_pcie5_pairs("H100 PCIe"),
            pair_link_gb_s=300,
        ),
        _gpu(
            "h100-nvl",
            "H100 NVL",
            94,
            3.9,
            835,
            1671,
            "NVIDIA H100 NVL datasheet",
            (r"h100\s*nvl",),
            interconnect=_pcie5_pairs("H100 NVL"),
            pair_link_gb_s=300,
        ),
        _gpu(
            "h200-sxm",
            "H200 SXM",
            141,
            4.8,
            989,
            1979,
            f"NVIDIA H200 datasheet; {_AIC}h200_sxm.yaml",
            (r"(?<!g)h200",),
            ("h200",),
            interconnect=_NVLINK4,
        ),
        _gpu(
            "gh200",
            "GH200 (96 GB HBM3)",
            96,
            4.0,
            989,
            1979,
            "NVIDIA GH200 Grace Hopper Superchip datasheet, 96 GB HBM3 version "
            "(the measured data set's 'GH200 120GB')",
            (r"gh200(?!.*(?:144|hbm3e))",),
            ("gh200-96gb",),
            interconnect=_NVLINK4_GH200,
            memory_source=_GH200_SOURCE,
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
            interconnect=_NVLINK5,
            bandwidth_source=(f"{_AIC}b200_sxm.yaml (7.7 TB/s); some NVIDIA sheets give 8.0 TB/s"),
        ),
        _gpu(
            "l4",
            "L4",
            24,
            0.300,
            121,
            242,
            f"{_AIC}l4.yaml",
            (r"\bl4\b",),
            interconnect=_pcie4("L4"),
        ),
        _gpu(
            "l40",
            "L40",
            48,
            0.864,
            181,
            362,
            "NVIDIA L40 datasheet",
            (r"\bl40\b",),
            interconnect=_pcie4("L40"),
        ),
        _gpu(
            "l40s",
            "L40S",
            48,
            0.864,
            362,
            733,
            "NVIDIA L40S datasheet",
            (r"\bl40s\b",),
            interconnect=_pcie4("L40S"),
        ),
        _gpu(
            "mi300x",
            "MI300X",
            192,
            5.3,
            1307,
            2615,
            "AMD Instinct MI300X datasheet",
            (r"mi300x",),
            interconnect=_INFINITY_FABRIC,
        ),
    )
}


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


_LOOKUP = name_index({g.key: (g.name, *g.aliases) for g in GPUS.values()}, _norm)


def get_gpu(key: str | GPUSpec) -> GPUSpec:
    """Look up a GPU by a forgiving key: ``"h200"``, ``"H200 SXM"``, ``"h100-pcie"``.

    Raises:
        ValueError: naming ``gpu`` and the known keys.
    """
    if isinstance(key, GPUSpec):
        return key
    return find_entry("gpu", "GPU", key, GPUS, _LOOKUP, _norm)


_MATCH_FIRST = ("h100-pcie", "h100-nvl", "gh200")


def match_gpu_name(nvml_name: str | bytes) -> GPUSpec | None:
    """The catalog entry for a device name as NVML reports it, or None if unrecognised.

    >>> match_gpu_name("NVIDIA H100 80GB HBM3").key
    'h100-sxm'
    >>> match_gpu_name(b"NVIDIA H200").key
    'h200-sxm'
    """
    name = nvml_name.decode() if isinstance(nvml_name, bytes) else nvml_name
    low = name.lower()
    # Specific names first: "H100 PCIe" and "H100 NVL" must not fall through to the SXM entry,
    # nor "GH200" to the H200's.
    for key in (*_MATCH_FIRST, *[k for k in GPUS if k not in _MATCH_FIRST]):
        if any(re.search(p, low) for p in GPUS[key].nvml_patterns):
            return GPUS[key]
    return None
