"""Lab 3 (the KV-cache cliff) exercises: bytes per token, how many users fit, the naive error.

Context the lab passes (the learner's calculator settings):

- ``model``: a catalog key, or the fields of a :class:`~infphys.catalog.ModelSpec` as a dict
  (``dataclasses.asdict(spec)``) when the learner edited the preset's shape;
  ``kv_precision``, ``weights_precision``: ``bf16``, ``fp8``, …
- ``gpu``: catalog key; ``context_tokens``: tokens per user (prompt + output).
- ``model_name``, ``gpu_name``: display names for the prompts.

Worked example: Llama-3.1-8B caches 2 × 32 layers × 8 KV heads × 128 × 2 bytes = 131,072 bytes
per token in BF16; an 8,192-token user holds 1 GiB, and an H200 (141 GB, 90 % usable, 2 GiB
reserve) holds 101 of them. The naive 2 × layers × hidden × bytes claims 4× as much per token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infphys.catalog import ModelSpec, get_model
from infphys.exercises.core import Exercise, Tolerance, concept_exercise
from infphys.physics import kv_bytes_per_token, kv_bytes_per_token_naive, max_concurrent_sequences

__all__ = [
    "Q1_KV_PER_TOKEN",
    "Q2_MAX_USERS",
    "Q3_NAIVE_FACTOR",
    "Q4_WHAT_RAN_OUT",
    "model_from_context",
]


ModelContext = str | Mapping[str, Any]


def model_from_context(model: ModelContext) -> ModelSpec:
    """The model an exercise context names: a catalog key or a dict of ModelSpec fields.

    >>> model_from_context("llama-3.1-8b").layers
    32
    >>> import dataclasses
    >>> model_from_context({**dataclasses.asdict(get_model("llama-3.1-8b")), "layers": 16}).layers
    16
    """
    if isinstance(model, Mapping):
        try:
            return ModelSpec(**model)
        except TypeError as exc:
            raise ValueError(f"model: not a ModelSpec's fields ({exc})") from None
    return get_model(model)


def _kv_per_token(model: ModelContext, kv_precision: str = "bf16") -> float:
    return kv_bytes_per_token(model_from_context(model), kv_precision)


def _max_users(
    gpu: str,
    model: ModelContext,
    context_tokens: int,
    weights_precision: str = "bf16",
    kv_precision: str = "bf16",
) -> float:
    return max_concurrent_sequences(
        gpu,
        model_from_context(model),
        context_tokens,
        weights_precision=weights_precision,
        kv_precision=kv_precision,
    )


def _naive_factor(model: ModelContext) -> float:
    spec = model_from_context(model)
    return kv_bytes_per_token_naive(spec) / kv_bytes_per_token(spec)


Q1_KV_PER_TOKEN = Exercise(
    id="lab03.q1",
    title="KV bytes per token",
    prompt=(
        "How many bytes of KV cache does one token of **{model_name}** add, with the cache in "
        "**{kv_precision}**?"
    ),
    solution=_kv_per_token,
    tolerance=Tolerance(relative=0.01),
    unit="bytes",
    hint="2 (K and V) × layers × KV heads × head dim × bytes per element. KV heads, not heads.",
    explanation=(
        "2 × layers × KV heads × head dim × bytes: Llama-3.1-8B in BF16 is 2 × 32 × 8 × 128 × 2 "
        "= 131,072 bytes (128 KiB). MLA models (DeepSeek-V3) cache one latent of "
        "kv_lora_rank + qk_rope_head_dim per layer instead: (512 + 64) × 61 × 2 = 70,272."
    ),
)

Q2_MAX_USERS = Exercise(
    id="lab03.q2",
    title="How many users fit",
    prompt=(
        "On one **{gpu_name}** serving **{model_name}** (weights {weights_precision}, KV "
        "{kv_precision}), with vLLM's default 90 % memory utilization and a 2 GiB activation "
        "reserve, how many users of **{context_tokens}** tokens each fit in the KV cache at "
        "once?"
    ),
    solution=_max_users,
    tolerance=Tolerance(absolute=1),
    unit="users",
    hint=(
        "KV budget = memory × 0.9 − weights − 2 GiB; one user holds context × KV bytes per "
        "token. Round down."
    ),
    explanation=(
        "H200, Llama-3.1-8B, BF16, 8,192 tokens: 141 GB × 0.9 − 16.06 GB − 2.15 GB = 108.7 GB; "
        "one user holds 8,192 × 131,072 B = 1.074 GB, so 101 users. Double the context and "
        "the count halves: concurrency is bought with context."
    ),
)

Q3_NAIVE_FACTOR = Exercise(
    id="lab03.q3",
    title="How wrong is the quick formula?",
    prompt=(
        "Many quick calculators use 2 × layers × **hidden** × bytes per token. By what factor "
        "does that overstate **{model_name}**'s KV cache?"
    ),
    solution=_naive_factor,
    tolerance=Tolerance(relative=0.02),
    unit="×",
    hint="Compare hidden with KV heads × head dim (or with the MLA latent width) for your model.",
    explanation=(
        "hidden / (KV heads × head dim) for GQA: 4096 / (8 × 128) = "
        f"{_naive_factor('llama-3.1-8b'):.0f} for Llama-3.1-8B, "
        f"{_naive_factor('llama-3.1-70b'):.0f} for Llama-3.1-70B; "
        f"{_naive_factor('deepseek-v3'):.1f} for DeepSeek-V3's MLA. A calculator that ignores GQA "
        "tells you a 70B model fits a quarter or an eighth of the users it really does."
    ),
)

_RAN_OUT = (
    "KV-cache memory",
    "compute (FLOP/s)",
    "memory bandwidth",
    "the HTTP server",
)


Q4_WHAT_RAN_OUT = concept_exercise(
    id="lab03.q4",
    title="What ran out at the wall?",
    prompt=(
        "In the simulator sweep, requests start waiting and being preempted at about the "
        "concurrency the calculator predicted. What ran out?"
    ),
    choices=_RAN_OUT,
    hint="Look at what the calculator computed: it knows nothing about FLOPs or HTTP.",
    explanation=(
        "KV-cache memory. When the running sequences' KV blocks fill the cache, the scheduler "
        "cannot admit new sequences (they wait) and must evict running ones to let others grow "
        "(preemption, recomputed later). Bandwidth sets how fast each step is, not how many "
        "sequences fit."
    ),
)
