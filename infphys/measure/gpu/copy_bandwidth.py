"""Copy bandwidth: how fast this machine's memory really moves bytes, against the datasheet.

A device-to-device copy of ``size`` bytes reads ``size`` bytes and writes ``size`` bytes, so the
memory system moves ``2 × size``. This module times copies of several sizes and reports both
conventions side by side:

- ``bandwidth_read_plus_written_bytes_per_s = 2 × size / time``: the bytes the memory actually
  moved, the figure comparable with the datasheet (and the one aiconfigurator calibrates);
- ``bandwidth_copied_once_bytes_per_s = size / time``: the copied bytes counted once, the original
  notebook's convention, which halves the figure and makes an H100 look like a 1.3 TB/s part.

Method, on a CUDA GPU (torch): two ``uint8`` tensors on the device, a few warm-up copies, then
``repeats`` timings with CUDA events, each around enough back-to-back copies to last a
millisecond or so (small sizes would otherwise be dominated by launch latency); the median time
per copy is kept. ``fraction_of_datasheet`` divides the read-plus-written figure by the catalog's
bandwidth for the GPU (``match_gpu_name`` on the device name).

Without CUDA the same benchmark runs on host memory, with torch CPU tensors when torch is
installed and numpy arrays otherwise, timed with ``time.perf_counter``. It is labelled "host
memory" everywhere it is shown: it teaches the method, not the GPU's figure. Sizes that fit in
the CPU's caches (tens of MiB) measure cache bandwidth, not DRAM.

Assumptions: the copy is a plain contiguous ``memcpy`` (torch uses ``cudaMemcpyAsync`` device to
device); no overlap with other work; the clock starts with the first copy and ends with the last.

Worked example: an H100 SXM copying 1 GiB (1.074 × 10^9 bytes) in 0.80 ms reads 1 GiB and
writes 1 GiB: 2 × 1.074 × 10^9 / 0.80 × 10^-3 = 2.68 TB/s counted both ways, 80 % of the
datasheet's 3.35 TB/s; counted once it would be 1.34 TB/s, "40 %".
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from infphys._check import non_negative_int, positive, positive_int
from infphys.catalog import GPUSpec, match_gpu_name
from infphys.measure.gpu._timing import cuda_event_times_s, host_times_s

__all__ = [
    "COPY_COLUMNS",
    "DEFAULT_DEVICE_SIZES_BYTES",
    "DEFAULT_HOST_SIZES_BYTES",
    "Backend",
    "CopyBandwidthResult",
    "copy_bandwidth",
    "host_name",
    "resolve_backend",
]

MiB = 2**20
GiB = 2**30

Backend = Literal["auto", "torch-cuda", "torch-cpu", "numpy"]

#: Sizes copied on a GPU: from L2-sized (the H100's L2 is 50 MB) to well beyond any cache.
DEFAULT_DEVICE_SIZES_BYTES: tuple[int, ...] = (16 * MiB, 64 * MiB, 256 * MiB, 1 * GiB, 2 * GiB)
#: Sizes copied on host memory: one in cache, two beyond a typical 32 MiB L3.
DEFAULT_HOST_SIZES_BYTES: tuple[int, ...] = (1 * MiB, 16 * MiB, 128 * MiB)

#: The frame's columns, in order.
COPY_COLUMNS = (
    "size_bytes",
    "copies_per_timing",
    "repeats",
    "median_s",
    "min_s",
    "bytes_read_plus_written",
    "bytes_copied_once",
    "bandwidth_read_plus_written_bytes_per_s",
    "bandwidth_copied_once_bytes_per_s",
    "fraction_of_datasheet",
)

#: Bytes copied per timing at least: keeps each timed interval near a millisecond on a GPU.
_DEVICE_BYTES_PER_TIMING = 256 * MiB
_HOST_BYTES_PER_TIMING = 16 * MiB
_MAX_COPIES_PER_TIMING = 200


@dataclass(frozen=True)
class CopyBandwidthResult:
    """One copy-bandwidth run.

    Attributes:
        memory: ``"device"`` (GPU memory) or ``"host"`` (CPU RAM).
        backend: ``"torch-cuda"``, ``"torch-cpu"`` or ``"numpy"``.
        device_name: the GPU's name, or the host CPU's.
        label: one line saying what was measured, e.g. ``"host memory (CPU RAM) via numpy —
            not GPU memory"``.
        catalog: the GPU's catalog entry (None on host memory or an unknown GPU).
        frame: one row per size; columns :data:`COPY_COLUMNS`.
        notes: sizes skipped (memory, time budget) and other remarks.
    """

    memory: str
    backend: str
    device_name: str
    label: str
    catalog: GPUSpec | None
    frame: pd.DataFrame
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def datasheet_bandwidth_bytes_per_s(self) -> float | None:
        return None if self.catalog is None else self.catalog.bandwidth_bytes_per_s

    def _at_largest_size(self, column: str) -> float:
        return math.nan if self.frame.empty else float(self.frame[column].iloc[-1])

    @property
    def bandwidth_bytes_per_s(self) -> float:
        """Read-plus-written bandwidth at the largest size measured (beyond the caches)."""
        return self._at_largest_size("bandwidth_read_plus_written_bytes_per_s")

    @property
    def bandwidth_copied_once_bytes_per_s(self) -> float:
        """The same copy with the bytes counted once (half of :attr:`bandwidth_bytes_per_s`)."""
        return self._at_largest_size("bandwidth_copied_once_bytes_per_s")

    @property
    def fraction_of_datasheet(self) -> float | None:
        """:attr:`bandwidth_bytes_per_s` over the catalog's datasheet figure (None if unknown)."""
        ds = self.datasheet_bandwidth_bytes_per_s
        return None if ds is None or self.frame.empty else self.bandwidth_bytes_per_s / ds

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary figures and one dict per size."""
        return {
            "memory": self.memory,
            "backend": self.backend,
            "device_name": self.device_name,
            "label": self.label,
            "catalog_key": None if self.catalog is None else self.catalog.key,
            "datasheet_bandwidth_bytes_per_s": self.datasheet_bandwidth_bytes_per_s,
            "bandwidth_bytes_per_s": _finite_or_none(self.bandwidth_bytes_per_s),
            "bandwidth_copied_once_bytes_per_s": _finite_or_none(
                self.bandwidth_copied_once_bytes_per_s
            ),
            "fraction_of_datasheet": self.fraction_of_datasheet,
            "notes": list(self.notes),
            "rows": [
                {k: _finite_or_none(v) if isinstance(v, float) else v for k, v in row.items()}
                for row in self.frame.to_dict(orient="records")
            ],
        }


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def host_name() -> str:
    """The host CPU's model name where Linux says it, else the architecture; with core count."""
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    name = name or platform.processor() or platform.machine() or "CPU"
    return f"{name} ({os.cpu_count() or '?'} logical cores)"


def _torch() -> Any | None:
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        return importlib.import_module("torch")
    except Exception:  # a broken install counts as absent
        return None


def resolve_backend(backend: str = "auto") -> str:
    """The backend ``"auto"`` stands for here: torch-cuda, else torch-cpu, else numpy.

    Raises:
        ValueError: naming ``backend`` for an unknown name, or one this machine cannot run.
    """
    allowed = ("auto", "torch-cuda", "torch-cpu", "numpy")
    if backend not in allowed:
        raise ValueError(f"backend must be one of {', '.join(allowed)} (got {backend!r})")
    torch = _torch() if backend != "numpy" else None
    if backend == "auto":
        if torch is not None and torch.cuda.is_available():
            return "torch-cuda"
        return "torch-cpu" if torch is not None else "numpy"
    if backend == "torch-cuda" and (torch is None or not torch.cuda.is_available()):
        raise ValueError("backend: torch-cuda needs torch with a CUDA GPU, and none is available")
    if backend == "torch-cpu" and torch is None:
        raise ValueError("backend: torch-cpu needs torch, which is not installed")
    return backend


def _copies_per_timing(size: int, bytes_per_timing: int) -> int:
    return max(1, min(_MAX_COPIES_PER_TIMING, math.ceil(bytes_per_timing / size)))


def _time_cuda(
    torch: Any, size: int, repeats: int, warmup: int, device: Any
) -> tuple[list[float], int]:
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    copy = functools.partial(dst.copy_, src)
    try:
        src.fill_(1)
        n = _copies_per_timing(size, _DEVICE_BYTES_PER_TIMING)
        times = cuda_event_times_s(torch, device, copy, repeats, warmup=max(warmup, 1), calls=n)
    finally:
        del src, dst, copy  # the buffers go before the cache is handed back
        torch.cuda.empty_cache()
    return times, n


def _time_host(
    copy: Callable[[], object], size: int, repeats: int, warmup: int
) -> tuple[list[float], int]:
    n = _copies_per_timing(size, _HOST_BYTES_PER_TIMING)
    return host_times_s(copy, repeats, warmup=warmup, calls=n), n


def _row(size: int, times: list[float], n: int, datasheet: float | None) -> dict[str, Any]:
    median_s = statistics.median(times)
    rw = 2 * size / median_s
    return {
        "size_bytes": size,
        "copies_per_timing": n,
        "repeats": len(times),
        "median_s": median_s,
        "min_s": min(times),
        "bytes_read_plus_written": 2 * size,
        "bytes_copied_once": size,
        "bandwidth_read_plus_written_bytes_per_s": rw,
        "bandwidth_copied_once_bytes_per_s": size / median_s,
        "fraction_of_datasheet": math.nan if datasheet is None else rw / datasheet,
    }


def copy_bandwidth(
    sizes_bytes: Sequence[int] | None = None,
    *,
    repeats: int = 15,
    warmup: int = 3,
    backend: Backend = "auto",
    device_index: int = 0,
    time_budget_s: float = 60.0,
) -> CopyBandwidthResult:
    """Time copies of each size and report bandwidth both ways; see the module docstring.

    Args:
        sizes_bytes: bytes per copy; default :data:`DEFAULT_DEVICE_SIZES_BYTES` on a GPU,
            :data:`DEFAULT_HOST_SIZES_BYTES` on host memory. Sizes whose two buffers would take
            more than 80 % of the GPU's free memory are skipped (noted).
        repeats: timings per size; the median is reported.
        warmup: untimed copies before the timings.
        backend: ``"auto"`` (torch-cuda, else torch-cpu, else numpy) or one of those.
        device_index: which CUDA device (torch-cuda only).
        time_budget_s: sizes not started within this many seconds are skipped (noted); the
            first size always runs.

    Raises:
        ValueError: naming the argument, for bad input or a backend this machine lacks.
    """
    repeats = positive_int("repeats", repeats)
    warmup = non_negative_int("warmup", warmup)
    budget = positive("time_budget_s", time_budget_s)
    chosen = resolve_backend(backend)
    on_device = chosen == "torch-cuda"
    sizes = (
        list(sizes_bytes)
        if sizes_bytes is not None
        else list(DEFAULT_DEVICE_SIZES_BYTES if on_device else DEFAULT_HOST_SIZES_BYTES)
    )
    sizes = [positive_int(f"sizes_bytes[{i}]", s) for i, s in enumerate(sizes)]
    if not sizes:
        raise ValueError("sizes_bytes must hold at least one size")

    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    catalog: GPUSpec | None = None
    torch = _torch() if chosen.startswith("torch") else None
    t_start = time.perf_counter()

    if on_device:
        assert torch is not None
        device = torch.device("cuda", int(device_index))
        name = str(torch.cuda.get_device_name(device))
        catalog = match_gpu_name(name)
        label = f"device memory: {name} (torch CUDA, device-to-device copy)"
        if catalog is None:
            notes.append(f"{name} is not in the infphys catalog: no datasheet fraction")
        datasheet = None if catalog is None else catalog.bandwidth_bytes_per_s
        for size in sizes:
            if rows and time.perf_counter() - t_start > budget:
                notes.append(f"skipped {size} bytes: time budget of {budget:g} s spent")
                continue
            free_bytes, _total = torch.cuda.mem_get_info(device)
            if 2 * size > 0.8 * free_bytes:
                notes.append(
                    f"skipped {size} bytes: two buffers need {2 * size} bytes, "
                    f"{free_bytes} free on the GPU"
                )
                continue
            times, n = _time_cuda(torch, size, repeats, warmup, device)
            rows.append(_row(size, times, n, datasheet))
    else:
        name = host_name()
        via = "torch CPU" if chosen == "torch-cpu" else "numpy"
        label = f"host memory (CPU RAM) via {via}: not GPU memory"
        for size in sizes:
            if rows and time.perf_counter() - t_start > budget:
                notes.append(f"skipped {size} bytes: time budget of {budget:g} s spent")
                continue
            copy: Callable[[], object]
            if torch is not None:
                src_t = torch.ones(size, dtype=torch.uint8)
                dst_t = torch.zeros(size, dtype=torch.uint8)  # touched: no page faults timed
                copy = functools.partial(dst_t.copy_, src_t)
            else:
                src_a = np.ones(size, dtype=np.uint8)
                dst_a = np.zeros(size, dtype=np.uint8)
                copy = functools.partial(np.copyto, dst_a, src_a)
            times, n = _time_host(copy, size, repeats, warmup)
            rows.append(_row(size, times, n, None))
        notes.append("host memory has no datasheet figure in the catalog")

    frame = pd.DataFrame(rows, columns=list(COPY_COLUMNS))
    frame.attrs["label"] = label
    return CopyBandwidthResult(
        memory="device" if on_device else "host",
        backend=chosen,
        device_name=name,
        label=label,
        catalog=catalog,
        frame=frame,
        notes=tuple(notes),
    )
