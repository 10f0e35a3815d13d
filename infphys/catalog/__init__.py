"""Reference data: GPUs, models, number formats and measured serving data, each with its source."""

from __future__ import annotations

from infphys.catalog.gpus import DEFAULT_GPU, GPUS, NVML_TOTAL_MIB, GPUSpec, get_gpu, match_gpu_name
from infphys.catalog.measured import (
    MEASURED_SOURCES,
    load_nim_serving,
    load_static_batch,
    measured_gpu_key,
    measured_model_key,
    measured_precision_key,
)
from infphys.catalog.models import DEFAULT_MODEL, MODELS, ModelSpec, get_model
from infphys.catalog.perception import (
    DEFAULT_SLO,
    FLOW_OF_THOUGHT_S,
    INSTANT_S,
    PERCEPTION_SOURCES,
    READING_WORDS_PER_MIN,
    TOKENS_PER_WORD,
    UNDIVIDED_ATTENTION_S,
    LatencySLO,
    reading_pace_itl_s,
)
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
    "DEFAULT_GPU",
    "DEFAULT_MODEL",
    "DEFAULT_SLO",
    "FITTED_STEP_PARAMS",
    "FIT_SUMMARY",
    "FLOW_OF_THOUGHT_S",
    "FP16",
    "FP32",
    "FP8",
    "GPUS",
    "GPUSpec",
    "IDEAL_STEP_PARAMS",
    "INSTANT_S",
    "INT4",
    "INT8",
    "LatencySLO",
    "MEASURED_SOURCES",
    "MODELS",
    "ModelSpec",
    "NIM_FRONTEND_LATENCY_S",
    "NVML_TOTAL_MIB",
    "PERCEPTION_SOURCES",
    "PRECISIONS",
    "Precision",
    "READING_WORDS_PER_MIN",
    "StepFitSummary",
    "StepParams",
    "TOKENS_PER_WORD",
    "UNDIVIDED_ATTENTION_S",
    "get_gpu",
    "get_model",
    "get_precision",
    "load_nim_serving",
    "load_static_batch",
    "match_gpu_name",
    "measured_gpu_key",
    "measured_model_key",
    "measured_precision_key",
    "reading_pace_itl_s",
]
