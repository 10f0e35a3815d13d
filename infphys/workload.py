"""One workload spec for the load generator and the simulator: who sends what, and when.

A :class:`Workload` is one stretch of load, in one of four shapes:

- closed loop at concurrency c: c clients each send a request, wait for its last token and send
  the next at once (no think time), until ``requests`` have been sent;
- open loop at rate λ: requests arrive at scheduled times whatever happens to earlier ones, with
  exponential gaps of mean 1/λ (Poisson) or constant gaps 1/λ; the first arrives at t = 0;
- offline: every request arrives at t = 0 (trtllm-bench's "infinite request rate");
- trace: recorded arrival times and sizes replayed (e.g. a measured run's sends).

Each request asks for ``prompt_tokens`` prompt tokens (ISL) and ``max_tokens`` output tokens
(OSL), or, when ``prompt_tokens_max`` / ``max_tokens_max`` are set, a whole number drawn
uniformly from [``prompt_tokens``, ``prompt_tokens_max``] (likewise for ``max_tokens``). The load
is bounded by a request count (``warmup`` + ``requests``) and, optionally, by ``duration_s``: no
request is sent after that many seconds from the first send.

Randomness comes from ``random.Random`` objects seeded from ``seed`` (one stream each for sizes,
arrivals and client jitter), so a workload is reproducible and the seed is recorded with the run.
:func:`poisson_arrivals_s` is the one Poisson arrival generator of the package: the simulator
and the load generator (and the retry experiment) all draw their open-loop schedules from it.

This module is plain data below both :mod:`infphys.measure` (which sends a workload to a real
server; there it is also called ``Level``) and :mod:`infphys.sim` (which pushes it through the
simulated engine), so neither imports the other.

Worked example: ``Workload.open(rate_per_s=10, requests=1000)`` spans about 1000 / 10 = 100 s of
arrivals (the mean gap is 1/λ = 0.1 s); ``Workload.closed(concurrency=64, requests=640,
prompt_tokens=1000, max_tokens=100)`` keeps 64 requests in flight, 10 rounds of 64.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from infphys._check import non_negative_int, positive, positive_int

__all__ = ["Arrival", "Mode", "Workload", "arrival_offsets_s", "poisson_arrivals_s"]

Mode = Literal["closed", "open", "offline", "trace"]
Arrival = Literal["poisson", "constant"]


def poisson_arrivals_s(rate_per_s: float, rng: random.Random) -> Iterator[float]:
    """Arrival times of a Poisson process of rate ``rate_per_s``, the first at 0 (endless).

    Gaps are exponential with mean 1/λ, drawn with ``rng.expovariate`` (one draw per gap, in
    order, so the same seeded ``rng`` gives the same schedule).

    Example: at λ = 10 requests/s, 1,001 arrivals span 1,000 gaps of mean 0.1 s, about 100 s.

    >>> import itertools, random
    >>> t = list(itertools.islice(poisson_arrivals_s(10.0, random.Random(0)), 3))
    >>> t[0], t[1] < t[2]
    (0.0, True)
    """
    rate = positive("rate_per_s", rate_per_s)
    t = 0.0
    while True:
        yield t
        t += rng.expovariate(rate)


def arrival_offsets_s(rate_per_s: float, arrival: Arrival, rng: random.Random) -> Iterator[float]:
    """Scheduled send times of an open loop, from 0 (endless): Poisson, constant gaps 1/λ,
    or all at 0 when ``rate_per_s`` is ``math.inf`` (offline).

    >>> list(itertools.islice(arrival_offsets_s(4, "constant", random.Random(0)), 3))
    [0.0, 0.25, 0.5]
    """
    if rate_per_s == math.inf:
        return itertools.repeat(0.0)
    rate = positive("rate_per_s", rate_per_s)
    if arrival == "constant":
        return (k / rate for k in itertools.count())
    if arrival != "poisson":
        raise ValueError(f"arrival must be 'poisson' or 'constant' (got {arrival!r})")
    return poisson_arrivals_s(rate, rng)


@dataclass(frozen=True, slots=True)
class Workload:
    """One stretch of load: its shape, its request sizes and its bounds.

    Attributes:
        requests: measured requests (warm-up requests come on top).
        concurrency: closed loop with this many clients (exactly one of ``concurrency`` and
            ``rate_per_s`` is set).
        rate_per_s: open loop at this mean arrival rate, requests/s (``math.inf``: offline).
        arrival: ``poisson`` or ``constant`` gaps (open loop).
        prompt_tokens, max_tokens: per request (lower bounds when a range is given).
        prompt_tokens_max, max_tokens_max: upper bounds of uniform ranges (None: fixed sizes).
        warmup: requests sent first and flagged ``warmup`` (statistics leave them out).
        ignore_eos: requests ask for exactly ``max_tokens`` (as benchmarks do); otherwise the
            server's own stopping (the simulator's output-length distribution) applies.
        seed: seeds the size, arrival and jitter streams (the load generator draws open-loop
            arrivals from its run's ``seed`` instead: one stream across the run's levels).
        client_jitter_s: closed loop (simulator): each client waits a uniform random time in
            [0, ``client_jitter_s``) before each send (its own overhead between reading one
            answer and sending the next; GenAI-Perf's is about a millisecond). Without it,
            identical clients finishing together send together again forever (lockstep).
        trace_arrivals_s, trace_sizes: a replayed trace (see :meth:`trace`).
        duration_s: no request is sent this many seconds or more after the first send
            (None: the request count alone bounds the load).
        labels: extra labels stored with each record (e.g. ``timeout_s``).
    """

    requests: int
    concurrency: int | None = None
    rate_per_s: float | None = None
    arrival: Arrival = "poisson"
    prompt_tokens: int = 128
    max_tokens: int = 64
    prompt_tokens_max: int | None = None
    max_tokens_max: int | None = None
    warmup: int = 0
    ignore_eos: bool = False
    seed: int = 0
    client_jitter_s: float = 0.0
    trace_arrivals_s: tuple[float, ...] | None = None
    trace_sizes: tuple[tuple[int, int], ...] | None = None
    duration_s: float | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        positive_int("requests", self.requests)
        non_negative_int("warmup", self.warmup)
        if self.trace_arrivals_s is not None:
            if self.trace_sizes is None or not (
                len(self.trace_arrivals_s) == len(self.trace_sizes) == self.total_requests
            ):
                raise ValueError(
                    "trace_arrivals_s and trace_sizes must both hold one entry per request"
                )
            for i, (p, m) in enumerate(self.trace_sizes):
                positive_int(f"trace_sizes[{i}][0]", p)
                positive_int(f"trace_sizes[{i}][1]", m)
            if any(b < a for a, b in itertools.pairwise(self.trace_arrivals_s)):
                raise ValueError("trace_arrivals_s must be in increasing order")
        if (self.concurrency is None) == (self.rate_per_s is None):
            raise ValueError("concurrency or rate_per_s: give exactly one of them")
        if self.concurrency is not None:
            positive_int("concurrency", self.concurrency)
        if self.rate_per_s is not None and not (
            isinstance(self.rate_per_s, int | float) and self.rate_per_s == math.inf
        ):
            positive("rate_per_s", self.rate_per_s)
        if self.arrival not in ("poisson", "constant"):
            raise ValueError(f"arrival must be 'poisson' or 'constant' (got {self.arrival!r})")
        p = positive_int("prompt_tokens", self.prompt_tokens)
        m = positive_int("max_tokens", self.max_tokens)
        if (
            self.prompt_tokens_max is not None
            and positive_int("prompt_tokens_max", self.prompt_tokens_max) < p
        ):
            raise ValueError(
                f"prompt_tokens_max must be >= prompt_tokens (got {self.prompt_tokens_max} < {p})"
            )
        if (
            self.max_tokens_max is not None
            and positive_int("max_tokens_max", self.max_tokens_max) < m
        ):
            raise ValueError(
                f"max_tokens_max must be >= max_tokens (got {self.max_tokens_max} < {m})"
            )
        non_negative_int("seed", self.seed)
        if not (isinstance(self.client_jitter_s, int | float) and 0 <= self.client_jitter_s < 60):
            raise ValueError(
                f"client_jitter_s must be in [0, 60) seconds (got {self.client_jitter_s!r})"
            )
        if self.duration_s is not None:
            positive("duration_s", self.duration_s)
        if not isinstance(self.labels, Mapping):
            raise ValueError(f"labels must be a mapping (got {self.labels!r})")

    # --- constructors --------------------------------------------------------------------
    @classmethod
    def closed(cls, concurrency: int, requests: int, **kw: Any) -> Workload:
        """Closed loop: ``concurrency`` clients, ``requests`` requests in all."""
        return cls(requests=requests, concurrency=concurrency, **kw)

    @classmethod
    def open(cls, rate_per_s: float, requests: int, **kw: Any) -> Workload:
        """Open loop at ``rate_per_s`` (``arrival="poisson"`` or ``"constant"``)."""
        return cls(requests=requests, rate_per_s=rate_per_s, **kw)

    @classmethod
    def trace(
        cls,
        arrivals_s: list[float] | tuple[float, ...],
        sizes: list[tuple[int, int]] | tuple[tuple[int, int], ...],
        **kw: Any,
    ) -> Workload:
        """Replay recorded arrivals: request i arrives at ``arrivals_s[i]`` (sorted) asking
        ``sizes[i] = (prompt_tokens, max_tokens)``, e.g. the sends of a measured run."""
        arr = tuple(float(t) for t in arrivals_s)
        sz = tuple((int(p), int(m)) for p, m in sizes)
        if not arr:
            raise ValueError("arrivals_s must hold at least one arrival")
        t0 = min(arr)
        return cls(
            requests=len(arr) - int(kw.pop("warmup", 0)),
            rate_per_s=len(arr) / max(1e-9, max(arr) - t0) if len(arr) > 1 else 1.0,
            trace_arrivals_s=tuple(t - t0 for t in arr),
            trace_sizes=sz,
            **kw,
        )

    @classmethod
    def offline(cls, requests: int, **kw: Any) -> Workload:
        """Every request queued at t = 0 (maximum throughput, as trtllm-bench runs)."""
        return cls(requests=requests, rate_per_s=math.inf, **kw)

    # --- what it sends -------------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        if self.concurrency is not None:
            return "closed"
        if self.trace_arrivals_s is not None:
            return "trace"
        return "offline" if self.rate_per_s == math.inf else "open"

    @property
    def total_requests(self) -> int:
        """Warm-up plus measured requests."""
        return self.warmup + self.requests

    @property
    def fixed_sizes(self) -> bool:
        """Every request asks for the same ``(prompt_tokens, max_tokens)``."""
        return (
            self.trace_sizes is None
            and self.prompt_tokens_max is None
            and self.max_tokens_max is None
        )

    def sizes(self) -> list[tuple[int, int]]:
        """``(prompt_tokens, max_tokens)`` of every request, warm-up first, in send order."""
        n = self.total_requests
        if self.trace_sizes is not None:
            return list(self.trace_sizes)
        if self.fixed_sizes:
            return [(self.prompt_tokens, self.max_tokens)] * n
        rng = random.Random(f"{self.seed}:sizes")
        p_hi = self.prompt_tokens_max or self.prompt_tokens
        m_hi = self.max_tokens_max or self.max_tokens
        return [
            (rng.randint(self.prompt_tokens, p_hi), rng.randint(self.max_tokens, m_hi))
            for _ in range(n)
        ]

    def jitter_rng(self) -> random.Random:
        """The seeded stream of closed-loop client delays."""
        return random.Random(f"{self.seed}:jitter")

    def schedule_s(self, rng: random.Random | None = None) -> Iterator[float]:
        """Scheduled send times (open loop, offline, trace), seconds from the first send, one
        per request, lazily; ``rng`` draws the Poisson gaps (default: the workload's own
        seeded arrival stream)."""
        if self.mode == "closed":
            raise ValueError("arrival_times_s: a closed loop has no schedule (clients wait)")
        if self.trace_arrivals_s is not None:
            return iter(self.trace_arrivals_s)
        rng = rng if rng is not None else random.Random(f"{self.seed}:arrivals")
        assert self.rate_per_s is not None
        times = arrival_offsets_s(self.rate_per_s, self.arrival, rng)
        return itertools.islice(times, self.total_requests)

    def arrival_times_s(self) -> list[float]:
        """Scheduled arrival time of every request (open loop, offline, trace), seconds."""
        return [float(t) for t in self.schedule_s()]

    def describe(self) -> dict[str, Any]:
        """The load shape as plain data (run headers); settings at their default are left out,
        extra ``labels`` are merged in."""
        d: dict[str, Any] = {
            "mode": self.mode,
            "requests": self.requests,
            "warmup": self.warmup,
        }
        if self.concurrency is not None:
            d["concurrency"] = self.concurrency
        elif self.mode == "open":
            d["rate_per_s"] = self.rate_per_s
            d["arrival"] = self.arrival
        elif self.mode == "trace":
            d["rate_per_s"] = self.rate_per_s
        d["prompt_tokens"] = self.prompt_tokens
        d["max_tokens"] = self.max_tokens
        if self.prompt_tokens_max is not None:
            d["prompt_tokens_max"] = self.prompt_tokens_max
        if self.max_tokens_max is not None:
            d["max_tokens_max"] = self.max_tokens_max
        if self.ignore_eos:
            d["ignore_eos"] = True
        if self.client_jitter_s:
            d["client_jitter_s"] = self.client_jitter_s
        if self.duration_s is not None:
            d["duration_s"] = self.duration_s
        d.update(self.labels)
        return d

    def asked(self) -> str:
        """The load asked for, in a few words (``concurrency 8``, ``20 req/s poisson``)."""
        if self.concurrency is not None:
            return f"concurrency {self.concurrency}"
        if self.mode == "offline":
            return "offline (all at once)"
        if self.mode == "trace":
            return f"trace of {self.total_requests} requests"
        return f"{self.rate_per_s:g} req/s {self.arrival}"

    def record_labels(self) -> dict[str, Any]:
        """Labels stored with each simulated record (the same names as measured runs use)."""
        d: dict[str, Any] = {"level": 0, "mode": self.mode}
        if self.concurrency is not None:
            d["concurrency"] = self.concurrency
        elif self.mode == "open":
            d["rate_per_s"] = self.rate_per_s
            d["arrival"] = self.arrival
        d["prompt_tokens_asked"] = self.prompt_tokens
        d["max_tokens"] = self.max_tokens
        d.update(self.labels)
        return d
