"""Client retry policies under overload: none, blind, and exponential backoff with jitter.

A *user request* is what a person (or an upstream service) asked for; an *attempt* is one HTTP
request sent for it. A :class:`RetryPolicy` decides, after a failed attempt, whether to try
again and how long to wait first:

- ``none``: one attempt; a failure is final.
- ``blind``: retry at once, up to ``max_attempts`` attempts in all.
- ``backoff``: wait min(``max_delay_s``, ``base_delay_s`` × ``multiplier``^(k − 1)) before retry
  k, with *full jitter* (a uniform draw between 0 and that bound: Marc Brooker, "Exponential
  Backoff And Jitter", AWS Architecture Blog, 2015), and at least the server's ``Retry-After``
  when it sends one and ``respect_retry_after`` is set.

Only failures a retry can fix are retried (:data:`RETRYABLE`: 429, 5xx, timeouts, refused or
reset connections); a 400 is final. Randomness comes from one ``random.Random(seed)`` per
policy run, so a comparison is reproducible.

:func:`retry_run` sends the same open-loop schedule of user requests (Poisson arrivals at
``rate_per_s``, seeded) once per policy, one policy after the other, and records every attempt
as a :class:`~infphys.records.RequestRecord` labelled with ``policy``, ``user_request`` and
``attempt`` (1-based) and the policy index as its ``level``, so ``infphys.stats`` reads it as a
run of one level per policy. :func:`retry_summary` turns that into one row per policy at the
user's level: attempts per user request (the load amplification), the share of user requests
that eventually succeeded, and the user-perceived latency (first send to final answer).

Worked example: 100 user requests at twice a server's capacity, its queue capped so the excess
gets an immediate 503. Without retries about half fail. Blind retries (5 attempts) send up to
five 503-bound attempts within milliseconds for each refused request, so the load multiplies
while the queue is still full and few more succeed; backoff from 0.1 s spreads the retries over
the next 1.5 s, after the burst has passed, and serves most of them with fewer attempts.

>>> p = RetryPolicy.backoff(max_attempts=4, base_delay_s=0.1)
>>> [round(p.delay_bound_s(k), 3) for k in (2, 3, 4)]
[0.1, 0.2, 0.4]
>>> RetryPolicy.blind(3).delay_s(2, random.Random(0))
0.0
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from infphys import stats
from infphys._check import non_negative, non_negative_int, positive, positive_int
from infphys.measure.client import ChatClient, Timeouts
from infphys.measure.prompts import SyntheticPrompts
from infphys.measure.target import Target
from infphys.records import RequestRecord, RunHeader, records_to_frame, utc_timestamp
from infphys.workload import poisson_arrivals_s

__all__ = [
    "RETRYABLE",
    "RetryPolicy",
    "RetryResult",
    "retry_after_s",
    "retry_run",
    "retry_summary",
]

#: Error classes that a later attempt may not meet again (overload, timeouts, dropped links).
RETRYABLE: frozenset[str] = frozenset(
    {
        "http_429",
        "http_5xx",
        "read_timeout",
        "total_timeout",
        "connect_timeout",
        "connect_refused",
        "connection_reset",
    }
)

Kind = Literal["none", "blind", "backoff"]
_RETRY_AFTER = re.compile(r"\(Retry-After:\s*([0-9.]+)\)")


def retry_after_s(record: RequestRecord) -> float | None:
    """The server's ``Retry-After`` (seconds) carried in a failed record's message, if any.

    >>> retry_after_s(RequestRecord(0, 0.0, error_message="HTTP 429: slow down (Retry-After: 2)"))
    2.0
    """
    m = _RETRY_AFTER.search(record.error_message or "")
    return float(m.group(1)) if m else None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a failed user request again, and after how long.

    Attributes:
        name: shown in tables and charts.
        kind: ``none``, ``blind`` or ``backoff`` (see the module docstring).
        max_attempts: attempts in all, the first included (1 for ``none``).
        base_delay_s: ``backoff``: the bound on the wait before the second attempt.
        multiplier: ``backoff``: the bound grows by this factor per attempt.
        max_delay_s: ``backoff``: the bound never exceeds this.
        jitter: ``backoff``: draw the wait uniformly in [0, bound] (full jitter) or wait the
            bound itself.
        respect_retry_after: wait at least the server's ``Retry-After`` when it sends one.
    """

    name: str
    kind: Kind = "none"
    max_attempts: int = 1
    base_delay_s: float = 0.1
    multiplier: float = 2.0
    max_delay_s: float = 5.0
    jitter: bool = True
    respect_retry_after: bool = True

    def __post_init__(self) -> None:
        if not str(self.name).strip():
            raise ValueError("name must not be empty")
        if self.kind not in ("none", "blind", "backoff"):
            raise ValueError(f"kind must be 'none', 'blind' or 'backoff' (got {self.kind!r})")
        attempts = positive_int("max_attempts", self.max_attempts)
        if self.kind == "none" and attempts != 1:
            raise ValueError(f"max_attempts must be 1 for kind='none' (got {attempts})")
        non_negative("base_delay_s", self.base_delay_s)
        if positive("multiplier", self.multiplier) < 1:
            raise ValueError(f"multiplier must be >= 1 (got {self.multiplier!r})")
        non_negative("max_delay_s", self.max_delay_s)

    @classmethod
    def no_retry(cls, name: str = "no retry") -> RetryPolicy:
        """One attempt per user request."""
        return cls(name=name)

    @classmethod
    def blind(cls, max_attempts: int = 5, name: str = "blind retries") -> RetryPolicy:
        """Retry at once, ignoring ``Retry-After``, up to ``max_attempts`` attempts in all."""
        return cls(name=name, kind="blind", max_attempts=max_attempts, respect_retry_after=False)

    @classmethod
    def backoff(
        cls,
        max_attempts: int = 5,
        base_delay_s: float = 0.1,
        *,
        multiplier: float = 2.0,
        max_delay_s: float = 5.0,
        jitter: bool = True,
        name: str = "backoff + jitter",
    ) -> RetryPolicy:
        """Exponential backoff with full jitter (honouring ``Retry-After``)."""
        return cls(
            name=name,
            kind="backoff",
            max_attempts=max_attempts,
            base_delay_s=base_delay_s,
            multiplier=multiplier,
            max_delay_s=max_delay_s,
            jitter=jitter,
        )

    def should_retry(self, record: RequestRecord, attempt: int) -> bool:
        """Whether to send attempt ``attempt + 1`` after ``record`` (attempt ``attempt``) failed."""
        positive_int("attempt", attempt)
        return (
            self.kind != "none"
            and attempt < self.max_attempts
            and record.status == "failed"
            and (record.error_class or "") in RETRYABLE
        )

    def delay_bound_s(self, attempt: int) -> float:
        """The longest wait before attempt ``attempt`` (≥ 2): 0 for ``blind``; for ``backoff``
        min(max_delay_s, base_delay_s × multiplier^(attempt − 2))."""
        k = positive_int("attempt", attempt)
        if k < 2 or self.kind != "backoff":
            return 0.0
        return min(self.max_delay_s, self.base_delay_s * self.multiplier ** (k - 2))

    def delay_s(
        self, attempt: int, rng: random.Random, server_retry_after_s: float | None = None
    ) -> float:
        """The wait before attempt ``attempt``: the bound, jittered; at least ``Retry-After``."""
        bound = self.delay_bound_s(attempt)
        wait = rng.uniform(0.0, bound) if (self.jitter and bound > 0) else bound
        if self.respect_retry_after and server_retry_after_s is not None:
            wait = max(wait, server_retry_after_s)
        return wait

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RetryResult:
    """Every attempt of a :func:`retry_run`, in completion order, with the run's header."""

    header: RunHeader
    records: list[RequestRecord] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """One row per attempt (labels ``policy``, ``user_request``, ``attempt`` as columns)."""
        return records_to_frame(self.records, self.header)

    def summary(self) -> pd.DataFrame:
        """One row per policy, at the user's level (:func:`retry_summary`)."""
        return retry_summary(self.frame())


async def _user_request(
    client: ChatClient,
    policy: RetryPolicy,
    rng: random.Random,
    prompt: str,
    max_tokens: int,
    labels: dict[str, Any],
    next_id: list[int],
    out: list[RequestRecord],
    *,
    start_s: float = 0.0,
) -> None:
    """One user request: wait for its arrival time, then attempt it as ``policy`` says."""
    await asyncio.sleep(max(0.0, start_s - client.now_s()))
    attempt = 1
    while True:
        rid = next_id[0]
        next_id[0] += 1
        rec = RequestRecord(
            request_id=rid, sent_s=client.now_s(), labels={**labels, "attempt": attempt}
        )
        try:
            await client.send(rec, prompt, max_tokens)
        finally:
            out.append(rec)  # an attempt cut off at the deadline is kept, as incomplete
        if not policy.should_retry(rec, attempt):
            return
        attempt += 1
        wait = policy.delay_s(attempt, rng, retry_after_s(rec))
        if wait > 0:
            await asyncio.sleep(wait)


async def retry_run(
    target: Target,
    policies: Sequence[RetryPolicy],
    *,
    rate_per_s: float,
    user_requests: int = 50,
    prompt_tokens: int = 64,
    max_tokens: int = 16,
    timeouts: Timeouts | None = None,
    seed: int = 0,
    deadline_s: float = 60.0,
    pause_s: float = 0.5,
) -> RetryResult:
    """Send the same Poisson schedule of user requests once per policy; record every attempt.

    Args:
        target: the server.
        policies: compared one after the other, each on a quiet server (``pause_s`` apart).
        rate_per_s: mean arrival rate of user requests.
        user_requests: user requests per policy.
        prompt_tokens, max_tokens: every attempt's size (synthetic prompt, one per user request).
        timeouts: per-attempt limits.
        seed: seeds the arrival schedule, the prompts and each policy's jitter.
        deadline_s: per policy, attempts still running this long after the first send are
            cancelled and recorded as ``incomplete``, and no retry is started after it.
        pause_s: idle time between policies, so one policy's queue does not hurt the next.
    """
    if not policies:
        raise ValueError("policies must hold at least one RetryPolicy")
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policies must have distinct names (got {names})")
    rate = positive("rate_per_s", rate_per_s)
    n = positive_int("user_requests", user_requests)
    positive_int("prompt_tokens", prompt_tokens)
    positive_int("max_tokens", max_tokens)
    non_negative_int("seed", seed)
    deadline = positive("deadline_s", deadline_s)
    pause = non_negative("pause_s", pause_s)
    timeouts = timeouts or Timeouts()
    offsets = list(itertools.islice(poisson_arrivals_s(rate, random.Random(seed)), n))
    prompts = SyntheticPrompts(prompt_tokens, seed=seed)
    header = RunHeader(
        source="measured",
        started_at=utc_timestamp(),
        target=target.public_dict(),
        load={
            "kind": "retry",
            "rate_per_s": rate,
            "arrival": "poisson",
            "user_requests": n,
            "prompt_tokens": prompt_tokens,
            "max_tokens": max_tokens,
            "timeouts": timeouts.as_dict(),
            "deadline_s": deadline,
            "policies": [p.describe() for p in policies],
        },
        seed=seed,
    )
    result = RetryResult(header=header)
    next_id = [0]
    async with ChatClient(target, timeouts=timeouts) as client:
        for index, policy in enumerate(policies):
            rng = random.Random(f"{seed}:{policy.name}")
            base = {
                "level": index,
                "mode": "open",
                "policy": policy.name,
                "rate_per_s": rate,
                "prompt_tokens_asked": prompt_tokens,
                "max_tokens": max_tokens,
            }
            start = client.now_s()
            out: list[RequestRecord] = []
            tasks: set[asyncio.Task[None]] = set()

            loop = asyncio.get_running_loop()
            for i, off in enumerate(offsets):
                labels = {**base, "user_request": i}
                task = _user_request(
                    client,
                    policy,
                    rng,
                    prompts(i),
                    max_tokens,
                    labels,
                    next_id,
                    out,
                    start_s=start + off,
                )
                tasks.add(loop.create_task(task))
            _, pending = await asyncio.wait(tasks, timeout=deadline)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            result.records.extend(out)
            if pause and index < len(policies) - 1:
                await asyncio.sleep(pause)
    return result


def retry_summary(data: pd.DataFrame) -> pd.DataFrame:
    """One row per policy of a retry run, judged at the user's level.

    Columns: ``policy``, ``user_requests``, ``attempts``, ``amplification`` (attempts per user
    request), ``succeeded`` and ``success_rate`` (user requests whose last attempt succeeded),
    ``failed_attempts`` (by any class) and ``e2e_p50_s``/``e2e_p95_s`` (user-perceived: first
    attempt's send to the successful attempt's end, over successful user requests, with
    :func:`infphys.stats.percentiles`), and ``window_s`` (first send to last end) and
    ``goodput_per_s`` = succeeded / window.

    >>> f = records_to_frame([
    ...     RequestRecord(0, 0.0, end_s=0.01, status="failed", error_class="http_5xx",
    ...                   labels={"policy": "blind", "user_request": 0, "attempt": 1}),
    ...     RequestRecord(1, 0.01, first_token_s=0.1, end_s=0.5, completion_tokens=8,
    ...                   labels={"policy": "blind", "user_request": 0, "attempt": 2}),
    ... ])
    >>> row = retry_summary(f).iloc[0]
    >>> float(row["amplification"]), float(row["success_rate"]), float(row["e2e_p50_s"])
    (2.0, 1.0, 0.5)
    """
    cols = [
        "policy",
        "user_requests",
        "attempts",
        "amplification",
        "succeeded",
        "success_rate",
        "failed_attempts",
        "e2e_p50_s",
        "e2e_p95_s",
        "window_s",
        "goodput_per_s",
    ]
    for c in ("policy", "user_request", "attempt"):
        if c not in data.columns:
            raise ValueError(f"data has no column {c!r}: not a retry run")
    f = stats.measured(data)
    rows: list[dict[str, Any]] = []
    order = f.drop_duplicates("policy")["policy"].tolist()
    for name in order:
        g = f[f["policy"] == name].sort_values(["user_request", "attempt"])
        users = g.groupby("user_request", sort=True)
        first_send = users["sent_s"].min()
        last = users.tail(1).set_index("user_request")
        ok = stats.successful(last)
        latency = (ok["end_s"] - first_send.loc[ok.index]).to_numpy(dtype=float)
        p = stats.percentiles(latency, (50, 95))
        n_users = int(first_send.size)
        ends = g["end_s"].dropna()
        window = float(ends.max() - g["sent_s"].min()) if len(ends) else math.nan
        rows.append(
            {
                "policy": name,
                "user_requests": n_users,
                "attempts": len(g),
                "amplification": len(g) / n_users if n_users else math.nan,
                "succeeded": len(ok),
                "success_rate": len(ok) / n_users if n_users else math.nan,
                "failed_attempts": int((g["status"] == "failed").sum()),
                "e2e_p50_s": p["p50"],
                "e2e_p95_s": p["p95"],
                "window_s": window,
                "goodput_per_s": len(ok) / window if window and window > 0 else math.nan,
            }
        )
    out = pd.DataFrame(rows, columns=cols)
    if len(out):
        out["amplification"] = out["amplification"].astype(float)
        out["success_rate"] = out["success_rate"].astype(float)
    return out
