"""Lab 5 (throughput) exercises: tokens/s from ``usage``, sequential versus concurrent.

Context the lab passes (the learner's two runs of N requests, on the simulator or a server):

- ``sequential_tokens_per_s``, ``concurrent_tokens_per_s``: completion tokens (from ``usage``)
  divided by each run's wall time.
- ``latency_sum_s``: the sum of the concurrent run's end-to-end latencies; ``wall_s``: its wall
  time.

Worked example: 16 requests of 128 tokens run one after another in 16 × 1.3 s = 20.8 s
(98 tokens/s); at concurrency 16 they finish in 1.6 s (1,280 tokens/s), 13× more. Summing the
concurrent run's latencies (16 × 1.6 s = 25.6 s) and dividing the tokens by it understates its
throughput 16×: the factor is the average number of requests in flight (Little's Law).
"""

from __future__ import annotations

from infphys.exercises.core import Exercise, Tolerance, concept_exercise

__all__ = ["Q1_SPEEDUP", "Q2_SUMMED_LATENCY", "Q3_WHY"]


def _speedup(sequential_tokens_per_s: float, concurrent_tokens_per_s: float) -> float:
    if sequential_tokens_per_s <= 0:
        raise ValueError("sequential_tokens_per_s must be > 0")
    return concurrent_tokens_per_s / sequential_tokens_per_s


def _understatement(latency_sum_s: float, wall_s: float) -> float:
    if wall_s <= 0:
        raise ValueError("wall_s must be > 0")
    return latency_sum_s / wall_s


Q1_SPEEDUP = Exercise(
    id="lab05.q1",
    title="Concurrency speed-up",
    prompt=(
        "Your sequential run made **{sequential_tokens_per_s}** tokens/s and your concurrent "
        "run **{concurrent_tokens_per_s}** tokens/s. How many times more throughput did "
        "concurrency give?"
    ),
    solution=_speedup,
    tolerance=Tolerance(relative=0.03),
    unit="×",
    hint="Divide the concurrent run's tokens/s by the sequential run's.",
    explanation=(
        "A memory-bound decode step reads the weights once for the whole batch, so N concurrent "
        "streams cost little more per step than one: throughput grows almost N× until the batch "
        "nears the ridge point or the KV cache fills."
    ),
)

Q2_SUMMED_LATENCY = Exercise(
    id="lab05.q2",
    title="Why summed latencies are not throughput",
    prompt=(
        "The concurrent run's end-to-end latencies add up to **{latency_sum_s} s**, but it took "
        "**{wall_s} s** of wall time. If you divided its tokens by the summed latencies, by what "
        "factor would you understate its throughput?"
    ),
    solution=_understatement,
    tolerance=Tolerance(relative=0.03),
    unit="×",
    hint="tokens / Σlatency versus tokens / wall time: the tokens cancel.",
    explanation=(
        "Σlatency / wall: the time-averaged number of requests in flight (Little's Law, "
        "L = λW). Latencies overlap when requests run together, so summing them counts the "
        "same second of GPU time many times."
    ),
)

_WHY = (
    "the weights are read once per step for the whole batch",
    "each request gets its own copy of the weights",
    "the GPU's clock speeds up under load",
    "the HTTP server batches responses into one",
)


Q3_WHY = concept_exercise(
    id="lab05.q3",
    title="Where the extra throughput comes from",
    prompt="Why does serving requests concurrently raise tokens/s so much on a GPU?",
    choices=_WHY,
    hint="Remember lab 2: what dominates the bytes a decode step reads at small batch?",
    explanation=(
        "Decode at small batch is bound by reading the weights (lab 2's floor). One step "
        "produces one token for every sequence in the batch at nearly the same cost, so batching "
        "amortises the weight read."
    ),
)
