"""Lab 8 (the concurrency sweep) exercises: Little's Law along a sweep, utilisation, the loops.

Context the lab passes (from the learner's sweep summary, :func:`infphys.stats.summarize`):

- ``concurrency``, ``throughput_req_per_s``: one level of the closed-loop sweep (the knee);
- ``capacity_req_per_s``: the highest throughput the closed loop reached (the plateau);
- ``rate_per_s``: one open-loop (Poisson) rate of the learner's run, below the capacity.

Worked example: at concurrency 16 a server answers 40 requests/s, so each request took
16 / 40 = 0.4 s = 400 ms on average (L = λW). Its plateau is 50 requests/s; Poisson arrivals at
40 requests/s load it to ρ = 0.8, where an M/M/1 queue's mean time in system is
1 / (1 − 0.8) = 5 times its bare service time.
"""

from __future__ import annotations

from infphys.exercises.core import Exercise, Tolerance, concept_exercise
from infphys.physics import littles_law_latency_s, mm1

__all__ = ["Q1_LATENCY_FROM_LITTLE", "Q2_UTILISATION", "Q3_MM1_FACTOR", "Q4_LOOPS"]


def _latency_from_little(concurrency: int, throughput_req_per_s: float) -> float:
    return 1000.0 * littles_law_latency_s(concurrency, throughput_req_per_s)


def _utilisation(rate_per_s: float, capacity_req_per_s: float) -> float:
    if capacity_req_per_s <= 0:
        raise ValueError(f"capacity_req_per_s must be > 0 (got {capacity_req_per_s!r})")
    return rate_per_s / capacity_req_per_s


def _mm1_factor(rate_per_s: float, capacity_req_per_s: float) -> float:
    q = mm1(rate_per_s, capacity_req_per_s)
    return q.mean_response_s * capacity_req_per_s


Q1_LATENCY_FROM_LITTLE = Exercise(
    id="lab08.q1",
    title="Latency from Little's Law",
    prompt=(
        "At concurrency **{concurrency}** your closed loop delivered **{throughput_req_per_s} "
        "requests/s**. What mean end-to-end latency, in ms, does Little's Law imply?"
    ),
    solution=_latency_from_little,
    tolerance=Tolerance(relative=0.03),
    unit="ms",
    hint="W = L / λ; in a closed loop with no think time, L is the concurrency.",
    explanation=(
        "W = L / λ = 16 / 40 requests/s = 0.4 s. The lab's table puts the measured mean "
        "next to it: they agree within a few per cent at every level, because a closed loop "
        "keeps exactly c requests in flight. So throughput and latency are not independent "
        "numbers: at fixed concurrency one determines the other, and the throughput curve "
        "flattens exactly where the latency curve starts to climb."
    ),
)

Q2_UTILISATION = Exercise(
    id="lab08.q2",
    title="Utilisation of an open loop",
    prompt=(
        "Your closed-loop plateau is about **{capacity_req_per_s} requests/s**. Poisson arrivals "
        "at **{rate_per_s} requests/s** load the server to what utilisation ρ (a fraction, e.g. "
        "0.5)?"
    ),
    solution=_utilisation,
    tolerance=Tolerance(relative=0.03),
    hint="ρ = arrival rate / service capacity.",
    explanation=(
        "ρ = λ / capacity = 40 / 50 = 0.8. The plateau of the closed loop stands in for the "
        "service capacity c·μ: it is what the server completes when it is never idle."
    ),
)

Q3_MM1_FACTOR = Exercise(
    id="lab08.q3",
    title="The utilisation trap",
    prompt=(
        "Treat the server as one M/M/1 queue with service rate **{capacity_req_per_s} "
        "requests/s** fed at **{rate_per_s} requests/s**. By what factor does the mean time in "
        "system exceed the bare service time 1/μ?"
    ),
    solution=_mm1_factor,
    tolerance=Tolerance(relative=0.03),
    unit="×",
    hint="M/M/1: W = 1 / (μ − λ); divide by 1/μ.",
    explanation=(
        "W / (1/μ) = μ / (μ − λ) = 1 / (1 − ρ): 5× at ρ = 0.8, 10× at 0.9, 20× at 0.95. A real "
        "batching server is kinder than M/M/1 (it serves many requests at once and its service "
        "time varies little), so the lab's measured open-loop latencies rise less steeply, "
        "but they rise the same way: sharply, long before the server is 'full'."
    ),
)

_LOOPS = (
    "the closed loop waits for each answer before sending more, so it never offers more than "
    "its concurrency; the open loop keeps sending and a queue builds",
    "the open loop sends longer prompts",
    "the closed loop uses more GPUs",
    "Poisson arrivals make every request slower, even when the server is idle",
)


Q4_LOOPS = concept_exercise(
    id="lab08.q4",
    title="Closed loop versus open loop",
    prompt=(
        "Near the plateau, the open loop (Poisson arrivals) shows a much worse p95 than the "
        "closed loop at a similar throughput. Why?"
    ),
    choices=_LOOPS,
    hint="What does each kind of client do when the server slows down?",
    explanation=(
        "A closed-loop client slows down with the server (coordinated omission): the requests "
        "it would have sent while waiting are never sent, so no queue forms beyond c. Real "
        "users arrive whether or not the server is busy, like the open loop; bursts of Poisson "
        "arrivals queue behind each other, and near capacity the queue (and the p95) explodes. "
        "Benchmark with an open loop to see what users will see."
    ),
)
