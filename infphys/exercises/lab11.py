"""Lab 11 (tuning and capacity planning) exercises: the SLO cap, GPUs for N users, which knob.

Context the lab passes (the learner's settings and virtual-time sweeps):

- ``concurrency``, ``e2e_p95_s``: the baseline sweep's levels and their p95 end-to-end latency
  (lists of equal length); ``slo_p95_s``: the learner's p95 objective;
- ``users``: concurrent users to plan for; ``cap_concurrency``: the SLO cap found by the lab;
  ``tp``: GPUs per replica;
- ``kv_capacity_tokens``, ``block_tokens``, ``max_num_seqs``, ``prompt_tokens``,
  ``max_tokens``: the engine's KV cache and batch limit, and the request shape.

Worked example: p95 is 1.2, 1.3, 1.6, 2.4 and 4.9 s at concurrency 8, 16, 32, 64 and 128; with a
p95 objective of 2.5 s the cap is 64 users per replica, and 1,000 users need ceil(1000 / 64) =
16 replicas, 16 GPUs at tp = 1. A KV cache of 829,360 tokens holds 829,360 / 16 = 51,835 blocks;
a request of 1,000 + 1,000 tokens needs 2,000 / 16 = 125 of them, so 414 fit — more than
max_num_seqs = 256: the batch limit binds first, not the memory.
"""

from __future__ import annotations

from infphys.exercises.core import Exercise, Tolerance, concept_exercise
from infphys.planning import gpus_needed, kv_limited_concurrency, slo_cap

__all__ = ["Q1_SLO_CAP", "Q2_GPUS_FOR_USERS", "Q3_WHICH_LIMIT_BINDS", "Q4_WHICH_KNOB"]


def _slo_cap(concurrency: list[float], e2e_p95_s: list[float], slo_p95_s: float) -> float:
    cap = slo_cap(concurrency, e2e_p95_s, slo_p95_s)
    return 0.0 if cap is None else float(cap)


def _gpus(users: int, cap_concurrency: int, tp: int = 1) -> float:
    return float(gpus_needed(users, cap_concurrency, gpus_per_replica=tp))


def _concurrency_limit(
    kv_capacity_tokens: int,
    prompt_tokens: int,
    max_tokens: int,
    max_num_seqs: int,
    block_tokens: int = 16,
) -> float:
    kv_limit = kv_limited_concurrency(
        kv_capacity_tokens, prompt_tokens + max_tokens, block_tokens=block_tokens
    )
    return float(min(kv_limit, max_num_seqs))


Q1_SLO_CAP = Exercise(
    id="lab11.q1",
    title="The concurrency cap for an SLO",
    prompt=(
        "Your p95 objective is **{slo_p95_s} s** end to end. Reading your baseline sweep, what "
        "is the highest concurrency at which the p95 (and the p95 of every level below it) "
        "stays within it? (0 if none does.)"
    ),
    solution=_slo_cap,
    tolerance=Tolerance(absolute=0.5),
    unit="requests",
    hint="Walk up the sweep from the lowest concurrency; stop before the first level over the SLO.",
    explanation=(
        "The cap is a level of the sweep, read off the p95 curve where it crosses the "
        "objective: 64 in the worked example (p95 2.4 s ≤ 2.5 s; 128 gives 4.9 s). It is the "
        "number to configure as the gateway's concurrency limit per replica (or max_num_seqs "
        "plus a small queue), and the 'users per GPU' of the capacity plan. A finer sweep "
        "between the last level in and the first level out would move it up a little."
    ),
)

Q2_GPUS_FOR_USERS = Exercise(
    id="lab11.q2",
    title="GPUs for N users",
    prompt=(
        "Each replica ({tp} GPU(s), tensor parallel) can hold **{cap_concurrency}** concurrent "
        "users within the SLO. How many GPUs do **{users}** concurrent users need?"
    ),
    solution=_gpus,
    tolerance=Tolerance(absolute=0.5),
    unit="GPUs",
    hint="Replicas = users / users per replica, rounded up; GPUs = replicas × GPUs per replica.",
    explanation=(
        "ceil(1000 / 64) = 16 replicas × 1 GPU = 16 GPUs. Round up: a fraction of a replica "
        "does not exist, and the last replica must still meet the SLO. Add headroom for "
        "failures and bursts (N + 1), and remember the users here are concurrent users with "
        "requests in flight, not registered users (Little's Law converts a request rate into "
        "them)."
    ),
)

Q3_WHICH_LIMIT_BINDS = Exercise(
    id="lab11.q3",
    title="Which limit binds first",
    prompt=(
        "The KV cache holds **{kv_capacity_tokens}** tokens in blocks of {block_tokens}; each "
        "request needs up to {prompt_tokens} + {max_tokens} tokens; max_num_seqs is "
        "**{max_num_seqs}**. How many requests can run at once before new ones must wait?"
    ),
    solution=_concurrency_limit,
    tolerance=Tolerance(relative=0.02, absolute=1),
    unit="requests",
    hint=(
        "Blocks per request = ceil((prompt + max_tokens) / block size); the KV limit is "
        "capacity in blocks / that. The smaller of the KV limit and max_num_seqs wins."
    ),
    explanation=(
        "min(max_num_seqs, KV blocks / blocks per request): 51,835 / 125 = 414 requests fit in "
        "memory, but max_num_seqs = 256 stops admission first. When the KV limit is the smaller "
        "one, raising max_num_seqs does nothing and more requests even get preempted; FP8 KV, a "
        "higher gpu_memory_utilization, FP8 weights or more GPUs (tp) raise it instead."
    ),
)

_KNOBS = (
    "raise max_num_seqs",
    "switch the KV cache to FP8",
    "raise gpu_memory_utilization",
    "raise max_num_batched_tokens",
)


Q4_WHICH_KNOB = concept_exercise(
    id="lab11.q4",
    title="Which knob moves the knee",
    prompt=(
        "Under load, requests wait in the queue while the server's KV-cache usage stays at "
        "20 %, the running count sits exactly at max_num_seqs, and decode steps are far from "
        "compute-bound. Which knob moves the knee to the right?"
    ),
    choices=_KNOBS,
    hint="Which limit is the scheduler hitting? Memory is mostly free.",
    explanation=(
        "The running count pinned at max_num_seqs with free KV memory means the batch limit "
        "binds: raise max_num_seqs (the lab's knob table shows the knee moving with it). FP8 "
        "KV and gpu_memory_utilization add KV memory nobody is short of; "
        "max_num_batched_tokens changes how much prefill fits in a step (TTFT under load), "
        "not how many sequences decode together."
    ),
)
