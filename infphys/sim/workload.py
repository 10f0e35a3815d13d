"""Workloads for the virtual-time driver: who sends what, and when.

Three load shapes, the same as :mod:`infphys.measure.load` offers against a real server:

- closed loop at concurrency c: c clients each send a request, wait for its last token, and send
  the next at once (no think time), until ``requests`` have been sent;
- open loop at rate λ: requests arrive at scheduled times whatever happens to earlier ones, with
  exponential gaps of mean 1/λ (Poisson) or constant gaps 1/λ; the first arrives at t = 0;
- offline: every request arrives at t = 0 (trtllm-bench's "infinite request rate");
- trace: recorded arrival times and sizes replayed (e.g. a measured run's sends, to predict
  what the real-time server should have shown for exactly those arrivals).

Each request asks for ``prompt_tokens`` prompt tokens and ``max_tokens`` output tokens, or, when
``prompt_tokens_max`` / ``max_tokens_max`` are set, a whole number drawn uniformly from
[``prompt_tokens``, ``prompt_tokens_max``] (and likewise for ``max_tokens``). Randomness comes
from ``random.Random`` objects seeded from ``seed`` (one stream for sizes, one for arrivals), so a
workload is reproducible and its seed is recorded with the run.

Worked example: ``Workload.open(rate_per_s=10, requests=1000)`` spans about 1000 / 10 = 100 s of
arrivals; ``Workload.closed(concurrency=64, requests=640, prompt_tokens=1000, max_tokens=100)``
keeps 64 requests in flight, 10 rounds of 64.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Literal

from infphys._check import non_negative_int, positive, positive_int

__all__ = ["Workload"]

Mode = Literal["closed", "open", "offline", "trace"]


@dataclass(frozen=True, slots=True)
class Workload:
    """A load to push through the simulated engine.

    Attributes:
        requests: measured requests (warm-up requests come on top).
        concurrency: closed loop with this many clients.
        rate_per_s: open loop at this mean arrival rate, requests/s (``math.inf``: offline).
        arrival: ``poisson`` or ``constant`` gaps (open loop).
        prompt_tokens, max_tokens: per request (lower bounds when a range is given).
        prompt_tokens_max, max_tokens_max: upper bounds of uniform ranges (None: fixed sizes).
        warmup: requests sent first and flagged ``warmup`` (statistics leave them out).
        ignore_eos: requests ask for exactly ``max_tokens`` (as benchmarks do); otherwise the
            engine's output-length distribution applies.
        seed: seeds the size, arrival and jitter streams.
        client_jitter_s: closed loop: each client waits a uniform random time in
            [0, ``client_jitter_s``) before each send (its own overhead between reading one
            answer and sending the next; GenAI-Perf's is about a millisecond). Without it,
            identical clients finishing together send together again forever (lockstep).
    """

    requests: int
    concurrency: int | None = None
    rate_per_s: float | None = None
    arrival: Literal["poisson", "constant"] = "poisson"
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

    def __post_init__(self) -> None:
        positive_int("requests", self.requests)
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
            if any(
                b < a
                for a, b in zip(self.trace_arrivals_s, self.trace_arrivals_s[1:], strict=False)
            ):
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
        non_negative_int("warmup", self.warmup)
        non_negative_int("seed", self.seed)
        if not (isinstance(self.client_jitter_s, int | float) and 0 <= self.client_jitter_s < 60):
            raise ValueError(
                f"client_jitter_s must be in [0, 60) seconds (got {self.client_jitter_s!r})"
            )

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

    def sizes(self) -> list[tuple[int, int]]:
        """``(prompt_tokens, max_tokens)`` of every request, warm-up first, in send order."""
        n = self.total_requests
        if self.trace_sizes is not None:
            return list(self.trace_sizes)
        if self.prompt_tokens_max is None and self.max_tokens_max is None:
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

    def arrival_times_s(self) -> list[float]:
        """Scheduled arrival time of every request (open loop and offline), seconds."""
        n = self.total_requests
        if self.mode == "closed":
            raise ValueError("arrival_times_s: a closed loop has no schedule (clients wait)")
        if self.mode == "offline":
            return [0.0] * n
        if self.trace_arrivals_s is not None:
            return list(self.trace_arrivals_s)
        rate = float(self.rate_per_s)  # type: ignore[arg-type]
        if self.arrival == "constant":
            return [i / rate for i in range(n)]
        rng = random.Random(f"{self.seed}:arrivals")
        t = 0.0
        out = [0.0]
        for _ in range(n - 1):
            t += rng.expovariate(rate)
            out.append(t)
        return out

    def describe(self) -> dict[str, Any]:
        """The load shape as plain data (run headers), in the measuring client's vocabulary."""
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
        d["ignore_eos"] = self.ignore_eos
        if self.client_jitter_s:
            d["client_jitter_s"] = self.client_jitter_s
        return d

    def labels(self) -> dict[str, Any]:
        """Labels stored with each record (the same names as measured runs use)."""
        d: dict[str, Any] = {"level": 0, "mode": self.mode}
        if self.concurrency is not None:
            d["concurrency"] = self.concurrency
        elif self.mode == "open":
            d["rate_per_s"] = self.rate_per_s
            d["arrival"] = self.arrival
        d["prompt_tokens_asked"] = self.prompt_tokens
        d["max_tokens"] = self.max_tokens
        return d
