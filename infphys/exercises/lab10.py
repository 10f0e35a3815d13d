"""Lab 10 (overload and backpressure) exercises: when timeouts start, goodput, retry storms.

Context the lab passes (the learner's settings and overload runs against the simulated server):

- ``max_num_seqs``: most requests the server runs at once; ``service_ms``: the mean end-to-end
  latency of a request when the server runs a full batch (measured at concurrency
  ``max_num_seqs``); ``timeout_s``: the client's per-request timeout;
- ``met``, ``judged``, ``window_s``: at one overload level, requests that met the SLO, requests
  finished (ok or failed), and the measured window;
- ``attempts``, ``user_requests``: HTTP attempts sent and user requests served by the blind
  retry policy.

Worked example: a server that runs 8 requests at once, each for 400 ms, completes 8 / 0.4 = 20
requests/s. A closed loop of c clients then waits W = c / 20 s per request (Little's Law), so
with a 2 s timeout the mean stays under the limit up to c = 2 × 20 = 40 clients. At c = 64,
W = 3.2 s and most requests time out — after holding a slot for 2 s for nothing.
"""

from __future__ import annotations

import math

from infphys.exercises.core import Exercise, Tolerance, concept_exercise
from infphys.physics import littles_law_in_flight, littles_law_throughput_per_s

__all__ = ["Q1_TIMEOUT_CONCURRENCY", "Q2_GOODPUT", "Q3_RETRY_AMPLIFICATION", "Q4_ADMISSION"]


def _timeout_concurrency(max_num_seqs: int, service_ms: float, timeout_s: float) -> float:
    capacity_per_s = littles_law_throughput_per_s(max_num_seqs, service_ms / 1000.0)
    return float(math.floor(littles_law_in_flight(capacity_per_s, timeout_s)))


def _goodput(met: int, window_s: float) -> float:
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0 (got {window_s!r})")
    return met / window_s


def _amplification(attempts: int, user_requests: int) -> float:
    if user_requests <= 0:
        raise ValueError(f"user_requests must be > 0 (got {user_requests!r})")
    return attempts / user_requests


Q1_TIMEOUT_CONCURRENCY = Exercise(
    id="lab10.q1",
    title="Where timeouts begin",
    prompt=(
        "The server runs at most **{max_num_seqs}** requests at once, and at a full batch each "
        "took **{service_ms} ms**. Clients give up after **{timeout_s} s**. Up to how many "
        "closed-loop clients does the mean end-to-end latency stay within the timeout?"
    ),
    solution=_timeout_concurrency,
    tolerance=Tolerance(relative=0.1, absolute=1),
    unit="clients",
    hint=(
        "Capacity = max_num_seqs / service time (requests/s). With c clients, W = c / capacity "
        "(Little's Law). Solve W = timeout for c and round down."
    ),
    explanation=(
        "Capacity = 8 / 0.4 s = 20 requests/s; W = c / 20 ≤ 2 s gives c ≤ 40. Beyond it the "
        "queue in front of the server holds c − 8 requests and the mean wait passes the timeout; "
        "the p95 passes it earlier. Every timed-out request held a place in the queue and "
        "(if the server does not notice the disconnect) GPU time, for nothing: throughput "
        "stays flat while goodput falls."
    ),
)

Q2_GOODPUT = Exercise(
    id="lab10.q2",
    title="Goodput",
    prompt=(
        "At one overload level, **{met}** of **{judged}** finished requests met the SLO during a "
        "measured window of **{window_s} s**. What was the goodput, in requests/s?"
    ),
    solution=_goodput,
    tolerance=Tolerance(relative=0.03),
    unit="requests/s",
    hint="Only requests that succeeded and met the SLO count; divide by the window.",
    explanation=(
        "Goodput = SLO-meeting requests / window (vLLM's --goodput; DistServe's definition "
        "takes the highest rate at which 90 % meet it). Throughput counts every success, "
        "however late: under overload throughput holds at its plateau while goodput collapses, "
        "which is why capacity must be planned against an SLO, not a throughput peak."
    ),
)

Q3_RETRY_AMPLIFICATION = Exercise(
    id="lab10.q3",
    title="Retry amplification",
    prompt=(
        "With blind retries your clients sent **{attempts}** HTTP attempts to serve "
        "**{user_requests}** user requests. By what factor did retries multiply the load on "
        "the server?"
    ),
    solution=_amplification,
    tolerance=Tolerance(relative=0.03),
    unit="×",
    hint="Attempts per user request.",
    explanation=(
        "Attempts / user requests. Retrying at once when the server is overloaded adds load "
        "exactly when there is none to spare: the queue it failed on is still there, so the "
        "retry fails too and retries again (a retry storm). Exponential backoff with jitter "
        "spreads the retries out, gives the queue time to drain, and sends fewer attempts for "
        "more successes."
    ),
)

_ADMISSION = (
    "the accepted requests finish fast, and a refused client learns at once and can back off "
    "or go elsewhere",
    "the server completes more requests per second than without it",
    "no request is ever refused",
    "the GPU runs a larger batch",
)


Q4_ADMISSION = concept_exercise(
    id="lab10.q4",
    title="What admission control buys",
    prompt=(
        "With `--max-queue` set, the overloaded server answered the excess with immediate 503s "
        "instead of letting them time out. What did that buy?"
    ),
    choices=_ADMISSION,
    hint="Compare the p95 of the successful requests and how long a failure took, with and "
    "without the queue cap.",
    explanation=(
        "Admission control does not raise capacity (the plateau is the GPU's); it bounds the "
        "queue, so the requests it accepts wait at most max_queue / capacity and meet their "
        "SLO, and the ones it refuses fail in milliseconds instead of after a timeout. That "
        "fast, explicit signal is what lets clients back off and load balancers route "
        "elsewhere: backpressure."
    ),
)
