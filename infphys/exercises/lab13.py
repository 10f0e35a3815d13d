"""Lab 13 (from one GPU to a fleet) exercises: TP measured, Little across a fleet, routers,
prefill replicas.

Context the lab passes:

- ``model``, ``model_name``, ``gpu``, ``gpu_name``, ``concurrency``: where the measured TP1/TP2
  pair is read (q1; NVIDIA's NIM table, 200 → 200 tokens).
- ``replicas``, ``requests_per_s``, ``e2e_mean_s``: the learner's simulated fleet (q2).
- ``rr_ttft_p95_ms``, ``lo_ttft_p95_ms``, ``kv_ttft_p95_ms``, ``sa_ttft_p95_ms``: p95 TTFT of
  round-robin, least-outstanding, least-KV and session-affinity on the same load (q3).
- ``rate_per_s``, ``prefill_ms``: the arrival rate and one prompt's prefill time (q4).

Worked example (q4): 6 requests/s of 4,000-token prompts whose prefill takes 120 ms on an H200
need at least ceil(6 × 0.120) = ceil(0.72) = 1 prefill replica, running 72 % busy.
"""

from __future__ import annotations

import math

from infphys.exercises.core import Exercise, Tolerance
from infphys.nim_planning import tp_gain

__all__ = ["Q1_TP_SPEEDUP", "Q2_LITTLE", "Q3_ROUTER", "Q4_PREFILL", "ROUTER_CHOICES"]


def _tp_speedup(model: str, gpu: str, concurrency: int) -> float:
    t = tp_gain(model, gpu, 200, 200)
    return float(t.loc[t["concurrency"] == concurrency, "speedup"].iloc[0])


Q1_TP_SPEEDUP = Exercise(
    id="lab13.q1",
    title="What a second GPU as TP bought, measured",
    prompt=(
        "NIM, **{model_name}** on **{gpu_name}**, 200 → 200 tokens, **{concurrency}** clients: "
        "the larger TP instance's output tokens/s divided by the smaller one's."
    ),
    solution=_tp_speedup,
    tolerance=Tolerance(relative=0.03),
    unit="×",
    hint="Read both instances' tokens/s at that concurrency from the measured TP table.",
    explanation=(
        "Llama-3-8B on H100 at 100 clients: 6,550 tokens/s on one GPU, 9,157 on two: 1.40×. "
        "At 200 clients TP2 makes 11,365 while two TP1 replicas of 100 clients each make "
        "2 × 6,550 = 13,100: under heavy load replicas win on throughput; TP buys a shorter "
        "step (lower ITL) and room for a model that does not fit one GPU."
    ),
)


def _in_flight_per_replica(replicas: int, requests_per_s: float, e2e_mean_s: float) -> float:
    return requests_per_s * e2e_mean_s / replicas


Q2_LITTLE = Exercise(
    id="lab13.q2",
    title="Little's Law across the fleet",
    prompt=(
        "Your simulated fleet of **{replicas}** replicas completed **{requests_per_s}** "
        "requests/s with a mean end-to-end latency of **{e2e_mean_s} s**. How many requests "
        "were in flight on each replica, on average?"
    ),
    solution=_in_flight_per_replica,
    tolerance=Tolerance(relative=0.03),
    unit="requests",
    hint="L = λ × W holds for the whole fleet; a fair router splits L evenly over the replicas.",
    explanation=(
        "L = λW over the fleet, then divided by the replicas: 14.1 requests/s × 1.38 s = 19.4 "
        "in flight, 4.8 per replica on four. Little's Law needs no model of the router or the "
        "engine: it holds for any stable system, one replica or a thousand."
    ),
)

ROUTER_CHOICES = ("round-robin", "least-outstanding", "least-kv", "session-affinity")


def _best_router(
    rr_ttft_p95_ms: float, lo_ttft_p95_ms: float, kv_ttft_p95_ms: float, sa_ttft_p95_ms: float
) -> str:
    values = (rr_ttft_p95_ms, lo_ttft_p95_ms, kv_ttft_p95_ms, sa_ttft_p95_ms)
    return ROUTER_CHOICES[values.index(min(values))]


Q3_ROUTER = Exercise(
    id="lab13.q3",
    title="Which router had the lowest p95 TTFT?",
    prompt=(
        "Same arrivals, four routers: p95 TTFT **{rr_ttft_p95_ms} ms** (round-robin), "
        "**{lo_ttft_p95_ms} ms** (least-outstanding), **{kv_ttft_p95_ms} ms** (least-KV), "
        "**{sa_ttft_p95_ms} ms** (session-affinity). Which router gave the lowest?"
    ),
    solution=_best_router,
    kind="choice",
    choices=ROUTER_CHOICES,
    hint="Read the p95 column of the router table, not the p50: the tail is where routers differ.",
    explanation=(
        "Under Poisson arrivals with answers of very different lengths, a blind router (round-"
        "robin, or a session hash) sends requests to a replica still busy with long answers "
        "while another has free seats; least-outstanding joins the shortest queue. The p50 "
        "barely moves: routing is a tail-latency decision."
    ),
)


def _prefill_replicas(rate_per_s: float, prefill_ms: float) -> float:
    return float(max(1, math.ceil(round(rate_per_s * prefill_ms / 1e3, 9))))


Q4_PREFILL = Exercise(
    id="lab13.q4",
    title="How many prefill replicas at least?",
    prompt=(
        "Prompts arrive at **{rate_per_s}** per second and one prompt's prefill takes "
        "**{prefill_ms} ms** on one replica. What is the fewest prefill replicas that keeps up "
        "(each below 100 % busy)?"
    ),
    solution=_prefill_replicas,
    tolerance=Tolerance(absolute=0.0),
    unit="replicas",
    hint="Seconds of prefill needed per second = rate × prefill time; round up.",
    explanation=(
        "A prefill replica does 1 / prefill time prompts per second at most; the pool needs "
        "rate × prefill time of them, rounded up: 6/s × 120 ms = 0.72 → 1 replica, 72 % busy, "
        "and its queue (M/M/1: a mean wait of ρ/(1 − ρ) prefills) is what the TTFT pays. "
        "Leave headroom: at 90 % busy the mean wait is nine prefills."
    ),
)
