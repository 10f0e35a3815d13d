"""Measured serving data: NVIDIA's NIM and TensorRT-LLM 0.9 tables, keyed to the catalog.

Two tables ship with the package (``infphys/catalog/data/``), both NVIDIA Deep Learning Institute
course data as published in the GitHub repository ``wbing520/ai-performance-engineering``
(``code/ch10_inference/inference_gpu_cluster_sizing/dataset/``, commit 0e25b2e2); columns were
renamed to carry their units, values are unchanged.

- :func:`load_nim_serving`: NIM (TensorRT-LLM engine) serving Llama-3 8B and 70B Instruct to a
  closed loop of ``concurrency`` streaming clients; 525 rows.
- :func:`load_static_batch`: TensorRT-LLM 0.9 static batches (``batch`` requests of ``isl`` prompt
  and ``osl`` output tokens run together); 3,449 rows, of which 2,878 hold a result.

Each loader keeps every row and column of its file and adds ``model_key``, ``gpu_key``,
``precision_key`` (catalog keys; the static table's ``mixed`` means FP16 weights and activations,
so ``fp16``), ``tp``, ``measured`` (a result was recorded) and ``source`` (the provenance).

Worked example: NIM serving Llama-3-70B on 8 A100s in BF16 to one client, 200 prompt and 200
output tokens, measured TTFT 49.476 ms, ITL 21.8392 ms and 45.499 output tokens/s. Little's law
for the closed loop: 1 client × 200 tokens / 45.499 tokens/s = 4.396 s per request, and
TTFT + 199 × ITL = 0.049 + 199 × 0.02184 = 4.395 s, as the measured e2e (4,395.48 ms).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import pandas as pd

__all__ = [
    "MEASURED_SOURCES",
    "load_nim_serving",
    "load_static_batch",
    "measured_gpu_key",
    "measured_model_key",
    "measured_precision_key",
]

NIM_FILE = "nim_llama3_serving.csv"
STATIC_FILE = "trtllm_0.9_static_batch.csv"

_ORIGIN = (
    "NVIDIA DLI course data as published in GitHub repo wbing520/ai-performance-engineering, "
    "code/ch10_inference/inference_gpu_cluster_sizing/dataset/ at commit 0e25b2e2; "
    "columns renamed, values unchanged"
)

#: Provenance of each measured file, by file name.
MEASURED_SOURCES: dict[str, str] = {
    NIM_FILE: f"infphys/catalog/data/{NIM_FILE}: NVIDIA NIM (TensorRT-LLM) serving "
    f"Llama-3 Instruct, GenAI-Perf closed loop; {_ORIGIN}",
    STATIC_FILE: f"infphys/catalog/data/{STATIC_FILE}: TensorRT-LLM 0.9 static-batch runs with "
    f"random weights; {_ORIGIN}",
}

# The data sets' names → catalog keys. Llama-3 8B/70B have Llama-3.1 8B/70B's shapes.
_MODEL_KEYS: dict[str, str] = {
    "meta-llama3-8b-instruct": "llama-3.1-8b",
    "meta-llama3-70b-instruct": "llama-3.1-70b",
    "LLaMA v2 7B": "llama-2-7b",
    "LLaMA v2 13B": "llama-2-13b",
    "LLaMA v2 70B": "llama-2-70b",
    "Mistral 7B": "mistral-7b-v0.1",
    "Mixtral 8x7B": "mixtral-8x7b",
    "GPTJ 6B": "gpt-j-6b",
    "Falcon 180B": "falcon-180b",
}

_GPU_KEYS: dict[str, str] = {
    "A100-SXM4-80GB": "a100-80gb-sxm",
    "H100_80GB_HBM3": "h100-sxm",
    "H100 80GB HBM3": "h100-sxm",
    "H100 NVL": "h100-nvl",
    "H200 141GB HBM3": "h200-sxm",
    "GH200 120GB": "gh200",  # the 96 GB HBM3 part: see the catalog entry's source
    "L40": "l40",
    "L40S": "l40s",
}

_PRECISION_KEYS: dict[str, str] = {
    "fp16": "fp16",
    "bf16": "bf16",
    "fp8": "fp8",
    "mixed": "fp16",  # FP16 weights and activations
}


def _lookup(argument: str, table: dict[str, str], name: str) -> str:
    try:
        return table[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(k) for k in table)
        raise ValueError(
            f"{argument}: {name!r} is not a name in the measured data; known: {known}"
        ) from None


def measured_model_key(name: str) -> str:
    """The catalog model key for a model name in the measured data.

    >>> measured_model_key("LLaMA v2 70B")
    'llama-2-70b'

    Raises:
        ValueError: naming ``model`` and the name if the data sets do not use it.
    """
    return _lookup("model", _MODEL_KEYS, name)


def measured_gpu_key(name: str) -> str:
    """The catalog GPU key for a GPU name in the measured data.

    >>> measured_gpu_key("H100_80GB_HBM3")
    'h100-sxm'

    Raises:
        ValueError: naming ``gpu`` and the name if the data sets do not use it.
    """
    return _lookup("gpu", _GPU_KEYS, name)


def measured_precision_key(name: str) -> str:
    """The catalog precision key for a precision in the measured data (``mixed`` → ``fp16``).

    Raises:
        ValueError: naming ``precision`` and the name if the data sets do not use it.
    """
    return _lookup("precision", _PRECISION_KEYS, name)


def _read(file: str) -> pd.DataFrame:
    with files("infphys.catalog").joinpath("data", file).open("rb") as f:
        return pd.read_csv(f)


def _add_keys(df: pd.DataFrame) -> pd.DataFrame:
    df["model_key"] = df["model"].map(measured_model_key)
    df["gpu_key"] = df["gpu"].map(measured_gpu_key)
    df["precision_key"] = df["precision"].map(measured_precision_key)
    return df


@cache
def _nim() -> pd.DataFrame:
    df = _add_keys(_read(NIM_FILE))
    df["tp"] = df["n_gpus"]
    df["measured"] = df["ttft_ms_avg"].notna()
    df["source"] = MEASURED_SOURCES[NIM_FILE]
    return df


@cache
def _static() -> pd.DataFrame:
    df = _add_keys(_read(STATIC_FILE))
    df["measured"] = df["first_token_ms"].notna()
    df["source"] = MEASURED_SOURCES[STATIC_FILE]
    return df


def load_nim_serving() -> pd.DataFrame:
    """NIM serving Llama-3 Instruct: 525 rows, one per (configuration, concurrency) measurement.

    Columns as in the file (``ttft_ms_avg``, ``itl_ms_avg``, ``output_tokens_per_s``, ...) plus
    ``model_key``, ``gpu_key``, ``precision_key``, ``tp`` (= ``n_gpus``, the tensor-parallel size
    of the one NIM instance), ``measured`` (True on every row) and ``source``. The file is read
    once; each call returns a fresh copy, so callers may modify it.
    """
    return _nim().copy()


def load_static_batch() -> pd.DataFrame:
    """TensorRT-LLM 0.9 static batches: 3,449 rows, 2,878 with ``measured`` True.

    Columns as in the file (``first_token_ms``, ``token_to_token_ms``, ``throughput_tok_s``,
    ``gpu_peak_memory_gb``, ...) plus ``model_key``, ``gpu_key``, ``precision_key``,
    ``measured`` (``first_token_ms`` was recorded) and ``source``; ``tp`` is the file's own.
    Rows with no result are kept with empty values. Of the measured rows, 88 hold only
    ``first_token_ms``: filter on ``token_to_token_ms`` as well for decode figures. The file is
    read once; each call returns a fresh copy.
    """
    return _static().copy()
