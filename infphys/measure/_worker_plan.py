"""Who sends what when a run is split over worker processes (:mod:`infphys.measure._workers`).

Pure planning, no I/O: the seeds of the workers, how a closed loop's concurrency is split, and how
an open loop's rate and global count are shared out by replaying each worker's seeded arrival
stream. The worker processes call :func:`phase_s` with the same ``random.Random`` the plan replayed,
so plan and sends agree to the request.

Worked example: ``split_concurrency(10, 4)`` is [3, 3, 2, 2], so a closed level of concurrency 10
over 4 workers runs 3, 3, 2 and 2 loops, drawing request numbers in batches of 3, 3, 2 and 2; an
open level of 8,000 requests/s over 4 workers runs four streams of 2,000 requests/s.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from infphys.measure._levels import Level
from infphys.measure.client import ChatClient, HttpStack, Timeouts
from infphys.measure.prompts import PromptSource
from infphys.measure.target import Target

__all__ = [
    "Share",
    "WorkerOptions",
    "level_seed",
    "phase_s",
    "plan_closed",
    "plan_levels",
    "plan_open",
    "split_concurrency",
    "ticket_batch",
    "worker_seed",
]


# -- the plan: who sends what ----------------------------------------------------------------


def worker_seed(seed: int, index: int) -> int:
    """The seed of worker ``index`` in a run seeded ``seed`` (a 63-bit integer).

    Drawn from ``random.Random`` seeded with the text ``"infphys-worker:{seed}:{index}"``
    (string seeds hash with SHA-512, the same in every process and Python 3 version), so workers'
    streams are independent and a run is reproduced from its seed alone.
    """
    return random.Random(f"infphys-worker:{seed}:{index}").getrandbits(63)


def level_seed(worker_seed_: int, level: int) -> int:
    """The seed of one worker's arrival stream in level ``level``."""
    return worker_seed_ * 1_000_003 + level


def split_concurrency(total: int, workers: int) -> list[int]:
    """``total`` split over ``workers``: ``total // workers`` each, one more for the first
    ``total % workers``. Example: 10 over 4 is [3, 3, 2, 2]."""
    base, extra = divmod(total, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


@dataclass(frozen=True, slots=True)
class Share:
    """One worker's part of one level.

    Attributes:
        level: the level this worker runs (its concurrency or rate, its counts).
        rng_seed: seeds the worker's arrival stream (open loop).
        max_in_flight: the worker's share of the run's ``max_in_flight``.
        all_warmup: every request of the share is a warm-up request (a share of warm-ups only;
            ``Level`` needs at least one measured request, so they are flagged afterwards).
    """

    level: Level
    rng_seed: int = 0
    max_in_flight: int = 10_000
    all_warmup: bool = False


def _share_level(lv: Level, requests: int, warmup: int, **load: Any) -> tuple[Level, bool] | None:
    if requests + warmup == 0:
        return None
    all_warmup = requests == 0
    if all_warmup:
        requests, warmup = warmup, 0
    return (
        Level(
            requests=requests,
            warmup=warmup,
            arrival=lv.arrival,
            prompt_tokens=lv.prompt_tokens,
            max_tokens=lv.max_tokens,
            labels=lv.labels,
            **load,
        ),
        all_warmup,
    )


def plan_closed(lv: Level, workers: int) -> list[Share | None]:
    """Each worker's share of a closed-loop level (None: the worker sits this level out).

    Worker i runs ``split_concurrency(C, N)[i]`` loops; the level's request numbers (warm-ups
    first) stay in one pool that the coordinator hands out in small batches as the workers ask
    (:func:`ticket_batch`), so every worker keeps its loops busy until the pool is empty, as one
    process would.
    """
    assert lv.concurrency is not None
    return [
        Share(
            Level(
                requests=lv.requests,
                concurrency=c,
                warmup=lv.warmup,
                prompt_tokens=lv.prompt_tokens,
                max_tokens=lv.max_tokens,
                labels=lv.labels,
            )
        )
        if c
        else None
        for c in split_concurrency(lv.concurrency, workers)
    ]


def ticket_batch(concurrency: int) -> int:
    """How many request numbers a worker of ``concurrency`` loops gets at a time: as many as it
    has loops, so it holds at most two batches (it asks for the next while it still has one),
    and at the end of a level the workers finish within about one request of each other."""
    return max(1, concurrency)


def phase_s(
    rng: random.Random,
    arrival: Literal["poisson", "constant"],
    rate_per_s: float,
    index: int,
    workers: int,
) -> float:
    """When worker ``index``'s first request goes, after the level's start, seconds.

    Worker 0 sends at the start; with Poisson arrivals the others wait one gap drawn from
    ``rng`` (their own rate ``rate_per_s`` = λ/N); with constant gaps worker i waits i/λ. Both
    the coordinator's plan and the worker call this, so they draw the same numbers.
    """
    if index == 0:
        return 0.0
    if arrival == "poisson":
        return rng.expovariate(rate_per_s)
    return index / (rate_per_s * workers)


def plan_open(
    lv: Level, workers: int, seeds: Sequence[int], level: int, max_in_flight: int
) -> list[Share | None]:
    """Each worker's share of an open-loop level, keeping the global count exactly.

    Replays every worker's seeded stream (rate λ/N, :func:`phase_s`, then the gaps the worker's
    :class:`~infphys.measure._levels.LevelDriver` will draw), merges them in time order and gives
    each worker its arrivals among the first ``warmup + requests``; the first ``warmup`` merged
    arrivals are the warm-up requests.
    """
    assert lv.rate_per_s is not None
    rate = lv.rate_per_s / workers
    rngs = [random.Random(level_seed(s, level)) for s in seeds]
    heap = [(phase_s(rngs[i], lv.arrival, rate, i, workers), i) for i in range(workers)]
    heapq.heapify(heap)
    counts, warm = [0] * workers, [0] * workers
    for k in range(lv.total_requests):
        t, i = heapq.heappop(heap)
        counts[i] += 1
        if k < lv.warmup:
            warm[i] += 1
        gap = rngs[i].expovariate(rate) if lv.arrival == "poisson" else 1.0 / rate
        heapq.heappush(heap, (t + gap, i))
    caps = split_concurrency(max_in_flight, workers)
    shares: list[Share | None] = []
    for i in range(workers):
        part = _share_level(lv, counts[i] - warm[i], warm[i], rate_per_s=rate)
        shares.append(
            None
            if part is None
            else Share(part[0], level_seed(seeds[i], level), max(1, caps[i]), part[1])
        )
    return shares


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """A run's sending settings: what every worker needs to send its share (picklable: it
    crosses to a new process). A one-process run is one worker of these."""

    target: Target
    levels: tuple[Level, ...]
    prompts: PromptSource
    synthetic_prompts: bool
    timeouts: Timeouts
    duration_s: float
    drain_s: float
    max_in_flight: int
    seed: int
    stream: bool
    include_usage: bool
    extra_body: dict[str, Any]
    http_stack: HttpStack
    workers: int

    def chat_client(self, clock_zero_s: float | None = None) -> ChatClient:
        """A client for ``target`` with the run's timeouts and request settings, time 0 at
        ``clock_zero_s`` (a ``time.perf_counter()`` reading; default: now)."""
        return ChatClient(
            self.target,
            timeouts=self.timeouts,
            stream=self.stream,
            include_usage=self.include_usage,
            extra_body=self.extra_body,
            clock_zero_s=clock_zero_s,
            http_stack=self.http_stack,
        )


def plan_levels(options: WorkerOptions, seeds: Sequence[int]) -> list[list[Share | None]]:
    """``plan[level][worker]``."""
    n = options.workers
    return [
        plan_closed(lv, n)
        if lv.mode == "closed"
        else plan_open(lv, n, seeds, index, options.max_in_flight)
        for index, lv in enumerate(options.levels)
    ]
