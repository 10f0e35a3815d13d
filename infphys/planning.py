"""Capacity planning from a sweep: the load cap that meets an SLO, and the GPUs for N users.

Pure functions over numbers and over a sweep summary (:func:`infphys.stats.summarize`, one row
per level), measured or simulated. No I/O, no clock.

Rules:

- The **SLO cap** of a sweep is the highest level such that it and every level below it meet
  the objective (p95 ≤ SLO). Walking up from the lightest load and stopping at the first
  violation ignores a lucky level above a bad one: sweeps are noisy, and a capacity plan must
  not rest on a point the curve has already left.
- **Replicas** = ceil(users / users per replica); **GPUs** = replicas × GPUs per replica (the
  tensor-parallel degree). Users here are *concurrent* users (requests in flight), which
  Little's Law converts from a request rate: L = λ × W.
- The **KV-limited concurrency** is how many requests of a given length fit in the KV cache at
  once: capacity in blocks // blocks per request, with blocks of ``block_tokens`` (vLLM: 16) and a
  request holding ceil(tokens / block_tokens) blocks at its longest.

Worked example: p95 = 1.2, 1.3, 1.6, 2.4 and 4.9 s at concurrency 8, 16, 32, 64 and 128 under a
2.5 s objective gives a cap of 64; 1,000 concurrent users then need ceil(1000 / 64) = 16
replicas, 32 GPUs at tp = 2.

>>> slo_cap([8, 16, 32, 64, 128], [1.2, 1.3, 1.6, 2.4, 4.9], 2.5)
64
>>> gpus_needed(1000, 64, gpus_per_replica=2)
32
>>> kv_limited_concurrency(829_360, 2000)
414
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from infphys._check import non_negative_int, positive, positive_int

__all__ = [
    "CapacityPlan",
    "gpus_needed",
    "kv_limited_concurrency",
    "plan_capacity",
    "replicas_needed",
    "slo_cap",
    "slo_cap_index",
]


def _levels(levels: Sequence[float], latency_s: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(list(levels), dtype=float)
    y = np.asarray(list(latency_s), dtype=float)
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError("levels and latency_s must be 1-D and the same length")
    if x.size == 0:
        raise ValueError("levels must hold at least one level")
    if not np.all(np.isfinite(x)):
        raise ValueError("levels must be finite numbers")
    if np.any(np.diff(x) <= 0):
        raise ValueError("levels must be strictly increasing")
    return x, y


def slo_cap_index(levels: Sequence[float], latency_s: Sequence[float], slo_s: float) -> int | None:
    """Index of the SLO cap: the last level of the leading run of levels with latency ≤ ``slo_s``.

    A NaN latency (a level with no successful request) counts as a violation. None when even the
    first level misses the objective.

    >>> slo_cap_index([1, 2, 4, 8], [0.5, 0.6, 1.5, 0.9], 1.0)
    1
    """
    _, y = _levels(levels, latency_s)
    limit = positive("slo_s", slo_s)
    ok = np.isfinite(y) & (y <= limit)
    if not ok[0]:
        return None
    bad = np.nonzero(~ok)[0]
    return int(bad[0] - 1) if bad.size else int(y.size - 1)


def slo_cap(levels: Sequence[float], latency_s: Sequence[float], slo_s: float) -> float | None:
    """The level at :func:`slo_cap_index` (an int when the levels are whole numbers), or None.

    >>> slo_cap([1, 2, 4, 8], [0.5, 0.6, 1.5, 0.9], 1.0)
    2
    """
    i = slo_cap_index(levels, latency_s, slo_s)
    if i is None:
        return None
    v = float(list(levels)[i])
    return int(v) if v.is_integer() else v


def replicas_needed(users: float, users_per_replica: float) -> int:
    """Replicas that serve ``users`` concurrent users at ``users_per_replica`` each (rounded up).

    >>> replicas_needed(1000, 64)
    16
    """
    u = positive("users", users)
    per = positive("users_per_replica", users_per_replica)
    # Guard against 3.0000000001 replicas from float division of whole numbers.
    return max(1, math.ceil(round(u / per, 9)))


def gpus_needed(users: float, users_per_replica: float, *, gpus_per_replica: int = 1) -> int:
    """GPUs for ``users`` concurrent users: replicas × ``gpus_per_replica`` (tensor parallel).

    >>> gpus_needed(100, 30, gpus_per_replica=2)
    8
    """
    per_replica = positive_int("gpus_per_replica", gpus_per_replica)
    return replicas_needed(users, users_per_replica) * per_replica


def kv_limited_concurrency(
    kv_capacity_tokens: int, tokens_per_request: int, *, block_tokens: int = 16
) -> int:
    """Requests of ``tokens_per_request`` (prompt + output) that fit in the KV cache at once.

    Capacity is counted in whole blocks; each request holds ceil(tokens / block_tokens) blocks
    at its longest. Assumes no prefix sharing between requests.

    >>> kv_limited_concurrency(1000, 100, block_tokens=16)   # 62 blocks, 7 per request
    8
    """
    capacity = non_negative_int("kv_capacity_tokens", kv_capacity_tokens)
    tokens = positive_int("tokens_per_request", tokens_per_request)
    block = positive_int("block_tokens", block_tokens)
    blocks = capacity // block
    per_request = -(-tokens // block)
    return blocks // per_request


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    """The capacity plan of one replica's sweep against a p95 objective.

    Attributes:
        x_column: the sweep's load column (``concurrency`` or ``rate_per_s``).
        latency_column: the summary column judged (``e2e_p95_s`` by default).
        slo_s: the objective.
        cap: the SLO cap (a level of the sweep), None when no level meets the objective.
        cap_latency_s: the latency at the cap.
        cap_throughput_req_per_s, cap_output_tokens_per_s: throughput at the cap.
        peak_throughput_req_per_s: the highest throughput of the sweep (any latency).
        users: concurrent users to serve; replicas, gpus: what they need (0 when no cap).
        gpus_per_replica: the tensor-parallel degree.
    """

    x_column: str
    latency_column: str
    slo_s: float
    cap: float | None
    cap_latency_s: float
    cap_throughput_req_per_s: float
    cap_output_tokens_per_s: float
    peak_throughput_req_per_s: float
    users: float
    replicas: int
    gpus: int
    gpus_per_replica: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_capacity(
    summary: pd.DataFrame,
    *,
    slo_s: float,
    users: float,
    gpus_per_replica: int = 1,
    x: str = "concurrency",
    latency_column: str = "e2e_p95_s",
) -> CapacityPlan:
    """The SLO cap of a closed-loop sweep summary and the GPUs that ``users`` users need.

    ``summary`` is :func:`infphys.stats.summarize` of a sweep (one row per level). With
    ``x="concurrency"`` the cap is in concurrent users per replica, and the replicas are
    ceil(users / cap). With ``x="rate_per_s"`` the cap is a request rate and ``users`` must be a
    request rate too.

    Raises:
        ValueError: if a column is missing or the levels repeat.
    """
    for col in (x, latency_column, "throughput_req_per_s"):
        if col not in summary.columns:
            raise ValueError(f"summary has no column {col!r}")
    s = summary.dropna(subset=[x]).sort_values(x)
    i = slo_cap_index(s[x].astype(float).tolist(), s[latency_column].astype(float).tolist(), slo_s)
    per_replica = positive_int("gpus_per_replica", gpus_per_replica)
    u = positive("users", users)
    tput = s["throughput_req_per_s"].astype(float)
    tokens = (
        s["output_tokens_per_s"].astype(float)
        if "output_tokens_per_s" in s.columns
        else pd.Series(np.nan, index=s.index)
    )
    peak = float(tput.max()) if len(tput) else math.nan
    if i is None:
        nan = math.nan
        return CapacityPlan(
            x, latency_column, float(slo_s), None, nan, nan, nan, peak, u, 0, 0, per_replica
        )
    cap_raw = float(s[x].iloc[i])
    cap = int(cap_raw) if cap_raw.is_integer() else cap_raw
    replicas = replicas_needed(u, cap_raw)
    return CapacityPlan(
        x_column=x,
        latency_column=latency_column,
        slo_s=float(slo_s),
        cap=cap,
        cap_latency_s=float(s[latency_column].iloc[i]),
        cap_throughput_req_per_s=float(tput.iloc[i]),
        cap_output_tokens_per_s=float(tokens.iloc[i]),
        peak_throughput_req_per_s=peak,
        users=u,
        replicas=replicas,
        gpus=replicas * per_replica,
        gpus_per_replica=per_replica,
    )
