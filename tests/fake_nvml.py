"""A fake ``pynvml`` module for the GPU tests: the real error classes and codes, fake devices.

``make_fake_nvml(devices, ...)`` returns a module that answers the NVML calls infphys makes, so a
test swaps it in with ``monkeypatch.setitem(sys.modules, "pynvml", fake)``. It counts
``nvmlInit``/``nvmlShutdown`` calls (one session per watch) and can fail on demand: at init
(library not found, driver not loaded), on a query the board does not support, or after a given
number of samples (the GPU falls off the bus mid-watch).
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pynvml as real
import pytest

MiB = 2**20

#: What infphys reports when ``nvmlInit`` fails with each error code, word for word.
NO_GPU_VERDICTS = {
    real.NVML_ERROR_LIBRARY_NOT_FOUND: "no NVIDIA GPU visible: NVML library not found",
    real.NVML_ERROR_DRIVER_NOT_LOADED: "no NVIDIA GPU visible: NVIDIA driver not loaded",
    real.NVML_ERROR_NO_PERMISSION: "no NVIDIA GPU visible: no permission to query NVML",
    real.NVML_ERROR_UNKNOWN: "no NVIDIA GPU visible: NVML error 999: Unknown Error",
}


def use(monkeypatch: pytest.MonkeyPatch, fake: types.ModuleType) -> None:
    """For the rest of the test, ``import pynvml`` gives ``fake``."""
    monkeypatch.setitem(sys.modules, "pynvml", fake)


@dataclass
class FakeGPU:
    """One fake device; figures as NVML returns them (bytes, milliwatts, °C, %)."""

    name: str | bytes = "NVIDIA H100 80GB HBM3"
    memory_total: int = 81559 * MiB
    memory_used: int = 1024 * MiB
    compute_capability: tuple[int, int] = (9, 0)
    power_limit_mw: int = 700_000
    power_mw: int = 71_000
    temperature_c: int = 33
    util_gpu: int = 0
    util_memory: int = 0
    uuid: str | bytes = "GPU-00000000-0000-0000-0000-000000000000"


@dataclass
class FakeState:
    devices: list[FakeGPU]
    init_error: int | None = None
    unsupported: set[str] = field(default_factory=set)
    fail_on_sample: int | None = None  # the memory query of this sample (1-based) fails
    fail_code: int = real.NVML_ERROR_GPU_IS_LOST
    driver: str | bytes = "550.54.15"
    cuda: int = 12040
    inits: int = 0
    shutdowns: int = 0
    memory_queries: int = 0


def make_fake_nvml(devices: list[FakeGPU], **state: Any) -> types.ModuleType:
    """A module standing in for pynvml; its ``state`` attribute holds the counters."""
    st = FakeState(devices=list(devices), **state)
    mod = types.ModuleType("pynvml")
    mod.state = st  # type: ignore[attr-defined]
    for name in dir(real):
        if name.startswith("NVMLError") or name.startswith("NVML_"):
            setattr(mod, name, getattr(real, name))

    def err(code: int) -> Exception:
        return real.NVMLError(code)  # the real factory: NVMLError_GpuIsLost etc.

    def query(name: str) -> None:
        if st.unsupported and name in st.unsupported:
            raise err(real.NVML_ERROR_NOT_SUPPORTED)

    def nvmlInit() -> None:
        if st.init_error is not None:
            raise err(st.init_error)
        st.inits += 1

    def nvmlShutdown() -> None:
        st.shutdowns += 1

    def handle(i: int) -> FakeGPU:
        return st.devices[i]

    def memory(h: FakeGPU) -> Any:
        query("memory")
        if h is st.devices[0]:
            st.memory_queries += 1
        if st.fail_on_sample is not None and st.memory_queries >= st.fail_on_sample:
            raise err(st.fail_code)
        used = h.memory_used + st.memory_queries * MiB  # grows 1 MiB per sample
        return types.SimpleNamespace(total=h.memory_total, used=used, free=h.memory_total - used)

    def util(h: FakeGPU) -> Any:
        query("util")
        return types.SimpleNamespace(gpu=h.util_gpu, memory=h.util_memory)

    def power(h: FakeGPU) -> int:
        query("power")
        return h.power_mw

    def power_limit(h: FakeGPU) -> int:
        query("power_limit")
        return h.power_limit_mw

    def temperature(h: FakeGPU, sensor: int) -> int:
        query("temperature")
        assert sensor == real.NVML_TEMPERATURE_GPU
        return h.temperature_c

    def capability(h: FakeGPU) -> tuple[int, int]:
        query("compute_capability")
        return h.compute_capability

    funcs = {
        "nvmlInit": nvmlInit,
        "nvmlShutdown": nvmlShutdown,
        "nvmlDeviceGetCount": lambda: len(st.devices),
        "nvmlDeviceGetHandleByIndex": handle,
        "nvmlDeviceGetName": lambda h: h.name,
        "nvmlDeviceGetUUID": lambda h: h.uuid,
        "nvmlDeviceGetMemoryInfo": memory,
        "nvmlDeviceGetUtilizationRates": util,
        "nvmlDeviceGetPowerUsage": power,
        "nvmlDeviceGetEnforcedPowerLimit": power_limit,
        "nvmlDeviceGetPowerManagementLimit": power_limit,
        "nvmlDeviceGetTemperature": temperature,
        "nvmlDeviceGetCudaComputeCapability": capability,
        "nvmlSystemGetDriverVersion": lambda: st.driver,
        "nvmlSystemGetCudaDriverVersion": lambda: st.cuda,
        "nvmlSystemGetNVMLVersion": lambda: "12.550.54.15",
    }
    for name, fn in funcs.items():
        setattr(mod, name, fn)
    return mod
