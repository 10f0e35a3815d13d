"""Reference data: GPUs, models, number formats and measured serving data, each with its source."""

from __future__ import annotations

from infphys.catalog.gpus import GPUS, NVML_TOTAL_MIB, GPUSpec, get_gpu, match_gpu_name
from infphys.catalog.measured import (
    MEASURED_SOURCES,
    load_nim_serving,
    load_static_batch,
    measured_gpu_key,
    measured_model_key,
    measured_precision_key,
)
from infphys.catalog.models import MODELS, ModelSpec, get_model
from infphys.catalog.precision import (
    BF16,
    FP8,
    FP16,
    FP32,
    INT4,
    INT8,
    PRECISIONS,
    Precision,
    get_precision,
)
from infphys.catalog.step_fit import (
    FIT_SUMMARY,
    FITTED_STEP_PARAMS,
    IDEAL_STEP_PARAMS,
    NIM_FRONTEND_LATENCY_S,
    StepFitSummary,
    StepParams,
)

__all__ = [
    "BF16",
    "FITTED_STEP_PARAMS",
    "FIT_SUMMARY",
    "FP16",
    "FP32",
    "FP8",
    "GPUS",
    "GPUSpec",
    "IDEAL_STEP_PARAMS",
    "INT4",
    "INT8",
    "MEASURED_SOURCES",
    "MODELS",
    "ModelSpec",
    "NIM_FRONTEND_LATENCY_S",
    "NVML_TOTAL_MIB",
    "PRECISIONS",
    "Precision",
    "StepFitSummary",
    "StepParams",
    "get_gpu",
    "get_model",
    "get_precision",
    "load_nim_serving",
    "load_static_batch",
    "match_gpu_name",
    "measured_gpu_key",
    "measured_model_key",
    "measured_precision_key",
]
