"""GPU probes: who is the metal (NVML), what it does under load (watcher), how fast its memory
really is (copy bandwidth), and whether decode steps land on the roofline (roofline experiment).

Each probe gives a real answer on an NVIDIA GPU and a clear, useful one without: the engine
check's verdict says why no GPU is visible, the watcher returns an empty frame with the reason,
and the two benchmarks run on host memory / a scaled-down shape, labelled as such.
"""

from __future__ import annotations

from infphys.measure.gpu._frames import frame_to_dict, jsonable
from infphys.measure.gpu.copy_bandwidth import (
    COPY_COLUMNS,
    DEFAULT_DEVICE_SIZES_BYTES,
    DEFAULT_HOST_SIZES_BYTES,
    CopyBandwidthResult,
    copy_bandwidth,
)
from infphys.measure.gpu.decode_stack import DecodeStack, StepTiming
from infphys.measure.gpu.nvml import (
    NO_GPU_PREFIX,
    EngineReport,
    GPUInfo,
    engine_check,
    no_gpu_verdict,
)
from infphys.measure.gpu.roofline_experiment import (
    CPU_SCALED_MODEL,
    DEFAULT_BATCH_SIZES,
    DEFAULT_CONTEXT_TOKENS,
    DEFAULT_CPU_BATCH_SIZES,
    EXPERIMENT_COLUMNS,
    experiment_model,
    measure_machine_spec,
    predict_decode_step,
    roofline_experiment,
)
from infphys.measure.gpu.watcher import WATCH_COLUMNS, GPUWatcher, watch_gpu

__all__ = [
    "COPY_COLUMNS",
    "CPU_SCALED_MODEL",
    "DEFAULT_BATCH_SIZES",
    "DEFAULT_CONTEXT_TOKENS",
    "DEFAULT_CPU_BATCH_SIZES",
    "DEFAULT_DEVICE_SIZES_BYTES",
    "DEFAULT_HOST_SIZES_BYTES",
    "EXPERIMENT_COLUMNS",
    "NO_GPU_PREFIX",
    "WATCH_COLUMNS",
    "CopyBandwidthResult",
    "DecodeStack",
    "EngineReport",
    "GPUInfo",
    "GPUWatcher",
    "StepTiming",
    "copy_bandwidth",
    "engine_check",
    "experiment_model",
    "frame_to_dict",
    "jsonable",
    "measure_machine_spec",
    "no_gpu_verdict",
    "predict_decode_step",
    "roofline_experiment",
    "watch_gpu",
]
