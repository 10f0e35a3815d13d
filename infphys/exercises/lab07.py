"""Lab 7 (Little's Law and the baseline) exercises: what one user at a time tells you.

Context the lab passes (the learner's baseline run at concurrency 1, from
:func:`infphys.stats.summarize`; milliseconds for display, seconds where the name says so):

- ``e2e_mean_ms``, ``ttft_mean_ms``, ``tpot_mean_ms``: mean end-to-end latency, time to first
  token and time per output token after the first, of the successful measured requests;
- ``output_tokens``: completion tokens per request (the run's ``max_tokens``, as the simulator
  and ``ignore_eos`` benchmarks produce exactly that many);
- ``target_req_per_s``: a request rate the lab asks the learner to plan for.

Worked example: a baseline with TTFT 40 ms, TPOT 8 ms and 32 output tokens lasts
40 + 31 × 8 = 288 ms end to end. One user at a time can then get at most 1 / 0.288 s = 3.47
requests/s through (Little's Law with L = 1); serving 20 requests/s at the same latency needs
L = λW = 20 × 0.288 = 5.76 requests in flight.
"""

from __future__ import annotations

from infphys.exercises.core import Exercise, Tolerance, concept_exercise
from infphys.physics import (
    littles_law_in_flight,
    littles_law_throughput_per_s,
    request_latency_s,
)

__all__ = ["Q1_THROUGHPUT_AT_ONE", "Q2_E2E_FROM_PARTS", "Q3_IN_FLIGHT_NEEDED", "Q4_ASSUMPTION"]


def _throughput_at_one(e2e_mean_ms: float) -> float:
    return littles_law_throughput_per_s(1, e2e_mean_ms / 1000.0)


def _e2e_from_parts(ttft_mean_ms: float, tpot_mean_ms: float, output_tokens: int) -> float:
    if output_tokens < 1:
        raise ValueError(f"output_tokens must be >= 1 (got {output_tokens!r})")
    return request_latency_s(ttft_mean_ms, tpot_mean_ms, output_tokens)  # ms in, ms out


def _in_flight_needed(target_req_per_s: float, e2e_mean_ms: float) -> float:
    return littles_law_in_flight(target_req_per_s, e2e_mean_ms / 1000.0)


Q1_THROUGHPUT_AT_ONE = Exercise(
    id="lab07.q1",
    title="Throughput of one user",
    prompt=(
        "At concurrency 1 your requests took **W = {e2e_mean_ms} ms** on average, one after "
        "another. What throughput, in requests/s, does Little's Law (L = λW, with L = 1) "
        "predict?"
    ),
    solution=_throughput_at_one,
    tolerance=Tolerance(relative=0.03),
    unit="requests/s",
    hint="λ = L / W with L = 1 request in flight; convert W to seconds first.",
    explanation=(
        "λ = 1 / W. With W = 288 ms a single user gets 3.47 requests/s through, whatever the "
        "GPU could do with more requests in flight: at concurrency 1 the server idles between "
        "a request's last token and the next request's arrival, and every step serves a batch "
        "of one. The measured throughput in the lab's table agrees within a few per cent (the "
        "gap is the client's own time between requests)."
    ),
)

Q2_E2E_FROM_PARTS = Exercise(
    id="lab07.q2",
    title="End-to-end from its parts",
    prompt=(
        "Your baseline's mean TTFT was **{ttft_mean_ms} ms** and its mean TPOT **{tpot_mean_ms} "
        "ms**, with **{output_tokens}** output tokens per request. Predict the mean end-to-end "
        "latency in ms."
    ),
    solution=_e2e_from_parts,
    tolerance=Tolerance(relative=0.03),
    unit="ms",
    hint="The first token arrives after the TTFT; each of the remaining N − 1 tokens costs a TPOT.",
    explanation=(
        "e2e = TTFT + (N − 1) × TPOT: 40 + 31 × 8 = 288 ms. This identity is what makes NVIDIA's "
        "published NIM tables self-consistent (c × N / throughput ≈ TTFT + (N − 1) × ITL): the "
        "prefill (prompt) sets the TTFT, the decode steps (output) set the rest."
    ),
)

Q3_IN_FLIGHT_NEEDED = Exercise(
    id="lab07.q3",
    title="Concurrency needed for a target rate",
    prompt=(
        "You must serve **{target_req_per_s} requests/s**. If each request kept your baseline "
        "latency of **{e2e_mean_ms} ms**, how many requests would have to be in flight at once "
        "on average?"
    ),
    solution=_in_flight_needed,
    tolerance=Tolerance(relative=0.03),
    unit="requests",
    hint="L = λ × W, with W in seconds.",
    explanation=(
        "L = λW: 20 requests/s × 0.288 s = 5.76 requests in flight. This is the concurrency a "
        "load test must reach to offer that rate, and the batch the server must hold. In lab 8 "
        "you will see that W does not stay at its baseline as L grows: each decode step reads "
        "more KV cache, so the real L needed is somewhat higher."
    ),
)

_ASSUMPTIONS = (
    "the system is stable over the window: as many requests finish as arrive",
    "arrivals are Poisson",
    "service times are exponential",
    "there is a single server handling one request at a time",
)


Q4_ASSUMPTION = concept_exercise(
    id="lab07.q4",
    title="What Little's Law needs",
    prompt="Which assumption does Little's Law (L = λW) rely on?",
    choices=_ASSUMPTIONS,
    hint="The law holds for M/M/1, M/D/1 and a GPU batching 200 requests alike.",
    explanation=(
        "Only stability (long-run arrivals = departures, and a window long enough that the "
        "requests in flight at its edges do not matter). It needs no distribution and no "
        "particular number of servers or scheduling order: it is an accounting identity "
        "(the area under 'requests in flight' counted two ways). That is why it is the first "
        "check of any benchmark: if L ≠ λW, the load was not steady or the clocks disagree."
    ),
)
