"""GPU watcher: sample memory, utilisation, power and temperature while a load runs.

One NVML session is opened for the whole watch (``nvmlInit`` once at the start, ``nvmlShutdown``
once at the end), and every GPU is sampled at a fixed interval, either for a given duration
(:func:`watch_gpu`) or in a background thread while other code runs (:class:`GPUWatcher`, a
context manager with ``start``/``stop``). The result is a long pandas DataFrame, one row per
(sample, GPU):

| column | unit | NVML call |
|---|---|---|
| ``t_s`` | seconds since the watch started | (``time.perf_counter``) |
| ``gpu`` | device index | |
| ``memory_used_bytes``, ``memory_total_bytes`` | bytes | ``nvmlDeviceGetMemoryInfo`` |
| ``gpu_util_pct``, ``memory_util_pct`` | % of NVML's period | ``nvmlDeviceGetUtilizationRates`` |
| ``power_w`` | watts | ``nvmlDeviceGetPowerUsage`` (milliwatts) |
| ``temperature_c`` | °C | ``nvmlDeviceGetTemperature`` |

Assumptions: NVML's utilisation is the fraction of its own sample period (1/6 s to 1 s, by
board) in which a kernel ran, not the fraction of the GPU's compute in use, so a decode loop
shows 100 % while it reaches a third of peak FLOP/s. A query the board does not support is
NaN in every row. Without a GPU the frame is empty and ``frame.attrs["reason"]`` says why;
an NVML error mid-watch ends the watch cleanly, keeps the rows so far and records the reason.

Worked example: a 10 s watch at ``interval_s=0.1`` on one H100 gives about 100 rows; during a
Llama-3.1-8B decode burst it shows memory used near 72 GiB (weights plus the KV cache vLLM
preallocates: ``gpu_memory_utilization=0.9`` of 79.6 GiB), utilisation at 100 % and power
rising from about 70 W idle towards the 700 W limit.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pandas as pd

from infphys._check import positive
from infphys._closing import Closing
from infphys.measure.gpu.nvml import (
    is_unsupported,
    load_nvml,
    no_gpu_verdict,
    nvml_reason,
    text,
)

__all__ = [
    "WATCH_COLUMNS",
    "GPUWatcher",
    "watch_gpu",
]

#: The watcher frame's columns, in order.
WATCH_COLUMNS = (
    "t_s",
    "gpu",
    "memory_used_bytes",
    "memory_total_bytes",
    "gpu_util_pct",
    "memory_util_pct",
    "power_w",
    "temperature_c",
)

#: Upper bound on rows kept, so a forgotten background watch cannot fill memory.
DEFAULT_MAX_SAMPLES = 200_000


class GPUWatcher(Closing):
    """Sample every GPU (or the ``gpus`` given) every ``interval_s`` seconds in one NVML session.

    Use it around a load::

        with GPUWatcher(interval_s=0.1) as w:
            run_load()
        w.frame          # DataFrame, one row per (sample, GPU)
        w.reason         # None, or why the watch found no GPU or ended early

    or ``start()`` … ``stop()`` (``stop`` returns the frame), or :meth:`run_for` to sample in
    the calling thread. Never raises for a missing GPU or an NVML failure; bad arguments raise
    ``ValueError``.
    """

    def __init__(
        self,
        interval_s: float = 0.1,
        *,
        gpus: Sequence[int] | None = None,
        max_samples: int = DEFAULT_MAX_SAMPLES,
    ) -> None:
        self.interval_s = positive("interval_s", interval_s)
        self.max_samples = int(positive("max_samples", max_samples))
        self._wanted = None if gpus is None else [int(i) for i in gpus]
        self._rows: list[dict[str, float]] = []
        self._reason: str | None = None
        self._nvml: ModuleType | None = None
        self._handles: list[tuple[int, Any]] = []
        self._names: dict[int, str] = {}
        self._disabled: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._t0 = 0.0
        self._started_at: str | None = None
        self._open = False
        self._samples = 0

    # --- session -------------------------------------------------------------------------
    def _open_session(self) -> bool:
        """nvmlInit and device handles; on failure record the reason and return False."""
        self._started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self._t0 = time.perf_counter()
        try:
            nvml = load_nvml()
        except ImportError as exc:
            self._reason = no_gpu_verdict(nvml_reason(exc))
            return False
        try:
            nvml.nvmlInit()
        except Exception as exc:
            self._reason = no_gpu_verdict(nvml_reason(exc, nvml))
            return False
        self._nvml = nvml
        self._open = True
        try:
            count = int(nvml.nvmlDeviceGetCount())
            indices = list(range(count)) if self._wanted is None else self._wanted
            for i in indices:
                if not 0 <= i < count:
                    self._reason = f"gpus: no GPU {i} (NVML sees {count})"
                    self._close_session()
                    return False
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                self._handles.append((i, handle))
                try:
                    self._names[i] = text(nvml.nvmlDeviceGetName(handle))
                except Exception:
                    self._names[i] = f"GPU {i}"
        except Exception as exc:
            self._reason = no_gpu_verdict(nvml_reason(exc, nvml))
            self._close_session()
            return False
        if not self._handles:
            self._reason = no_gpu_verdict("the driver reports 0 devices")
            self._close_session()
            return False
        return True

    def _close_session(self) -> None:
        if self._open and self._nvml is not None:
            with contextlib.suppress(Exception):  # the session is over either way
                self._nvml.nvmlShutdown()
        self._open = False

    # --- sampling ------------------------------------------------------------------------
    def _query(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """One NVML query; None (and never asked again) if the board does not support it."""
        if name in self._disabled:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            if is_unsupported(exc, self._nvml):
                self._disabled.add(name)
                return None
            raise

    def _sample(self) -> None:
        nvml = self._nvml
        assert nvml is not None
        t = time.perf_counter() - self._t0
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        rows: list[dict[str, float]] = []
        for i, h in self._handles:
            mem = self._query("memory", nvml.nvmlDeviceGetMemoryInfo, h)
            util = self._query("util", nvml.nvmlDeviceGetUtilizationRates, h)
            power_mw = self._query("power", nvml.nvmlDeviceGetPowerUsage, h)
            temp_c = self._query("temperature", nvml.nvmlDeviceGetTemperature, h, sensor)
            rows.append(
                {
                    "t_s": t,
                    "gpu": float(i),
                    "memory_used_bytes": _num(None if mem is None else mem.used),
                    "memory_total_bytes": _num(None if mem is None else mem.total),
                    "gpu_util_pct": _num(None if util is None else util.gpu),
                    "memory_util_pct": _num(None if util is None else util.memory),
                    "power_w": _num(None if power_mw is None else power_mw / 1000.0),
                    "temperature_c": _num(temp_c),
                }
            )
        with self._lock:
            self._rows.extend(rows)
            self._samples += 1

    def _loop(self, deadline_s: float | None) -> None:
        """Sample until stopped, past ``deadline_s`` (seconds after start) or at max_samples."""
        k = 0
        while True:
            try:
                self._sample()
            except Exception as exc:
                with self._lock:
                    self._reason = (
                        f"watch ended after {self._samples} samples: {nvml_reason(exc, self._nvml)}"
                    )
                break
            k += 1
            if self._samples >= self.max_samples:
                with self._lock:
                    self._reason = f"watch ended at max_samples={self.max_samples}"
                break
            next_t = self._t0 + k * self.interval_s
            if deadline_s is not None and next_t - self._t0 > deadline_s + 1e-9:
                break
            wait = next_t - time.perf_counter()
            if self._stop.wait(max(wait, 0.0)):
                break
        self._close_session()

    # --- public API ----------------------------------------------------------------------
    def start(self) -> GPUWatcher:
        """Open the NVML session and sample in a background thread until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("this GPUWatcher was already started; make a new one")
        self._stop.clear()
        if self._open_session():
            self._thread = threading.Thread(
                target=self._loop, args=(None,), name="infphys-gpu-watcher", daemon=True
            )
            self._thread.start()
        else:
            self._thread = threading.Thread(target=lambda: None)  # marks "started"
        return self

    def stop(self) -> pd.DataFrame:
        """Stop sampling, close the NVML session and return the frame."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=max(10.0, 3 * self.interval_s))
            if self._thread.is_alive():  # stuck inside an NVML call: leave its session alone
                with self._lock:
                    self._reason = "the watcher thread did not stop (an NVML call hung)"
                return self.frame
        self._close_session()
        return self.frame

    def close(self) -> None:
        """:meth:`stop`, leaving the frame in :attr:`frame` (what ``with`` calls on exit)."""
        self.stop()

    def run_for(self, seconds: float) -> pd.DataFrame:
        """Sample in the calling thread for ``seconds`` (first sample at 0, last at ≤ seconds)."""
        duration = positive("seconds", seconds)
        if self._thread is not None:
            raise RuntimeError("this GPUWatcher was already started; make a new one")
        self._thread = threading.Thread(target=lambda: None)
        if self._open_session():
            self._loop(duration)
        return self.frame

    def __enter__(self) -> GPUWatcher:
        return self.start()

    @property
    def reason(self) -> str | None:
        """None while all is well; else why no GPU was watched or why the watch ended early."""
        with self._lock:
            return self._reason

    @property
    def frame(self) -> pd.DataFrame:
        """The samples so far (a copy), with ``attrs``: reason, interval_s, gpu_names,
        started_at (UTC, ISO 8601), samples."""
        with self._lock:
            rows = list(self._rows)
            reason = self._reason
            samples = self._samples
        df = pd.DataFrame(rows, columns=list(WATCH_COLUMNS)).astype(
            {c: "float64" for c in WATCH_COLUMNS}
        )
        df["gpu"] = df["gpu"].astype("int64")
        df.attrs["reason"] = reason
        df.attrs["interval_s"] = self.interval_s
        df.attrs["gpu_names"] = {str(k): v for k, v in self._names.items()}
        df.attrs["started_at"] = self._started_at
        df.attrs["samples"] = samples
        return df


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def watch_gpu(
    seconds: float, interval_s: float = 0.1, *, gpus: Sequence[int] | None = None
) -> pd.DataFrame:
    """Sample every GPU for ``seconds`` at ``interval_s`` in one NVML session; see the module.

    >>> df = watch_gpu(0.2, 0.1)             # on a laptop without a GPU
    >>> df.empty and df.attrs["reason"].startswith("no NVIDIA GPU visible") or not df.empty
    True
    """
    positive("seconds", seconds)
    return GPUWatcher(interval_s, gpus=gpus).run_for(seconds)
