"""Lab 2 (know your metal) exercises: the weight-read floor, the ridge point, copy bandwidth.

Context the lab passes:

- ``gpu``, ``model``: catalog keys the learner chose (or the GPU the engine check found).
- ``copy_bytes``, ``copy_s``: size of one device-to-device copy and its time, from the learner's
  copy benchmark (or, without a GPU, the simulated GPU's expected copy).

Worked example: Llama-3.1-8B's 16.06 GB of BF16 weights on an H100 SXM (3.35 TB/s) take at
least 16.06 / 3.35 = 4.79 ms to read, so no batch-1 decode step is faster; the H100's BF16 ridge
point is 989 / 3.35 ≈ 295 FLOP per byte.
"""

from __future__ import annotations

from infphys.catalog import get_gpu
from infphys.exercises.core import Exercise, Tolerance
from infphys.physics import ridge_point, weight_bytes

__all__ = ["Q1_WEIGHT_FLOOR", "Q2_RIDGE", "Q3_COPY_BANDWIDTH"]


def _weight_floor_ms(gpu: str, model: str) -> float:
    return weight_bytes(model) / get_gpu(gpu).bandwidth_bytes_per_s * 1e3


def _ridge(gpu: str) -> float:
    return ridge_point(gpu)


def _copy_gb_per_s(copy_bytes: float, copy_s: float) -> float:
    if copy_s <= 0:
        raise ValueError("copy_s must be > 0")
    return 2 * copy_bytes / copy_s / 1e9


Q1_WEIGHT_FLOOR = Exercise(
    id="lab02.q1",
    title="The weight-read floor",
    prompt=(
        "Every decode step reads all of **{model_name}**'s weights (BF16). On a **{gpu_name}** "
        "at its datasheet bandwidth, what is the shortest possible decode step, in ms?"
    ),
    solution=_weight_floor_ms,
    tolerance=Tolerance(relative=0.03),
    unit="ms",
    hint="Weights in bytes (parameters × 2 in BF16) divided by the bandwidth in bytes/s.",
    explanation=(
        "Weight bytes / bandwidth. Llama-3.1-8B on an H100 SXM: 16.06 GB / 3.35 TB/s = 4.79 ms, "
        "so one user can never see more than about 209 tokens/s, however fast the FLOPs are."
    ),
)

Q2_RIDGE = Exercise(
    id="lab02.q2",
    title="The ridge point",
    prompt=(
        "How many BF16 FLOPs must a kernel do per byte it reads before a **{gpu_name}** becomes "
        "compute-bound (its ridge point, datasheet figures)?"
    ),
    solution=_ridge,
    tolerance=Tolerance(relative=0.03),
    unit="FLOP/byte",
    hint="Dense BF16 FLOP/s divided by memory bandwidth in bytes/s (take both from the table).",
    explanation=(
        f"Peak FLOP/s ÷ bytes/s: {get_gpu('h100').bf16_flops_per_s / 1e12:.0f} TFLOP/s / "
        f"{get_gpu('h100').bandwidth_bytes_per_s / 1e12:.2f} TB/s ≈ {_ridge('h100'):.0f} on an "
        f"H100 SXM, {_ridge('h200'):.0f} on an H200. Decode does 2 FLOPs per weight per sequence "
        "in the batch, and a BF16 weight is 2 bytes: 1 FLOP per weight byte per sequence. So a "
        "weight-bound step stays memory-bound until the batch is in the hundreds."
    ),
)

Q3_COPY_BANDWIDTH = Exercise(
    id="lab02.q3",
    title="Copy bandwidth, bytes counted both ways",
    prompt=(
        "Your device-to-device copy moved a buffer of **{copy_bytes}** bytes in **{copy_s} s**. "
        "What bandwidth is that in GB/s if, like NVIDIA's benchmarks, you count the bytes read "
        "**and** the bytes written?"
    ),
    solution=_copy_gb_per_s,
    tolerance=Tolerance(relative=0.02),
    unit="GB/s",
    hint="A copy reads every byte once and writes it once; GB means 10^9 bytes.",
    explanation=(
        "2 × size / time. Counting only the buffer size gives half the figure; datasheet "
        "bandwidth counts both directions of traffic, and a good copy reaches about 80–90 % "
        "of it."
    ),
)
