"""Queueing: Little's Law, M/M/1, M/M/c (Erlang C), Kingman, and finding the knee of a sweep.

Assumptions: M/M/1 and M/M/c have Poisson arrivals at rate λ and exponential service at rate μ
per server, first come first served, an unbounded queue, and a stable system (λ < c·μ). Kingman's
formula approximates a G/G/1 queue's mean wait in heavy traffic.

Worked example: a server that answers in 1.0 s on average (μ = 1/s) fed 0.9 requests/s is 90 %
busy; M/M/1 gives a mean time in system of 1 / (μ − λ) = 10 s — ten times the service time — and
a p95 of ln(20) × 10 s = 30 s. That is the utilisation trap: latency explodes long before the
server is "full". Two such servers sharing one queue (M/M/2) at 1.8 requests/s wait only
C(2, 1.8) / (2 − 1.8) = 4.26 s on average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from infphys._check import fraction, non_negative, positive, positive_int

__all__ = [
    "ClosedLoopMetrics",
    "QueueMetrics",
    "closed_loop",
    "erlang_c",
    "find_knee",
    "find_latency_cliff",
    "kingman_wait_s",
    "littles_law_in_flight",
    "littles_law_latency_s",
    "littles_law_throughput_per_s",
    "mm1",
    "mmc",
]


def littles_law_in_flight(throughput_per_s: float, latency_s: float) -> float:
    """L = λ W: mean requests in the system.

    >>> littles_law_in_flight(20.0, 0.5)
    10.0
    """
    return non_negative("throughput_per_s", throughput_per_s) * non_negative("latency_s", latency_s)


def littles_law_throughput_per_s(in_flight: float, latency_s: float) -> float:
    """λ = L / W: the throughput a closed loop of ``in_flight`` users reaches at ``latency_s``.

    >>> littles_law_throughput_per_s(64, 3.2)
    20.0
    """
    return non_negative("in_flight", in_flight) / positive("latency_s", latency_s)


def littles_law_latency_s(in_flight: float, throughput_per_s: float) -> float:
    """W = L / λ.

    >>> littles_law_latency_s(10, 20.0)
    0.5
    """
    return non_negative("in_flight", in_flight) / positive("throughput_per_s", throughput_per_s)


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """Steady-state metrics of an M/M/c queue (c = 1 for M/M/1).

    Attributes:
        servers: c.
        utilization: ρ = λ / (c μ).
        p_wait: probability an arrival waits (Erlang C; ρ for M/M/1).
        mean_wait_s: mean time in the queue, Wq.
        mean_response_s: mean time in the system, W = Wq + 1/μ.
        mean_in_system: L = λ W.
        mean_in_queue: Lq = λ Wq.
    """

    servers: int
    arrival_rate_per_s: float
    service_rate_per_s: float
    utilization: float
    p_wait: float
    mean_wait_s: float
    mean_response_s: float
    mean_in_system: float
    mean_in_queue: float

    def wait_percentile_s(self, q: float) -> float:
        """The q-quantile of the time spent queueing: P(Wq > t) = C e^{−(cμ − λ) t}."""
        qq = fraction("q", q)
        if qq >= 1:
            return math.inf
        tail = 1.0 - qq
        if self.p_wait <= tail:
            return 0.0
        rate = self.servers * self.service_rate_per_s - self.arrival_rate_per_s
        return math.log(self.p_wait / tail) / rate

    def response_survival(self, t_s: float) -> float:
        """P(time in system > t): service Exp(μ) plus, with probability C, a wait Exp(θ),
        θ = cμ − λ. The sum of two exponentials has survival (θe^{−μt} − μe^{−θt})/(θ − μ),
        or (1 + μt)e^{−μt} when θ = μ."""
        t = non_negative("t_s", t_s)
        mu = self.service_rate_per_s
        theta = self.servers * mu - self.arrival_rate_per_s
        c = self.p_wait
        if math.isclose(theta, mu, rel_tol=1e-9):
            both = (1.0 + mu * t) * math.exp(-mu * t)
        else:
            both = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
        return (1.0 - c) * math.exp(-mu * t) + c * both

    def response_percentile_s(self, q: float) -> float:
        """The q-quantile of time in system (exact: bisection on :meth:`response_survival`).

        For M/M/1 it equals −ln(1 − q)/(μ − λ).
        """
        qq = fraction("q", q)
        if qq >= 1:
            return math.inf
        tail = 1.0 - qq
        lo, hi = 0.0, 1.0 / self.service_rate_per_s
        while self.response_survival(hi) > tail:
            hi *= 2.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if self.response_survival(mid) > tail:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-12 * hi:
                break
        return 0.5 * (lo + hi)


@dataclass(frozen=True, slots=True)
class ClosedLoopMetrics:
    """Steady state of a closed loop: ``users`` clients, each thinking then sending one request.

    Attributes:
        users: N clients (a benchmark's ``--concurrency``).
        servers: c servers, each serving at μ.
        think_time_s: Z, mean time a client waits between a response and its next request.
        throughput_per_s: X, completed requests per second.
        mean_response_s: W = N / X − Z (Little's Law over the whole loop).
        mean_in_system: requests at the servers (queued or in service), X W.
        utilization: mean fraction of servers busy.
    """

    users: int
    servers: int
    service_rate_per_s: float
    think_time_s: float
    throughput_per_s: float
    mean_response_s: float
    mean_in_system: float
    utilization: float


def closed_loop(
    users: int, service_rate_per_s: float, servers: int = 1, think_time_s: float = 0.0
) -> ClosedLoopMetrics:
    """A closed loop of N clients on c exponential servers (the finite-source M/M/c//N queue).

    With no think time every client always has a request in the system, so
    X = min(N, c) μ and W = N / X: past N = c, adding clients only adds queueing. With
    exponential think time Z the birth–death chain over n requests at the servers (arrival
    rate (N − n)/Z, service rate min(n, c) μ) is solved exactly.

    Worked example: 64 clients on one server answering in 0.5 s (μ = 2/s) with no think time:
    X = 2/s and W = 64 / 2 = 32 s, where the server alone takes 0.5 s.

    >>> closed_loop(64, 2.0).mean_response_s
    32.0
    """
    n = positive_int("users", users)
    mu = positive("service_rate_per_s", service_rate_per_s)
    c = positive_int("servers", servers)
    z = non_negative("think_time_s", think_time_s)
    if z == 0:
        x = min(n, c) * mu
    else:
        # Unnormalised stationary probabilities of k requests at the servers, in log space.
        logs = [0.0]
        for k in range(1, n + 1):
            logs.append(logs[-1] + math.log((n - k + 1) / z) - math.log(min(k, c) * mu))
        top = max(logs)
        weights = [math.exp(v - top) for v in logs]
        total = sum(weights)
        x = sum(w * min(k, c) * mu for k, w in enumerate(weights)) / total
    w_s = n / x - z
    return ClosedLoopMetrics(
        users=n,
        servers=c,
        service_rate_per_s=mu,
        think_time_s=z,
        throughput_per_s=x,
        mean_response_s=w_s,
        mean_in_system=x * w_s,
        utilization=x / (c * mu),
    )


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival must wait in M/M/c, with offered load a = λ/μ (< c).

    Computed with the numerically stable Erlang B recursion, C = B / (1 − ρ(1 − B)).

    >>> round(erlang_c(2, 1.8), 4)
    0.8526
    """
    c = positive_int("servers", servers)
    a = non_negative("offered_load", offered_load)
    if a >= c:
        raise ValueError(f"offered_load must be < servers={c} for a stable queue (got {a})")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


def mmc(arrival_rate_per_s: float, service_rate_per_s: float, servers: int) -> QueueMetrics:
    """M/M/c steady state (Erlang C).

    Raises:
        ValueError: if the queue is unstable (λ ≥ c μ), naming ``arrival_rate_per_s``.
    """
    lam = non_negative("arrival_rate_per_s", arrival_rate_per_s)
    mu = positive("service_rate_per_s", service_rate_per_s)
    c = positive_int("servers", servers)
    if lam >= c * mu:
        raise ValueError(
            f"arrival_rate_per_s must be < servers × service_rate_per_s = {c * mu:g} "
            f"for a stable queue (got {lam:g})"
        )
    a = lam / mu
    p_wait = erlang_c(c, a) if lam > 0 else 0.0
    wq = p_wait / (c * mu - lam)
    w = wq + 1.0 / mu
    return QueueMetrics(
        servers=c,
        arrival_rate_per_s=lam,
        service_rate_per_s=mu,
        utilization=lam / (c * mu),
        p_wait=p_wait,
        mean_wait_s=wq,
        mean_response_s=w,
        mean_in_system=lam * w,
        mean_in_queue=lam * wq,
    )


def mm1(arrival_rate_per_s: float, service_rate_per_s: float) -> QueueMetrics:
    """M/M/1 steady state: W = 1/(μ − λ), Wq = ρ/(μ − λ).

    >>> round(mm1(0.9, 1.0).mean_response_s, 6)
    10.0
    """
    return mmc(arrival_rate_per_s, service_rate_per_s, 1)


def kingman_wait_s(
    utilization: float,
    mean_service_s: float,
    cv_arrival: float = 1.0,
    cv_service: float = 1.0,
) -> float:
    """Kingman's approximation of a G/G/1 mean queueing time:
    Wq ≈ ρ/(1 − ρ) × (cₐ² + cₛ²)/2 × mean service time.

    With cₐ = cₛ = 1 it is exact for M/M/1: ρ = 0.9, service 1 s → 9 s.

    >>> round(kingman_wait_s(0.9, 1.0), 6)
    9.0
    """
    rho = fraction("utilization", utilization)
    if rho >= 1:
        raise ValueError(f"utilization must be < 1 (got {utilization})")
    s = positive("mean_service_s", mean_service_s)
    ca = non_negative("cv_arrival", cv_arrival)
    cs = non_negative("cv_service", cv_service)
    return rho / (1.0 - rho) * (ca**2 + cs**2) / 2.0 * s


def _as_curve(
    name_x: str, x: Sequence[float], name_y: str, y: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.ndim != 1 or ya.shape != xa.shape:
        raise ValueError(f"{name_x} and {name_y} must be 1-D and the same length")
    if xa.size < 3:
        raise ValueError(f"{name_x} needs at least 3 points to find a knee (got {xa.size})")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError(f"{name_x} and {name_y} must be finite numbers")
    if np.any(np.diff(xa) <= 0):
        raise ValueError(f"{name_x} must be strictly increasing")
    return xa, ya


def find_knee(x: Sequence[float], throughput: Sequence[float], *, log_x: bool = True) -> int:
    """Index of the knee of a throughput curve: where adding load stops paying.

    Rule (Kneedle, Satopää et al. 2011): normalise x (its log₂ when ``log_x``, as for doubling
    concurrency sweeps) and throughput to [0, 1]; the knee is the point farthest above the
    straight line joining the first and last points. When no point lies above that line (a
    straight or still-steepening curve: no knee inside the sweep) the index is 0;
    :func:`infphys.stats.sweep_knee` reports that case as no knee.

    >>> find_knee([1, 2, 4, 8, 16, 32, 64], [10, 20, 39, 70, 95, 100, 101])
    4
    """
    xa, ya = _as_curve("x", x, "throughput", throughput)
    if log_x:
        if np.any(xa <= 0):
            raise ValueError("x must be > 0 when log_x is True")
        xa = np.log2(xa)
    xn = (xa - xa[0]) / (xa[-1] - xa[0])
    span = ya.max() - ya.min()
    if span == 0:
        return 0
    yn = (ya - ya.min()) / span
    line = yn[0] + (yn[-1] - yn[0]) * xn
    return int(np.argmax(yn - line))


def find_latency_cliff(
    x: Sequence[float], latency: Sequence[float], *, factor: float = 2.0
) -> int | None:
    """Index of the first point whose latency exceeds ``factor`` × the first point's latency.

    The "p95 cliff" of a concurrency sweep: pass the p95 latencies. None if the curve never
    crosses.

    >>> find_latency_cliff([1, 2, 4, 8, 16], [1.0, 1.1, 1.3, 2.5, 6.0])
    3
    """
    _, la = _as_curve("x", x, "latency", latency)
    f = positive("factor", factor)
    over = np.nonzero(la > f * la[0])[0]
    return int(over[0]) if over.size else None
