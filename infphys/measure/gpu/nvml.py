"""Engine check through NVML: which NVIDIA GPUs this machine has, and what the catalog says of each.

NVML (the library behind ``nvidia-smi``, reached through ``pynvml`` from nvidia-ml-py) reports,
for every visible GPU: its name, memory total/used/free (bytes), CUDA compute capability and
enforced power limit; and, once for the machine, the driver version and the CUDA version the
driver supports. Each name is matched to :mod:`infphys.catalog` (``match_gpu_name``), so the
report carries the datasheet bandwidth and FLOP/s the rest of the kit uses.

Assumptions and traps:

- Current pynvml returns ``str`` names and versions; older releases returned ``bytes``. Both are
  accepted.
- Without a GPU, ``nvmlInit()`` raises ``NVMLError_LibraryNotFound`` (no libnvidia-ml) or
  ``NVMLError_DriverNotLoaded``. Neither is a failure of the kit: :func:`engine_check` returns a
  report whose ``verdict`` explains it, e.g. ``"no NVIDIA GPU visible: NVML library not found"``,
  and never raises.
- A query a GPU does not support (power on some boards, compute capability on old drivers) is
  left as ``None``; the rest of the report stands.

Worked example: an H100 SXM shows up as ``"NVIDIA H100 80GB HBM3"`` with 81,559 MiB
(79.6 GiB, 85.5 × 10^9 bytes) of memory, compute capability 9.0 and a 700 W limit; the catalog
entry ``h100-sxm`` adds 3.35 TB/s and 989 dense BF16 TFLOP/s, so a BF16 decode step of
Llama-3.1-8B (16.06 GB of weights) cannot take less than 16.06 / 3.35 = 4.79 ms on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from infphys.catalog import GPUSpec, match_gpu_name

__all__ = [
    "NO_GPU_PREFIX",
    "EngineReport",
    "GPUInfo",
    "cuda_version_text",
    "engine_check",
    "is_unsupported",
    "load_nvml",
    "no_gpu_verdict",
    "nvml_error_code",
    "nvml_reason",
    "text",
    "torch_status",
]

#: Every no-GPU verdict starts with this; the reason follows after a colon.
NO_GPU_PREFIX = "no NVIDIA GPU visible"

# NVML return codes (nvml.h); read from pynvml when it has them.
_LIBRARY_NOT_FOUND = 12
_DRIVER_NOT_LOADED = 9
_NO_PERMISSION = 4
_NOT_SUPPORTED = 3
_GPU_IS_LOST = 15
_UNINITIALIZED = 1

T = TypeVar("T")


def text(value: str | bytes) -> str:
    """A name or version as NVML returned it (``str`` on current pynvml, ``bytes`` on old)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def load_nvml() -> ModuleType:
    """Import ``pynvml`` (looked up in ``sys.modules`` first, so tests can swap in a fake).

    Raises:
        ImportError: nvidia-ml-py is not installed.
    """
    return importlib.import_module("pynvml")


def _code(nvml: ModuleType | None, name: str, default: int) -> int:
    value = getattr(nvml, name, default) if nvml is not None else default
    return value if isinstance(value, int) else default


def nvml_error_code(exc: BaseException) -> int | None:
    """The NVML return code carried by a ``pynvml.NVMLError``, or None for another exception."""
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def nvml_reason(exc: BaseException, nvml: ModuleType | None = None) -> str:
    """A short, plain reason for an exception raised while opening or querying NVML.

    >>> nvml_reason(ImportError("No module named 'pynvml'"))
    'pynvml is not installed (pip install nvidia-ml-py)'
    """
    if isinstance(exc, ImportError):
        return "pynvml is not installed (pip install nvidia-ml-py)"
    code = nvml_error_code(exc)
    if code is not None:
        known = {
            _code(nvml, name, default): words
            for name, default, words in (
                ("NVML_ERROR_LIBRARY_NOT_FOUND", _LIBRARY_NOT_FOUND, "NVML library not found"),
                ("NVML_ERROR_DRIVER_NOT_LOADED", _DRIVER_NOT_LOADED, "NVIDIA driver not loaded"),
                ("NVML_ERROR_NO_PERMISSION", _NO_PERMISSION, "no permission to query NVML"),
                ("NVML_ERROR_GPU_IS_LOST", _GPU_IS_LOST, "the GPU is lost (fell off the bus)"),
                ("NVML_ERROR_UNINITIALIZED", _UNINITIALIZED, "NVML is not initialised"),
            )
        }
        if code in known:
            return known[code]
        try:
            detail = str(exc)
        except Exception:  # a broken error-string lookup must not hide the code
            detail = ""
        return f"NVML error {code}: {detail}" if detail else f"NVML error {code}"
    return f"{type(exc).__name__}: {exc}"


def is_unsupported(exc: BaseException, nvml: ModuleType | None = None) -> bool:
    """True for NVML's "not supported" and "no permission": one query fails, the GPU is fine."""
    code = nvml_error_code(exc)
    return code in (
        _code(nvml, "NVML_ERROR_NOT_SUPPORTED", _NOT_SUPPORTED),
        _code(nvml, "NVML_ERROR_NO_PERMISSION", _NO_PERMISSION),
    )


def _optional(fn: Callable[[], T]) -> T | None:
    """``fn()``, or None when NVML cannot answer that one query (not supported on this board,
    no permission, or a pynvml too old to have the call); any other exception propagates."""
    try:
        return fn()
    except AttributeError:  # an older pynvml without that call
        return None
    except Exception as exc:
        if nvml_error_code(exc) is not None:
            return None
        raise


@dataclass(frozen=True, slots=True)
class GPUInfo:
    """One GPU as NVML sees it, with its catalog entry when the name is recognised.

    Attributes:
        index: NVML device index (0-based; the order of ``nvidia-smi``).
        name: device name, e.g. ``"NVIDIA H100 80GB HBM3"``.
        uuid: ``GPU-…`` identifier, or None.
        memory_total_bytes, memory_used_bytes, memory_free_bytes: device memory in bytes
            (NVML's figures; an "80 GB" H100 reports 81,559 MiB total).
        compute_capability: ``(major, minor)``, e.g. ``(9, 0)`` for Hopper; None if unknown.
        power_limit_w: enforced power limit in watts; None if not reported.
        catalog: the matching :class:`~infphys.catalog.GPUSpec`, or None.
    """

    index: int
    name: str
    uuid: str | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None
    power_limit_w: float | None = None
    catalog: GPUSpec | None = None

    @property
    def has_fp8_units(self) -> bool:
        """True for compute capability 8.9 (Ada) and later, where tensor cores compute in FP8."""
        return self.compute_capability is not None and self.compute_capability >= (8, 9)

    def describe(self) -> str:
        """One line: ``GPU 0: NVIDIA H100 80GB HBM3 → catalog H100 SXM (3.35 TB/s, …)``."""
        if self.catalog is None:
            return f"GPU {self.index}: {self.name} (not in the infphys catalog)"
        c = self.catalog
        return (
            f"GPU {self.index}: {self.name} → catalog {c.name} "
            f"({c.bandwidth_bytes_per_s / 1e12:.2f} TB/s, "
            f"{c.bf16_flops_per_s / 1e12:,.0f} BF16 TFLOP/s)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields; the catalog entry as its key and datasheet figures."""
        c = self.catalog
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "memory_total_bytes": self.memory_total_bytes,
            "memory_used_bytes": self.memory_used_bytes,
            "memory_free_bytes": self.memory_free_bytes,
            "compute_capability": (
                None if self.compute_capability is None else list(self.compute_capability)
            ),
            "power_limit_w": self.power_limit_w,
            "catalog_key": None if c is None else c.key,
            "catalog_name": None if c is None else c.name,
            "datasheet_bandwidth_bytes_per_s": None if c is None else c.bandwidth_bytes_per_s,
            "datasheet_bf16_flops_per_s": None if c is None else c.bf16_flops_per_s,
            "datasheet_fp8_flops_per_s": None if c is None else c.fp8_flops_per_s,
            "datasheet_source": None if c is None else c.sources.get("bandwidth_bytes_per_s"),
        }


@dataclass(frozen=True, slots=True)
class EngineReport:
    """What :func:`engine_check` found.

    Attributes:
        verdict: one line for the user: the GPUs found, or ``"no NVIDIA GPU visible: <reason>"``.
        gpus: every visible GPU (empty without one).
        driver_version: e.g. ``"550.54.15"``; None without a driver.
        cuda_driver_version: the CUDA version the driver supports, e.g. ``"12.4"``.
        nvml_version: NVML's own version string.
        reason: why no GPU is visible (None when at least one is).
        torch: what torch says (``"torch 2.13.0+cpu: CUDA not available"``), or None when
            torch is not installed or not asked about.
    """

    verdict: str
    gpus: tuple[GPUInfo, ...] = ()
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    nvml_version: str | None = None
    reason: str | None = None
    torch: str | None = None

    @property
    def ok(self) -> bool:
        """True when at least one NVIDIA GPU is visible."""
        return bool(self.gpus)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "reason": self.reason,
            "driver_version": self.driver_version,
            "cuda_driver_version": self.cuda_driver_version,
            "nvml_version": self.nvml_version,
            "torch": self.torch,
            "gpus": [g.to_dict() for g in self.gpus],
        }


def no_gpu_verdict(reason: str) -> str:
    """``"no NVIDIA GPU visible: <reason>"``: the line every face shows without a GPU."""
    return f"{NO_GPU_PREFIX}: {reason}"


def cuda_version_text(version: int) -> str:
    """NVML's integer CUDA version as text.

    >>> cuda_version_text(12040)
    '12.4'
    """
    return f"{version // 1000}.{(version % 1000) // 10}"


def _gpu_info(nvml: ModuleType, index: int) -> GPUInfo:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = text(nvml.nvmlDeviceGetName(handle))
    uuid_raw = _optional(lambda: nvml.nvmlDeviceGetUUID(handle))
    mem = _optional(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    cc = _optional(lambda: nvml.nvmlDeviceGetCudaComputeCapability(handle))
    limit_mw = _optional(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    if limit_mw is None:
        limit_mw = _optional(lambda: nvml.nvmlDeviceGetPowerManagementLimit(handle))
    return GPUInfo(
        index=index,
        name=name,
        uuid=None if uuid_raw is None else text(uuid_raw),
        memory_total_bytes=None if mem is None else int(mem.total),
        memory_used_bytes=None if mem is None else int(mem.used),
        memory_free_bytes=None if mem is None else int(mem.free),
        compute_capability=None if cc is None else (int(cc[0]), int(cc[1])),
        power_limit_w=None if limit_mw is None else float(limit_mw) / 1000.0,
        catalog=match_gpu_name(name),
    )


def torch_status(*, gpu_visible: bool = True) -> str | None:
    """What torch says about CUDA, in one line; None when torch is not installed.

    ``"torch 2.13.0+cpu: CUDA not available"``, or ``"torch 2.5.1+cu124: CUDA 12.4, 1 device"``.
    With ``gpu_visible=False`` (NVML found no GPU, so CUDA cannot be available) torch is not
    imported, which saves a few seconds: only its installed version is read.
    """
    if importlib.util.find_spec("torch") is None:
        return None
    if not gpu_visible:
        try:
            version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            version = "(version unknown)"
        return f"torch {version}: CUDA not available"
    try:
        torch = importlib.import_module("torch")
        version = str(torch.__version__)
        if not torch.cuda.is_available():
            return f"torch {version}: CUDA not available"
        n = int(torch.cuda.device_count())
        return f"torch {version}: CUDA {torch.version.cuda}, {n} device{'s' if n != 1 else ''}"
    except Exception as exc:  # a broken torch install must not break the engine check
        return f"torch present but failed to load: {type(exc).__name__}: {exc}"


def engine_check(*, include_torch: bool = True) -> EngineReport:
    """Report every visible NVIDIA GPU, or explain why there is none. Never raises.

    Opens one NVML session, reads the machine's driver and CUDA versions and each GPU's
    identity, memory, compute capability and power limit, matches each name to the catalog,
    and closes the session; with ``include_torch`` adds what torch says about CUDA.

    >>> report = engine_check(include_torch=False)   # on a laptop
    >>> report.verdict.startswith("no NVIDIA GPU visible") or report.ok
    True
    """
    report = _nvml_report()
    if not include_torch:
        return report
    return dataclasses.replace(report, torch=torch_status(gpu_visible=report.ok))


def _nvml_report() -> EngineReport:
    """The engine check's NVML part: one session, every GPU, closed again; never raises."""
    try:
        nvml = load_nvml()
    except ImportError as exc:
        reason = nvml_reason(exc)
        return EngineReport(verdict=no_gpu_verdict(reason), reason=reason)
    try:
        nvml.nvmlInit()
    except Exception as exc:
        reason = nvml_reason(exc, nvml)
        return EngineReport(verdict=no_gpu_verdict(reason), reason=reason)
    try:
        driver = _optional(lambda: nvml.nvmlSystemGetDriverVersion())
        cuda = _optional(lambda: nvml.nvmlSystemGetCudaDriverVersion())
        nvml_version = _optional(lambda: nvml.nvmlSystemGetNVMLVersion())
        count = int(nvml.nvmlDeviceGetCount())
        gpus = tuple(_gpu_info(nvml, i) for i in range(count))
    except Exception as exc:
        reason = nvml_reason(exc, nvml)
        return EngineReport(verdict=no_gpu_verdict(reason), reason=reason)
    finally:
        with contextlib.suppress(Exception):  # closing a half-open session: nothing to report
            nvml.nvmlShutdown()
    driver_text = None if driver is None else text(driver)
    cuda_text = None if cuda is None else cuda_version_text(int(cuda))
    nvml_text = None if nvml_version is None else text(nvml_version)
    if not gpus:
        reason = "the driver reports 0 devices"
        return EngineReport(
            verdict=no_gpu_verdict(reason),
            reason=reason,
            driver_version=driver_text,
            cuda_driver_version=cuda_text,
            nvml_version=nvml_text,
        )
    n = len(gpus)
    verdict = f"{n} NVIDIA GPU{'s' if n > 1 else ''} visible: " + "; ".join(
        g.describe() for g in gpus
    )
    return EngineReport(
        verdict=verdict,
        gpus=gpus,
        driver_version=driver_text,
        cuda_driver_version=cuda_text,
        nvml_version=nvml_text,
    )
