"""Lab 4 (FP8) exercises: what halving the bytes buys in memory, users and decode speed.

Context the lab passes (the learner's settings, and the simulator's side-by-side results):

- ``gpu``, ``model``: catalog keys; ``context_tokens``: tokens per user.
- ``itl_ratio``: BF16 ITL ÷ FP8 ITL at low load, from the learner's simulator runs (shown in
  the prompt of q4).

Worked example: Llama-3.1-8B's weights shrink from 16.06 GB in BF16 to 8.03 GB in FP8. On an
H100 SXM with 8,192-token users, FP8 weights and KV raise the users that fit from 50 to 115, and
the batch-1 floor (weights and one sequence's KV at the datasheet bandwidth) falls from
4.80 ms to 2.40 ms.
"""

from __future__ import annotations

from infphys.exercises.core import Exercise, Tolerance, concept_exercise
from infphys.physics import (
    decode_floor_s,
    decode_step_time,
    max_concurrent_sequences,
    weight_bytes,
)

__all__ = [
    "Q1_FP8_WEIGHTS",
    "Q2_FP8_USERS",
    "Q3_FLOOR_SPEEDUP",
    "Q4_WHY_LESS_THAN_2X",
    "fixed_cost_split",
]


def _fp8_weights_gb(model: str) -> float:
    return weight_bytes(model, "fp8") / 1e9


def _fp8_users(gpu: str, model: str, context_tokens: int) -> float:
    return max_concurrent_sequences(
        gpu, model, context_tokens, weights_precision="fp8", kv_precision="fp8"
    )


def _floor_speedup(gpu: str, model: str, context_tokens: int) -> float:
    # The floor: the ideal roofline (datasheet bandwidth, no fixed costs).
    bf16 = decode_floor_s(gpu, model, 1, context_tokens)
    fp8 = decode_floor_s(gpu, model, 1, context_tokens, weights_precision="fp8", kv_precision="fp8")
    return bf16 / fp8


Q1_FP8_WEIGHTS = Exercise(
    id="lab04.q1",
    title="Weights in FP8",
    prompt="How many GB (10^9 bytes) do **{model_name}**'s weights take in FP8?",
    solution=_fp8_weights_gb,
    tolerance=Tolerance(relative=0.02),
    unit="GB",
    hint="FP8 is one byte per parameter; take the parameter count from the model table.",
    explanation=(
        "One byte per parameter: 8.03 GB for Llama-3.1-8B, 70.6 GB for Llama-3.1-70B, which "
        "is what lets a 70B model fit on one 80 GB GPU at all (with little room left for KV)."
    ),
)

Q2_FP8_USERS = Exercise(
    id="lab04.q2",
    title="Users with FP8 weights and KV",
    prompt=(
        "On one **{gpu_name}** with **{model_name}**, FP8 weights and an FP8 KV cache, how many "
        "users of **{context_tokens}** tokens fit (90 % utilization, 2 GiB reserve)?"
    ),
    solution=_fp8_users,
    tolerance=Tolerance(absolute=1),
    unit="users",
    hint=(
        "Redo lab 3's budget with half the weight bytes and half the KV bytes per token; "
        "it more than doubles because the weights' saving goes to KV too."
    ),
    explanation=(
        "Budget = memory × 0.9 − weights(FP8) − 2 GiB, divided by context × KV bytes per token "
        "in FP8. H100 SXM, Llama-3.1-8B, 8,192 tokens: (72 − 8.03 − 2.15) GB / 0.537 GB = 115 "
        "users against 50 in BF16: more than twice, because the weights' saving goes to KV too."
    ),
)

Q3_FLOOR_SPEEDUP = Exercise(
    id="lab04.q3",
    title="Decode floor, BF16 over FP8",
    prompt=(
        "At batch 1 and **{context_tokens}** tokens of context on a **{gpu_name}**, by what factor "
        "is the BF16 decode floor (bytes ÷ datasheet bandwidth) longer than the FP8 one "
        "(weights and KV in FP8)?"
    ),
    solution=_floor_speedup,
    tolerance=Tolerance(relative=0.03),
    unit="×",
    hint="At batch 1 a step reads the weights plus one sequence's KV; both halve in FP8.",
    explanation=(
        "Batch-1 decode is memory-bound, so the step time is bytes read / bandwidth and halving "
        "every byte halves it: the factor is 2 (a little under when the step is not purely "
        "memory-bound). FP8's FLOP/s advantage only shows once the batch reaches the ridge "
        "point."
    ),
)

_WHY_LESS = (
    "a fixed cost per engine step that no number format shrinks",
    "FP8 arithmetic is slower than BF16 arithmetic",
    "the KV cache grows when it is stored in FP8",
    "decode at batch 1 is compute-bound",
)


def fixed_cost_split(
    gpu: str = "h100", model: str = "llama-3.1-8b", context_tokens: int = 8192
) -> dict[str, float]:
    """A batch-1 decode step in BF16 and in FP8, split into the byte-bound part and fixed costs.

    Seconds, from the fitted step model (:func:`infphys.physics.decode_step_time`): keys
    ``bf16_bytes_s``, ``bf16_fixed_s``, ``fp8_bytes_s``, ``fp8_fixed_s`` and ``speedup``
    (BF16 step ÷ FP8 step). The fixed part (per step, per layer, per sequence) is the same in
    both formats; only the rest shrinks.
    """
    bf16 = decode_step_time(gpu, model, 1, context_tokens)
    fp8 = decode_step_time(
        gpu, model, 1, context_tokens, weights_precision="fp8", kv_precision="fp8"
    )
    return {
        "bf16_bytes_s": bf16.total_s - bf16.overhead_s,
        "bf16_fixed_s": bf16.overhead_s,
        "fp8_bytes_s": fp8.total_s - fp8.overhead_s,
        "fp8_fixed_s": fp8.overhead_s,
        "speedup": bf16.total_s / fp8.total_s,
    }


def _why_less_explanation() -> str:
    f = fixed_cost_split()
    ms = {k: v * 1e3 for k, v in f.items() if k.endswith("_s")}
    return (
        "A step costs its bytes / bandwidth plus a fixed part (kernel launches, scheduling, "
        "sampling) that no number format shrinks. In the simulator's fitted step model, "
        "Llama-3.1-8B at batch 1 with 8,192 tokens of context on an H100: "
        f"{ms['bf16_bytes_s']:.2f} ms + {ms['bf16_fixed_s']:.2f} ms in BF16 becomes "
        f"{ms['fp8_bytes_s']:.2f} ms + {ms['fp8_fixed_s']:.2f} ms in FP8, a "
        f"{f['speedup']:.2f}× gain (the byte part itself shrinks "
        f"{f['bf16_bytes_s'] / f['fp8_bytes_s']:.2f}×: FP8's small-batch kernels stream a "
        "different share of the bandwidth than BF16's). Batch-1 decode is "
        "memory-bound, not compute-bound, and FP8 tensor cores are twice as fast as BF16 ones, "
        "not slower."
    )


Q4_WHY_LESS_THAN_2X = concept_exercise(
    id="lab04.q4",
    title="Why not 2× faster?",
    prompt=(
        "FP8 halves every byte a batch-1 decode step reads, yet on the simulator the ITL at low "
        "load improved only about **{itl_ratio}×**. Why less than 2×?"
    ),
    choices=_WHY_LESS,
    hint="Which part of a step's time does not depend on how many bytes are read?",
    explanation=_why_less_explanation(),
)
